"""The `export` stage: every model a run produces, as ONNX, each checked before it lands.

The generator's file follows the contract embedding apps rely on (`pipeline.runtime.contract`:
its inputs, output and metadata). Before the file is renamed into place it passes
`onnx.checker` and matches TensorFlow on the same noise within `tolerance`. The stage also
writes the int8 variant (`pipeline.export.quantize`) and the family's other networks
(`pipeline.export.family_models`), checked on the generator's images.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ExportConfig
from pipeline.errors import ExportError
from pipeline.export.checks import checked_bytes, parity
from pipeline.export.family_models import export_family_models
from pipeline.export.folding import folded_generator
from pipeline.export.onnx_names import stable_names
from pipeline.runtime.contract import (
    CATEGORICAL_CODE_INPUT,
    CONTINUOUS_CODE_INPUT,
    IMAGES_OUTPUT,
    LABEL_INPUT,
    LABEL_MIX_INPUT,
    NOISE_INPUT,
    GeneratorContract,
    Provenance,
)
from pipeline.runtime.revision import code_revision
from pipeline.storage.files import write_atomically

log = logging.getLogger(__name__)


def load_description(path: Path) -> tuple[GeneratorContract, Provenance]:
    """The contract and provenance in the training stage's `generator.json`."""
    try:
        return GeneratorContract.from_description(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ExportError(f"{path}: cannot read the generator description ({error!r})") from error


def convert(keras_path: Path, contract: GeneratorContract, opset: int):
    """The Keras generator and the ONNX `ModelProto` of it in inference mode, batch dimension
    dynamic, with the inputs `contract` names.

    tf2onnx converts the rewritten generator of `pipeline.export.folding` (batch norm folded, the
    transposed convolutions as batched convolutions), not the Keras graph as it is. An InfoGAN
    generator's Keras noise is the noise followed by the continuous codes, and its label the
    categorical code (`pipeline.gan.networks`): the ONNX graph takes them as separate named inputs.
    """
    import keras
    import tensorflow as tf
    import tf2onnx

    generator = keras.saving.load_model(keras_path)
    takes = generator.inputs[0].shape[-1]
    if takes != contract.latent_dim:
        raise ExportError(
            f"{keras_path} takes noise of {takes} dims, the description says {contract.latent_dim}"
        )
    if (len(generator.inputs) == 2) != (contract.conditional or contract.infogan):
        raise ExportError(
            f"{keras_path} and its description disagree on whether the model takes labels"
        )
    folded = folded_generator(generator)
    signature = (tf.TensorSpec((None, contract.noise_dim), tf.float32, name=NOISE_INPUT),)
    if contract.conditional:
        signature += (tf.TensorSpec((None,), tf.int64, name=LABEL_INPUT),)
    if contract.infogan:
        signature += (tf.TensorSpec((None,), tf.int64, name=CATEGORICAL_CODE_INPUT),)
    if contract.continuous_codes:
        shape = (None, contract.continuous_codes)
        signature += (tf.TensorSpec(shape, tf.float32, name=CONTINUOUS_CODE_INPUT),)

    @tf.function(input_signature=signature)
    def generate(z, *codes):
        if contract.continuous_codes:
            z = tf.concat([z, codes[1]], axis=1)
        return {IMAGES_OUTPUT: folded(z, *codes[:1])}

    proto, _ = tf2onnx.convert.from_function(generate, input_signature=signature, opset=opset)
    if contract.conditional:
        expose_label_mix(proto)
    stable_names(proto, "generator")
    return generator, proto


def check_inputs(contract: GeneratorContract, count: int) -> tuple[dict[str, np.ndarray], Any]:
    """The ONNX feed of the export check and the Keras generator's inputs for the same
    images: seeded noise, and every class or code value in turn."""
    # An InfoGAN model's continuous codes: the last columns, uniform like the noise.
    latent = contract.noise.draw(np.random.default_rng(0), count, contract.latent_dim)
    feed = {NOISE_INPUT: latent[:, : contract.noise_dim]}
    if not (contract.conditional or contract.infogan):
        return feed, latent
    values = contract.classes or tuple(range(contract.categorical_codes))
    labels = np.resize(np.asarray(values, np.int64), count)
    feed[LABEL_INPUT if contract.conditional else CATEGORICAL_CODE_INPUT] = labels
    if contract.continuous_codes:
        feed[CONTINUOUS_CODE_INPUT] = latent[:, contract.noise_dim :]
    return feed, [latent, labels.astype(np.int32)]


def expose_label_mix(proto) -> None:
    """Make the conditional graph's class-weights table (`LABEL_MIX_INPUT`) an
    optional input: an initializer that is also a graph input is a default a caller may
    override (ONNX IR 4+); onnxruntime lists it apart from the required inputs."""
    import onnx

    found = [i for i in proto.graph.initializer if i.name.split("/")[-1] == f"{LABEL_MIX_INPUT}:0"]
    if len(found) != 1:
        raise ExportError(f"the converted graph has {len(found)} {LABEL_MIX_INPUT} tables, not 1")
    table, traced_name = found[0], found[0].name
    table.name = LABEL_MIX_INPUT
    for node in proto.graph.node:
        for index, name in enumerate(node.input):
            if name == traced_name:
                node.input[index] = LABEL_MIX_INPUT
    proto.graph.input.append(
        onnx.helper.make_tensor_value_info(
            LABEL_MIX_INPUT, onnx.TensorProto.FLOAT, ["rows", table.dims[1]]
        )
    )


@dataclass(frozen=True)
class ExportPaths:
    """What the stage reads and writes; all of it comes from the command line (dvc.yaml)."""

    keras: Path  # the Keras generator
    description: Path  # its generator.json
    out: Path  # generator.onnx
    int8_out: Path
    family_keras: Path  # the family's other networks, as the train stage saved them
    family_out: Path  # their ONNX files


def export_stage(paths: ExportPaths, config: ExportConfig) -> dict[str, Any]:
    """The whole stage: `generator.onnx` from the Keras generator and its `generator.json`,
    then `generator-int8.onnx` (or, when int8 is not close enough, the float32 model
    under that name; see `pipeline.export.quantize`), then the family's other networks.
    Returns the metrics of all of them."""
    from pipeline.export.quantize import quantize

    metrics, images = export(paths.keras, paths.description, paths.out, config)
    paths.int8_out.parent.mkdir(parents=True, exist_ok=True)
    metrics |= quantize(
        paths.out,
        paths.int8_out,
        calibration_samples=config.int8_calibration_samples,
        check_samples=config.check_samples,
        tolerance=config.int8_tolerance,
    )
    _, provenance = load_description(paths.description)
    family = export_family_models(paths.family_keras, paths.family_out, config, provenance, images)
    return metrics | ({"family_models": family} if family else {})


def export(
    keras_path: Path, description_path: Path, out_path: Path, config: ExportConfig
) -> tuple[dict[str, Any], np.ndarray]:
    """Convert, check, then write `out_path` atomically; returns the export metrics and the
    generator's images of the check."""
    import onnxruntime as ort

    contract, provenance = load_description(description_path)
    generator, proto = convert(keras_path, contract, config.opset)
    metadata = contract.metadata(
        provenance, opset=config.opset, export_code_revision=code_revision()
    )
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = "DCGAN generator trained on MNIST-style digits; see metadata_props."
    data = checked_bytes(proto, out_path.name)
    options = ort.SessionOptions()
    options.log_severity_level = 3  # not its notice that an overridable table is not folded
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    expected_names = (contract.input_names, [IMAGES_OUTPUT])
    if names != expected_names:
        raise ExportError(f"the converted model has inputs/outputs {names}, not {expected_names}")
    feed, keras_inputs = check_inputs(contract, config.check_samples)
    expected = generator(keras_inputs, training=False).numpy()
    actual = session.run([IMAGES_OUTPUT], feed)[0]
    if actual.shape != expected.shape:
        raise ExportError(f"onnxruntime gives shape {actual.shape}, TensorFlow {expected.shape}")
    max_abs_diff = parity(actual, expected, config.tolerance, out_path.name, "samples")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out_path, lambda handle: handle.write(data))
    log.info(
        "wrote %s: max |onnx - tf| = %.3g on %d samples", out_path, max_abs_diff, len(expected)
    )
    return {
        "max_abs_diff": max_abs_diff,
        "check_samples": config.check_samples,
        "tolerance": config.tolerance,
        "onnx_opset": config.opset,
        "onnx_bytes": len(data),
        "onnx_nodes": len(proto.graph.node),
        "onnxruntime_version": ort.__version__,
    }, expected
