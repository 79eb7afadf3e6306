"""The checks every exported model passes before it is written: `onnx.checker`'s full check
and onnxruntime's agreement with TensorFlow within the export's tolerance."""

from __future__ import annotations

import numpy as np

from pipeline.errors import ExportError


def checked_bytes(proto, name: str) -> bytes:
    """`proto` serialized, once `onnx.checker` passes it (full check); `name`: the file it
    is for, in the error."""
    import onnx

    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"{name}: the converted model fails onnx.checker: {error}") from error
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
