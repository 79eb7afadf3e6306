"""The export stage's models besides the generator: every network a family's run saved
(`pipeline.families.base.save_models`), converted to ONNX and checked against TensorFlow like
the generator, into one folder (`models/family`) with the files the run listed beside them.

Each kind of model has its exporter, which the family that saves it declares
(`Family.exporters`): what the ONNX graph computes and what its metadata says.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ExportConfig
from pipeline.errors import ExportError
from pipeline.export.checks import checked_bytes, parity
from pipeline.export.onnx_names import stable_names
from pipeline.families import FAMILIES
from pipeline.runtime.contract import IMAGES_OUTPUT, Provenance
from pipeline.runtime.family_models import FamilyModel, read_listing, write_listing
from pipeline.storage.files import write_atomically, write_folder_atomically

log = logging.getLogger(__name__)


# kind -> how a model of that kind is converted, from every family
EXPORTERS = {
    kind: exporter for family in FAMILIES.values() for kind, exporter in family.exporters.items()
}


def export_family_models(
    keras_folder: Path,
    out_folder: Path,
    config: ExportConfig,
    provenance: Provenance,
    check_images: np.ndarray,
) -> dict[str, Any]:
    """Fill `out_folder` (replaced as a whole, only when every model passed) from
    `keras_folder`; returns each model's parity figures by name. `check_images`: float32
    `(N, 28, 28, 1)` in [-1, 1] (the generator's) for the parity check."""
    models, files = read_listing(keras_folder)
    metrics: dict[str, Any] = {}

    def fill(folder: Path) -> None:
        for model in models:
            metrics[model.name] = export_model(
                keras_folder / f"{model.name}.keras",
                folder / f"{model.name}.onnx",
                model,
                config,
                provenance,
                check_images,
            )
        for name in files:
            shutil.copyfile(keras_folder / name, folder / name)
        if models or files:
            write_listing(folder, models, files)

    try:
        write_folder_atomically(out_folder, fill)
    except OSError as error:
        raise ExportError(f"{out_folder}: cannot write the family's models ({error})") from error
    return metrics


def export_model(
    keras_path: Path,
    out_path: Path,
    model: FamilyModel,
    config: ExportConfig,
    provenance: Provenance,
    check_images: np.ndarray,
) -> dict[str, Any]:
    """Convert one saved network with the exporter of its kind; written only when onnx.checker
    passes and onnxruntime matches TensorFlow on `check_images` within `config.tolerance`."""
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    if model.kind not in EXPORTERS:
        raise ExportError(f"{keras_path}: no exporter for a model of kind {model.kind!r}")
    exporter = EXPORTERS[model.kind]
    graph, outputs, metadata = exporter.graph, exporter.outputs, exporter.metadata
    try:
        network = keras.saving.load_model(keras_path)
    except (OSError, ValueError) as error:
        raise ExportError(f"{keras_path}: not a readable Keras model ({error})") from error
    function, signature = graph(network)
    proto, _ = tf2onnx.convert.from_function(
        function, input_signature=signature, opset=config.opset
    )
    stable_names(proto, model.name)
    for key, value in metadata(provenance, model.role).items():
        proto.metadata_props.add(key=key, value=value)
    data = checked_bytes(proto, out_path.name)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if sorted(names) != sorted(outputs):  # a graph's outputs come in its names' order
        raise ExportError(
            f"{out_path.name}: the converted model has outputs {names}, not {outputs}"
        )
    expected = function(tf.constant(check_images))
    actual = session.run(list(outputs), {IMAGES_OUTPUT: check_images})
    difference = max(
        parity(mine, expected[name].numpy(), config.tolerance, out_path.name, "check images")
        for name, mine in zip(outputs, actual, strict=True)
    )
    write_atomically(out_path, lambda handle: handle.write(data))
    log.info(
        "wrote %s: max |onnx - tf| = %.3g on %d images",
        out_path.name,
        difference,
        len(check_images),
    )
    return {"max_abs_diff": difference, "onnx_bytes": len(data), "check_images": len(check_images)}
