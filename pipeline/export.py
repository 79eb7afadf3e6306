"""The `export` stage: the trained Keras generator as `generator.onnx`, checked before it lands.

The ONNX file follows the contract embedding apps rely on (`pipeline.contract`: its inputs,
output and metadata). Before the file is renamed into place it passes `onnx.checker` and
matches TensorFlow on the same noise within `tolerance`. The stage also writes the int8
variant (`pipeline.quantize`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ExportConfig
from pipeline.contract import (
    IMAGES_OUTPUT,
    LABEL_INPUT,
    LABEL_MIX_INPUT,
    NOISE_INPUT,
    GeneratorContract,
    Provenance,
)
from pipeline.errors import ExportError
from pipeline.files import write_atomically
from pipeline.inference import folded_generator
from pipeline.revision import code_revision

log = logging.getLogger(__name__)


def load_description(path: Path) -> tuple[GeneratorContract, Provenance]:
    """The contract and provenance in the training stage's `generator.json`."""
    try:
        return GeneratorContract.from_description(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ExportError(f"{path}: cannot read the generator description ({error!r})") from error


def convert(keras_path: Path, noise_dim: int, opset: int):
    """The Keras generator and the ONNX `ModelProto` of it in inference mode, batch dimension
    dynamic.

    tf2onnx converts the rewritten generator of `pipeline.inference` (batch norm folded, the
    transposed convolutions as batched convolutions), not the Keras graph as it is.
    """
    import keras
    import tensorflow as tf
    import tf2onnx

    generator = keras.saving.load_model(keras_path)
    takes = generator.inputs[0].shape[-1]
    if takes != noise_dim:
        raise ExportError(
            f"{keras_path} takes noise of {takes} dims, the description says {noise_dim}"
        )
    folded = folded_generator(generator)
    signature = (tf.TensorSpec((None, noise_dim), tf.float32, name=NOISE_INPUT),)
    if len(generator.inputs) == 2:
        signature += (tf.TensorSpec((None,), tf.int64, name=LABEL_INPUT),)

    @tf.function(input_signature=signature)
    def generate(*inputs):
        return {IMAGES_OUTPUT: folded(*inputs)}

    proto, _ = tf2onnx.convert.from_function(generate, input_signature=signature, opset=opset)
    if len(signature) == 2:
        expose_label_mix(proto)
    return generator, proto


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


def export_stage(
    keras_path: Path,
    description_path: Path,
    out_path: Path,
    int8_path: Path,
    config: ExportConfig,
) -> dict[str, Any]:
    """The whole stage: `generator.onnx` from the Keras generator and its `generator.json`,
    then `generator-int8.onnx` (or, when int8 is not close enough, the float32 model
    under that name; see `pipeline.quantize`). Returns the metrics of both."""
    from pipeline.quantize import quantize

    metrics = export(keras_path, description_path, out_path, config)
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    return metrics | quantize(
        out_path,
        int8_path,
        calibration_samples=config.int8_calibration_samples,
        check_samples=config.check_samples,
        tolerance=config.int8_tolerance,
    )


def export(
    keras_path: Path, description_path: Path, out_path: Path, config: ExportConfig
) -> dict[str, Any]:
    """Convert, check, then write `out_path` atomically; returns the export metrics."""
    import onnx
    import onnxruntime as ort

    contract, provenance = load_description(description_path)
    noise_dim, classes = contract.noise_dim, contract.classes
    generator, proto = convert(keras_path, noise_dim, config.opset)
    if (len(generator.inputs) == 2) != contract.conditional:
        raise ExportError(
            f"{keras_path} and {description_path} disagree on whether the model takes labels"
        )
    metadata = contract.metadata(
        provenance, opset=config.opset, export_code_revision=code_revision()
    )
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.doc_string = "DCGAN generator trained on MNIST-style digits; see metadata_props."
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"the converted model fails onnx.checker: {error}") from error

    data = proto.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # not its notice that an overridable table is not folded
    session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    expected_names = (contract.input_names, [IMAGES_OUTPUT])
    if names != expected_names:
        raise ExportError(f"the converted model has inputs/outputs {names}, not {expected_names}")
    noise = contract.noise.draw(np.random.default_rng(0), config.check_samples, noise_dim)
    feed = {NOISE_INPUT: noise}
    if classes:  # every class in turn
        feed[LABEL_INPUT] = np.resize(np.asarray(classes, np.int64), len(noise))
    expected = generator(
        [noise, feed[LABEL_INPUT].astype(np.int32)] if classes else noise, training=False
    ).numpy()
    actual = session.run([IMAGES_OUTPUT], feed)[0]
    if actual.shape != expected.shape:
        raise ExportError(f"onnxruntime gives shape {actual.shape}, TensorFlow {expected.shape}")
    max_abs_diff = float(np.max(np.abs(actual - expected)))
    if not max_abs_diff <= config.tolerance:
        raise ExportError(
            f"onnxruntime and TensorFlow differ by up to {max_abs_diff:.3g} on "
            f"{config.check_samples} samples (tolerance {config.tolerance:g}); "
            f"{out_path} was not written"
        )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(out_path, lambda handle: handle.write(data))
    log.info("wrote %s: max |onnx - tf| = %.3g on %d samples", out_path, max_abs_diff, len(noise))
    return {
        "max_abs_diff": max_abs_diff,
        "check_samples": config.check_samples,
        "tolerance": config.tolerance,
        "onnx_opset": config.opset,
        "onnx_bytes": len(data),
        "onnx_nodes": len(proto.graph.node),
        "onnxruntime_version": ort.__version__,
    }
