"""The `export` stage: the trained Keras generator as `generator.onnx`, checked before it lands.

The ONNX file is the contract embedding apps rely on: one input `z` float32 `(N, noise_dim)` with
a dynamic batch (the conditional model has a second input, `label` int64 `(N,)`), one output
`images` float32 `(N, 28, 28, 1)` in [-1, 1], and metadata that says how to draw the noise, which
labels there are, and how to read the images without any of our code. Before the file is renamed
into place it passes `onnx.checker` and matches TensorFlow on the same noise within `tolerance`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ExportConfig
from pipeline.errors import ExportError
from pipeline.files import write_atomically
from pipeline.inference import LABEL_MIX, folded_generator
from pipeline.revision import code_revision

log = logging.getLogger(__name__)

INPUT_NAME = "z"
LABEL_NAME = "label"
OUTPUT_NAME = "images"


def load_description(path: Path) -> dict[str, Any]:
    """The training stage's `generator.json` (noise, dataset, params, revision)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ExportError(f"{path}: cannot read the generator description ({error})") from error


def onnx_metadata(description: dict[str, Any], opset: int) -> dict[str, str]:
    """Everything a caller in any language needs, as ONNX `metadata_props` (strings)."""
    noise = description["noise"]
    classes = description.get("classes")
    inputs = f"{INPUT_NAME}: float32 (N, {description['noise_dim']}), N dynamic"
    conditioning = {}
    if classes:
        inputs += (
            f"; {LABEL_NAME}: int64 (N,), the class of each image, one of `classes`; optional "
            f"{LABEL_MIX}: float32 (rows, {len(classes)}), default the identity: image i is "
            f"drawn with the class embeddings weighted by row {LABEL_NAME}[i] (feed rows such "
            "as (1 - t) on one class and t on another, and labels indexing them, to morph)"
        )
        conditioning = {"classes": json.dumps(classes)}
    return {
        "model": "dcgan-generator",
        "noise_dim": str(description["noise_dim"]),
        "noise_distribution": noise["distribution"],
        "noise_low": str(noise["low"]),
        "noise_high": str(noise["high"]),
        "input": inputs,
        **conditioning,
        "output": f"{OUTPUT_NAME}: float32 (N, 28, 28, 1), NHWC, one grey channel",
        "output_range": "[-1, 1]; to uint8 pixels: round((x + 1) * 127.5)",
        "dataset": description["dataset"],
        "train_images_sha256": description["train_images_sha256"],
        "train_params": json.dumps(description["train_params"], sort_keys=True),
        "train_steps": str(description["steps"]),
        "train_code_revision": description["code_revision"],
        "export_code_revision": code_revision(),
        "opset": str(opset),
        "graph": "batch norm folded; transposed convolutions as batched 2x2 convolutions",
    }


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
    signature = (tf.TensorSpec((None, noise_dim), tf.float32, name=INPUT_NAME),)
    if len(generator.inputs) == 2:
        signature += (tf.TensorSpec((None,), tf.int64, name=LABEL_NAME),)

    @tf.function(input_signature=signature)
    def generate(*inputs):
        return {OUTPUT_NAME: folded(*inputs)}

    proto, _ = tf2onnx.convert.from_function(generate, input_signature=signature, opset=opset)
    if len(signature) == 2:
        expose_label_mix(proto)
    return generator, proto


def expose_label_mix(proto) -> None:
    """Make the conditional graph's class-weights table (`pipeline.inference.LABEL_MIX`) an
    optional input: an initializer that is also a graph input is a default a caller may
    override (ONNX IR 4+); onnxruntime lists it apart from the required inputs."""
    import onnx

    found = [i for i in proto.graph.initializer if i.name.split("/")[-1] == f"{LABEL_MIX}:0"]
    if len(found) != 1:
        raise ExportError(f"the converted graph has {len(found)} {LABEL_MIX} tables, not 1")
    table, traced_name = found[0], found[0].name
    table.name = LABEL_MIX
    for node in proto.graph.node:
        for index, name in enumerate(node.input):
            if name == traced_name:
                node.input[index] = LABEL_MIX
    proto.graph.input.append(
        onnx.helper.make_tensor_value_info(
            LABEL_MIX, onnx.TensorProto.FLOAT, ["rows", table.dims[1]]
        )
    )


def export(
    keras_path: Path, description_path: Path, out_path: Path, config: ExportConfig
) -> dict[str, Any]:
    """Convert, check, then write `out_path` atomically; returns the export metrics."""
    import onnx
    import onnxruntime as ort

    description = load_description(description_path)
    noise_dim = int(description["noise_dim"])
    classes = description.get("classes") or []
    generator, proto = convert(keras_path, noise_dim, config.opset)
    if (len(generator.inputs) == 2) != bool(classes):
        raise ExportError(
            f"{keras_path} and {description_path} disagree on whether the model takes labels"
        )
    for key, value in onnx_metadata(description, config.opset).items():
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
    expected_names = ([INPUT_NAME, LABEL_NAME] if classes else [INPUT_NAME], [OUTPUT_NAME])
    if names != expected_names:
        raise ExportError(f"the converted model has inputs/outputs {names}, not {expected_names}")
    rng = np.random.default_rng(0)
    noise = rng.uniform(-1.0, 1.0, (config.check_samples, noise_dim)).astype(np.float32)
    feed = {INPUT_NAME: noise}
    if classes:  # every class in turn
        feed[LABEL_NAME] = np.resize(np.asarray(classes, np.int64), len(noise))
    expected = generator(
        [noise, feed[LABEL_NAME].astype(np.int32)] if classes else noise, training=False
    ).numpy()
    actual = session.run([OUTPUT_NAME], feed)[0]
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
        "opset": config.opset,
        "onnx_bytes": len(data),
        "onnx_nodes": len(proto.graph.node),
        "onnxruntime_version": ort.__version__,
    }
