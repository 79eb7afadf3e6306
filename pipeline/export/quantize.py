"""The int8 variant of the exported generator: onnxruntime's static QDQ quantization.

On this project's CPUs int8 is the reduced precision onnxruntime runs fastest (its u8s8 kernels
use AVX2 and, where present, VNNI or AMX; bf16 in onnxruntime's CPU provider is not faster than
float32). Weights are int8 per output channel, activations uint8 with ranges calibrated on
noise drawn as the model expects. Only the convolutions and matrix products are quantized (the
convolutions alone when the products would not stay faithful, see `QUANTIZED_OPERATORS`): the
bias adds around them stay float32, which keeps the packed first deconvolution's "outside the
image" bias (the lowest float, see `pipeline.export.folding`) out of any quantization range. A
conditional model's class table stays float32 too: it is a bias, and `label_mix` may blend it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.runtime.contract import INT8_FALLBACK
from pipeline.runtime.files import write_path_atomically

log = logging.getLogger(__name__)


@contextmanager
def _quiet_logs() -> Iterator[None]:
    """Keep the quantizer's notices off the user's terminal: its advice to pre-process goes to
    the root logger, and onnxruntime warns in each calibration session that a conditional
    model's `label_mix` table is overridable (so not constant-folded), which is intended."""
    import onnxruntime as ort

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    ort.set_default_logger_severity(3)
    try:
        yield
    finally:
        root.setLevel(level)
        ort.set_default_logger_severity(2)  # onnxruntime's default: warnings


CALIBRATION_BATCH = 64
# Tried in turn until one stays within the tolerance. A dense layer whose folded batch norm
# has near-dead units (variance about 0, so a scale of gamma / sqrt(epsilon)) gives its output
# a range that one uint8 scale per tensor cannot hold: then its matrix products stay float32.
QUANTIZED_OPERATORS = (("Conv", "MatMul"), ("Conv",))


def quantize(
    float_path: Path,
    out_path: Path,
    *,
    calibration_samples: int,
    check_samples: int,
    tolerance: float,
) -> dict[str, Any]:
    """Write the int8 model to `out_path` if it stays within `tolerance` (mean |difference| on
    [-1, 1] images); otherwise write the float32 model there, its metadata saying why, so the
    pipeline and apps keep working with faithful images. Returns the metrics (`int8_quantized`
    says which one was written)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from pipeline.runtime.sampler import Sampler

    reference = Sampler(float_path)
    rng = np.random.default_rng(1)  # not the evaluate stage's seed 0: calibrate on other noise
    batches = [  # a conditional model's labels: the classes in turn
        reference.feed(reference.noise(rng, CALIBRATION_BATCH))
        for _ in range(max(1, calibration_samples // CALIBRATION_BATCH))
    ]

    class NoiseBatches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    noise = reference.noise(np.random.default_rng(2), check_samples)
    expected = reference.generate(noise)
    class_tables = _class_table_products(float_path)

    def write(temporary: Path) -> None:
        tried = []
        for op_types in QUANTIZED_OPERATORS:
            with _quiet_logs():
                quantize_static(
                    str(float_path),
                    str(temporary),
                    NoiseBatches(),
                    quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=list(op_types),
                    nodes_to_exclude=class_tables,
                    per_channel=True,
                    activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                )
            difference = np.abs(Sampler(temporary).generate(noise) - expected)
            metrics.update(
                int8_mean_abs_diff=float(difference.mean()),
                int8_max_abs_diff=float(difference.max()),
                int8_bytes=temporary.stat().st_size,
                int8_operators=list(op_types),
            )
            tried.append(f"{' and '.join(op_types)}: {difference.mean():.3g}")
            metrics["int8_quantized"] = metrics["int8_mean_abs_diff"] <= tolerance
            if metrics["int8_quantized"]:
                return
        reason = (
            f"the int8 model differed from the float32 one on average by "
            f"{', '.join(tried)} (quantizing those operators; tolerance {tolerance:g})"
        )
        temporary.write_bytes(_with_metadata(float_path, INT8_FALLBACK, reason))
        metrics.update(int8_bytes=temporary.stat().st_size, int8_operators=[])
        log.warning("%s: %s, so it holds the float32 model", out_path, reason)

    metrics: dict[str, Any] = {}
    write_path_atomically(out_path, write)
    if metrics["int8_quantized"]:
        log.info(
            "wrote %s (%s in int8): mean |int8 - float32| = %.3g",
            out_path,
            " and ".join(metrics["int8_operators"]),
            metrics["int8_mean_abs_diff"],
        )
    return metrics


def _class_table_products(model_path: Path) -> list[str]:
    """Names of the nodes that multiply by the class table: the products fed by a Gather."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    gathered = {node.output[0] for node in graph.node if node.op_type == "Gather"}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[0] in gathered]


def _with_metadata(model_path: Path, key: str, value: str) -> bytes:
    """The bytes of the ONNX model at `model_path` with one more metadata entry."""
    import onnx

    proto = onnx.load(str(model_path))
    proto.metadata_props.add(key=key, value=value)
    return proto.SerializeToString()
