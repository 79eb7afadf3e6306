"""The `benchmark` stage: onnxruntime against TensorFlow on the same generator, side by side.

Both engines run in one process on the same noise. For each batch size the timed windows
alternate between the engines (ORT, TF, ORT, TF, ...), so a drift in the machine's speed hits
both alike; each engine's throughput is the median over its windows. A benchmark, not a test:
it reports numbers and ratios, and never fails on speed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import BenchmarkConfig
from pipeline.files import write_json_atomically, write_text_atomically

log = logging.getLogger(__name__)

ENGINES = ("onnxruntime", "tensorflow")


def generator_flops(model) -> int:
    """Floating-point operations (2 per multiply-add) of one image through the Keras generator."""
    flops = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Dense":
            flops += 2 * int(np.prod(layer.kernel.shape))
        elif kind == "Conv2DTranspose":  # every input pixel scatters a k x k x out x in kernel
            height, width = layer.input.shape[1:3]
            flops += 2 * height * width * int(np.prod(layer.kernel.shape))
        elif kind == "Conv2D":  # every output pixel gathers one
            height, width = layer.output.shape[1:3]
            flops += 2 * height * width * int(np.prod(layer.kernel.shape))
    return flops


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run_benchmark(onnx_path: Path, keras_path: Path, config: BenchmarkConfig) -> dict[str, Any]:
    """Measure both engines; returns the metrics (see `write_results` for the files)."""
    import keras
    import tensorflow as tf

    from pipeline.sampler import Sampler

    results: dict[str, dict[str, Any]] = {engine: {} for engine in ENGINES}
    start = time.perf_counter()
    sampler = Sampler(onnx_path)
    results["onnxruntime"]["session_seconds"] = round(time.perf_counter() - start, 4)
    noise_dim = sampler.noise_dim

    start = time.perf_counter()
    model = keras.saving.load_model(keras_path)
    signature = (tf.TensorSpec((None, noise_dim), tf.float32),)
    tf_generate = tf.function(lambda z: model(z, training=False), input_signature=signature)
    results["tensorflow"]["session_seconds"] = round(time.perf_counter() - start, 4)

    rng = np.random.default_rng(0)
    one = rng.uniform(-1, 1, (1, noise_dim)).astype(np.float32)
    runners = {
        "onnxruntime": sampler.generate,
        "tensorflow": lambda z: tf_generate(z).numpy(),
    }
    for engine, run in runners.items():  # the first call traces (TF) or allocates (ORT)
        results[engine]["first_inference_seconds"] = round(timed(lambda run=run: run(one)), 4)

    for engine, latencies in measure_latency(runners, one, config.latency_calls).items():
        milliseconds = np.array(latencies) * 1e3
        results[engine]["latency_ms"] = {
            f"p{q}": round(float(np.percentile(milliseconds, q)), 4) for q in (50, 90, 99)
        }

    flops = generator_flops(model)
    for batch_size in config.batch_sizes:
        noise = rng.uniform(-1, 1, (batch_size, noise_dim)).astype(np.float32)
        rates = measure_throughput(runners, noise, config.windows, config.window_seconds)
        for engine, rate in rates.items():
            results[engine].setdefault("samples_per_second", {})[str(batch_size)] = round(rate, 1)
            results[engine].setdefault("gflops", {})[str(batch_size)] = round(rate * flops / 1e9, 2)
        log.info(
            "batch %d: onnxruntime %.0f/s, tensorflow %.0f/s",
            batch_size,
            rates["onnxruntime"],
            rates["tensorflow"],
        )

    ort_rates = results["onnxruntime"]["samples_per_second"]
    tf_rates = results["tensorflow"]["samples_per_second"]
    return {
        **results,
        "onnxruntime_over_tensorflow": {
            size: round(ort_rates[size] / tf_rates[size], 3) for size in ort_rates
        },
        "mflop_per_image": round(flops / 1e6, 2),
    }


def measure_latency(runners, noise: np.ndarray, calls: int) -> dict[str, list[float]]:
    """Single-call times at batch 1, the engines taking turns in blocks of 25 calls."""
    latencies: dict[str, list[float]] = {engine: [] for engine in runners}
    for block in range(math.ceil(calls / 25)):
        count = min(25, calls - block * 25)
        for engine, run in runners.items():
            latencies[engine] += [timed(lambda run=run: run(noise)) for _ in range(count)]
    return latencies


def measure_throughput(runners, noise: np.ndarray, windows: int, window_seconds: float):
    """Median samples/s per engine over `windows` timed windows, alternating the engines."""
    repeats = {}
    for engine, run in runners.items():
        run(noise)  # warm-up at this batch size
        once = min(timed(lambda run=run: run(noise)) for _ in range(2))
        repeats[engine] = max(1, math.ceil(window_seconds / max(once, 1e-6)))
    rates: dict[str, list[float]] = {engine: [] for engine in runners}
    for _ in range(windows):
        for engine, run in runners.items():
            count = repeats[engine]
            seconds = timed(lambda run=run, count=count: [run(noise) for _ in range(count)])
            rates[engine].append(count * len(noise) / seconds)
    return {engine: float(np.median(values)) for engine, values in rates.items()}


def format_table(metrics: dict[str, Any]) -> str:
    """The results as a plain-text table for the terminal."""
    ort, tf = metrics["onnxruntime"], metrics["tensorflow"]
    lines = [
        f"{'batch':>6}  {'onnxruntime/s':>14}  {'tensorflow/s':>13}  {'ratio':>6}  "
        f"{'ORT GFLOP/s':>11}  {'TF GFLOP/s':>10}"
    ]
    for size, rate in ort["samples_per_second"].items():
        lines.append(
            f"{size:>6}  {rate:>14,.0f}  {tf['samples_per_second'][size]:>13,.0f}  "
            f"{metrics['onnxruntime_over_tensorflow'][size]:>6.2f}  "
            f"{ort['gflops'][size]:>11.1f}  {tf['gflops'][size]:>10.1f}"
        )
    lines.append("")
    for name, engine in (("onnxruntime", ort), ("tensorflow", tf)):
        latency = engine["latency_ms"]
        lines.append(
            f"{name:<12} batch-1 latency p50 {latency['p50']:.3f} ms, p90 {latency['p90']:.3f} ms,"
            f" p99 {latency['p99']:.3f} ms; session {engine['session_seconds']:.2f} s, "
            f"first inference {engine['first_inference_seconds'] * 1e3:.1f} ms"
        )
    return "\n".join(lines)


def write_results(metrics: dict[str, Any], metrics_path: Path, plots_dir: Path) -> None:
    """The metrics JSON (for `dvc metrics show`) and a throughput table (for `dvc plots show`)."""
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    plots_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(metrics_path, metrics)
    rows = ["batch_size,onnxruntime,tensorflow"]
    for size, rate in metrics["onnxruntime"]["samples_per_second"].items():
        rows.append(f"{size},{rate},{metrics['tensorflow']['samples_per_second'][size]}")
    write_text_atomically(plots_dir / "throughput.csv", "\n".join(rows) + "\n")
