"""The checks every exported model passes before it is written: `onnx.checker`'s full check
and onnxruntime's agreement with TensorFlow within the export's tolerance; and the digest of
its weights every runtime checks it against (`pipeline.runtime.model_bytes`)."""

from __future__ import annotations

import numpy as np

from pipeline.errors import ExportError
from pipeline.runtime.contract import WEIGHTS_DIGEST
from pipeline.runtime.model_bytes import weights_digest


def checked_bytes(proto, name: str) -> bytes:
    """`proto` serialized with its weights' digest, once `onnx.checker` passes it (full
    check); `name`: the file it is for, in the error."""
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"{name}: the converted model fails onnx.checker: {error}") from error
    return with_digest(proto)


def with_digest(proto) -> bytes:
    """`proto` serialized with the digest of its graph in its metadata, any earlier one
    replaced (the graph's bytes do not move when the metadata changes)."""
    kept = [entry for entry in proto.metadata_props if entry.key != WEIGHTS_DIGEST]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    proto.metadata_props.add(key=WEIGHTS_DIGEST, value=weights_digest(proto.SerializeToString()))
    return proto.SerializeToString()


def parity(actual: np.ndarray, expected: np.ndarray, tolerance: float, name: str, unit: str):
    """The largest |onnxruntime - TensorFlow| over the check's outputs, or an `ExportError`
    (the file `name` is not written) when it exceeds `tolerance`."""
    difference = float(np.max(np.abs(actual - expected)))
    if not difference <= tolerance:
        raise ExportError(
            f"{name}: onnxruntime and TensorFlow differ by up to {difference:.3g} on "
            f"{len(actual)} {unit} (tolerance {tolerance:g}); not written"
        )
    return difference
