"""The int8 variant of the exported generator: a quarter of the float32 file, twice its speed.

On this project's CPUs int8 is the reduced precision onnxruntime runs fastest (its u8s8 kernels
use AVX2 and, where present, VNNI or AMX; bf16 in onnxruntime's CPU provider is not faster than
float32). Two schemes, one per kind of layer:

- The dense layers (6.5 of the seed generator's 6.6 million weights) by dynamic quantization:
  int8 weights per output column, the input's uint8 range taken from each batch at run time,
  the output float32. A static output range cannot work there: a folded batch norm with
  near-dead units (variance about 0, so a scale of gamma / sqrt(epsilon)) gives a few outputs a
  range that one uint8 scale per tensor cannot hold. The price: an image depends slightly on
  the other noise vectors of its batch (a batch of one and a batch of many differ within the
  tolerance).
- The hidden convolutions by static QDQ quantization, activations calibrated on noise drawn as
  the model expects. The output layer stays float32: its pre-tanh range is wide, its rounding
  lands directly in the pixels, and it is about 2% of the arithmetic.

Weights use 7 of their 8 bits (`reduce_range`): a u8 x s8 pair product then cannot saturate
the int16 sums of AVX2 machines without VNNI, so the file is as faithful there as where it was
checked, at a cost measured at under 0.001 mean |difference|. Bias adds stay float32, which
keeps the packed first deconvolution's "outside the image" bias (the lowest float, see
`pipeline.export.folding`) out of any quantization range; a conditional model's class table
stays float32 too: it is a bias, and `label_mix` may blend it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.export.checks import with_digest
from pipeline.runtime.contract import INT8_FALLBACK
from pipeline.storage.files import write_path_atomically

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
# Calibration draws other noise than the evaluate stage (seed 0) and the fidelity check.
CALIBRATION_SEED, CHECK_SEED = 1, 2
# Tried in turn until one stays within the tolerance: the dense layers' products in int8 too,
# then the convolutions alone.
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
    from onnxruntime.quantization import CalibrationDataReader

    from pipeline.runtime.sampler import Sampler

    reference = Sampler(float_path)
    rng = np.random.default_rng(CALIBRATION_SEED)
    batches = [  # a conditional model's labels: the classes in turn
        reference.feed(reference.noise(rng, CALIBRATION_BATCH))
        for _ in range(max(1, calibration_samples // CALIBRATION_BATCH))
    ]

    class NoiseBatches(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            return next(self.batches, None)

    noise = reference.noise(np.random.default_rng(CHECK_SEED), check_samples)
    expected = reference.generate(noise)
    graph = _graph(float_path)
    class_tables = _class_table_products(graph)
    kept_float = {"Conv": class_tables + _output_layer(graph), "MatMul": class_tables}

    def write(temporary: Path) -> None:
        tried = []
        for op_types in QUANTIZED_OPERATORS:
            _quantize_operators(float_path, temporary, op_types, NoiseBatches(), kept_float)
            temporary.write_bytes(with_digest(_model(temporary)))  # the float model's was copied
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


def _quantize_operators(
    float_path: Path,
    out_path: Path,
    op_types: tuple[str, ...],
    calibration: Any,
    kept_float: dict[str, list[str]],
) -> None:
    """Write to `out_path` the model at `float_path` with the hidden convolutions quantized
    statically and, if `op_types` has "MatMul", the dense layers' products dynamically; the
    nodes `kept_float` names for each operator stay float32."""
    # The quantizer's defaults are the choices here: QDQ nodes around the static convolutions,
    # int8 weights (their tests check both).
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static

    with _quiet_logs(), tempfile.TemporaryDirectory() as folder:
        convolutions = Path(folder) / "convolutions.onnx"
        quantize_static(
            str(float_path),
            str(convolutions if "MatMul" in op_types else out_path),
            calibration,
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=kept_float["Conv"],
            per_channel=True,
            reduce_range=True,
            activation_type=QuantType.QUInt8,
        )
        if "MatMul" in op_types:
            quantize_dynamic(
                str(convolutions),
                str(out_path),
                op_types_to_quantize=["MatMul"],
                nodes_to_exclude=kept_float["MatMul"],
                per_channel=True,
                reduce_range=True,
            )


def _model(model_path: Path) -> Any:
    import onnx

    return onnx.load(str(model_path))


def _graph(model_path: Path) -> Any:
    return _model(model_path).graph


def _class_table_products(graph: Any) -> list[str]:
    """Names of the nodes that multiply by the class table: the products fed by a Gather."""
    gathered = {node.output[0] for node in graph.node if node.op_type == "Gather"}
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.input[0] in gathered]


def _output_layer(graph: Any) -> list[str]:
    """Names of the convolutions that make the images: those reached walking back from the
    graph's outputs through anything but another convolution (the packed last deconvolution's
    four phases, see `pipeline.export.folding`)."""
    producer = {output: node for node in graph.node for output in node.output}
    found: set[str] = set()
    pending = [output.name for output in graph.output]
    seen: set[str] = set()
    while pending:
        tensor = pending.pop()
        if tensor in seen or tensor not in producer:
            continue
        seen.add(tensor)
        node = producer[tensor]
        if node.op_type == "Conv":
            found.add(node.name)
        else:
            pending.extend(node.input)
    return sorted(found)


def _with_metadata(model_path: Path, key: str, value: str) -> bytes:
    """The bytes of the ONNX model at `model_path` with one more metadata entry, and its
    weights' digest."""
    proto = _model(model_path)
    proto.metadata_props.add(key=key, value=value)
    return with_digest(proto)
