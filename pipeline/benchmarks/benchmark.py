"""The `benchmark` stage: onnxruntime against TensorFlow on the same generator, side by side.

Four engines run in one process on the same noise: onnxruntime on the float32 and the int8
model, TensorFlow in float32 and under Keras' mixed bfloat16 policy. For each batch size the
timed windows alternate between the engines, so a drift in the machine's speed hits all alike;
each engine's throughput is the median over its windows. The float32 matrix-product peak is
measured in the same way, alternating with the generator. A benchmark, not a test: it reports
numbers, ratios and the issue's targets, and never fails on speed.
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
from pipeline.runtime import machine
from pipeline.storage.files import write_json_atomically, write_text_atomically

log = logging.getLogger(__name__)

SETTLE_SECONDS = 0.1
# TensorFlow's bfloat16 is emulated (slow) on CPUs without bf16 instructions; it is measured up
# to batch 256, where the int8 target compares against it, and left out of the latency calls.
BF16_MAX_BATCH = 256
ENGINES = ("onnxruntime", "tensorflow", "onnxruntime_int8", "tensorflow_bf16")


def forward_flops(model) -> int:
    """Floating-point operations (2 per multiply-add) of one image through a Keras network's
    dense and convolution layers (the rest is a few percent)."""
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
    """Seconds `call` takes, after a pause: each library's thread pool busy-waits for a while
    after its work, and would steal the cores from the next engine timed (measured here: numpy's
    matrix product ran 107 GFLOP/s right after onnxruntime, 138 after a 0.1 s pause)."""
    time.sleep(SETTLE_SECONDS)
    return _seconds(call)


def _seconds(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def run_benchmark(
    onnx_path: Path, keras_path: Path, int8_path: Path, config: BenchmarkConfig
) -> dict[str, Any]:
    """Measure all engines and the matrix-multiply peak; returns the metrics (see
    `write_results` for the files)."""
    import keras
    import tensorflow as tf

    from pipeline.gan.networks import build_generator
    from pipeline.gan.placement import precision_policy
    from pipeline.runtime.sampler import Sampler

    results: dict[str, dict[str, Any]] = {engine: {} for engine in ENGINES}
    start = time.perf_counter()
    sampler = Sampler(onnx_path)
    results["onnxruntime"]["session_seconds"] = round(time.perf_counter() - start, 4)
    noise_dim = sampler.noise_dim
    int8_sampler = Sampler(int8_path)

    start = time.perf_counter()
    model = keras.saving.load_model(keras_path)
    classes = len(sampler.classes)

    def network_input(z):
        """The noise, with a conditional model's labels as the sampler gives them: in turn."""
        return [z, tf.range(tf.shape(z)[0]) % classes] if classes else z

    signature = (tf.TensorSpec((None, noise_dim), tf.float32),)
    tf_generate = tf.function(
        lambda z: model(network_input(z), training=False), input_signature=signature
    )
    results["tensorflow"]["session_seconds"] = round(time.perf_counter() - start, 4)
    rng = np.random.default_rng(0)
    one = sampler.noise(rng, 1)
    runners = {
        "onnxruntime": sampler.generate,
        "tensorflow": lambda z: tf_generate(z).numpy(),
        "onnxruntime_int8": int8_sampler.generate,
    }
    if machine.bf16_runs():  # else left out: its ratios and target read as not measured
        with precision_policy("mixed_bfloat16"):
            bf16_model = build_generator(noise_dim, classes)
        bf16_model.set_weights(model.get_weights())
        bf16_generate = tf.function(
            lambda z: bf16_model(network_input(z), training=False), input_signature=signature
        )
        runners["tensorflow_bf16"] = lambda z: bf16_generate(z).numpy()
    for engine, run in runners.items():  # the first call traces (TF) or allocates (ORT)
        results[engine]["first_inference_seconds"] = round(timed(lambda run=run: run(one)), 4)

    latency_runners = {e: run for e, run in runners.items() if e != "tensorflow_bf16"}
    for engine, latencies in measure_latency(latency_runners, one, config.latency_calls).items():
        milliseconds = np.array(latencies) * 1e3
        results[engine]["latency_ms"] = {
            f"p{q}": round(float(np.percentile(milliseconds, q)), 4) for q in (50, 90, 99)
        }

    flops = forward_flops(model)
    for batch_size in config.batch_sizes:
        noise = sampler.noise(rng, batch_size)
        active = {
            engine: run
            for engine, run in runners.items()
            if engine != "tensorflow_bf16" or batch_size <= BF16_MAX_BATCH
        }
        rates = measure_throughput(active, noise, config.windows, config.window_seconds)
        for engine, rate in rates.items():
            results[engine].setdefault("samples_per_second", {})[str(batch_size)] = round(rate, 1)
            results[engine].setdefault("gflops", {})[str(batch_size)] = round(rate * flops / 1e9, 2)
        log.info(
            "batch %d: %s",
            batch_size,
            ", ".join(f"{engine} {rate:.0f}/s" for engine, rate in rates.items()),
        )
    share_batch = max(config.batch_sizes, key=lambda size: (size <= 256, size))
    share_noise = sampler.noise(rng, share_batch)
    peaks, share = measure_peak_share(
        sampler.generate, share_noise, flops, config.matmul_size, config
    )
    log.info("float32 matrix product %d: %s GFLOP/s", config.matmul_size, peaks)

    def ratio(engine: str, baseline: str) -> dict[str, float]:
        rates, baselines = (results[e].get("samples_per_second", {}) for e in (engine, baseline))
        return {
            size: round(rate / baselines[size], 3)
            for size, rate in rates.items()
            if size in baselines
        }

    metrics = {
        **results,
        "onnxruntime_over_tensorflow": ratio("onnxruntime", "tensorflow"),
        "int8_over_tensorflow": ratio("onnxruntime_int8", "tensorflow"),
        "int8_over_tensorflow_bf16": ratio("onnxruntime_int8", "tensorflow_bf16"),
        "int8_over_onnxruntime": ratio("onnxruntime_int8", "onnxruntime"),
        "float32_file_over_int8_file": round(
            onnx_path.stat().st_size / int8_path.stat().st_size, 3
        ),
        "mflop_per_image": round(flops / 1e6, 2),
        "matmul_gflops": peaks,
        "matmul_peak_gflops": max(peaks.values()),
        "onnxruntime_share_of_matmul_peak": {"batch_size": share_batch, "share": share},
        "machine": machine.describe(),
    }
    metrics["targets"] = judge(measured_targets(metrics), dict(config.targets))
    return metrics


def measured_targets(metrics: dict[str, Any]) -> dict[str, float | None]:
    """What this run measured of each sampling target (None where its batch size did not run)."""
    ort_over_tf = metrics["onnxruntime_over_tensorflow"]
    share = metrics["onnxruntime_share_of_matmul_peak"]
    middle = [ratio for size, ratio in ort_over_tf.items() if 16 <= int(size) <= 1024]
    return {
        "onnxruntime_over_tensorflow_batch_1": ort_over_tf.get("1"),
        "onnxruntime_over_tensorflow_min_batch_16_to_1024": min(middle, default=None),
        "onnxruntime_share_of_matmul_peak_batch_256": (
            share["share"] if share["batch_size"] == 256 else None
        ),
        "int8_over_tensorflow_batch_256": metrics["int8_over_tensorflow"].get("256"),
        "int8_over_tensorflow_bf16_batch_256": metrics["int8_over_tensorflow_bf16"].get("256"),
        "int8_over_onnxruntime_batch_256": metrics["int8_over_onnxruntime"].get("256"),
        "float32_file_over_int8_file": metrics["float32_file_over_int8_file"],
    }


def judge(measured: dict[str, float | None], goals: dict[str, float]) -> dict[str, dict[str, Any]]:
    """Each target (`goals`: params.yaml's) with what the run measured, and whether it is met."""
    return {
        name: {
            "target": goal,
            "measured": measured[name],
            "met": measured[name] is not None and measured[name] >= goal,
        }
        for name, goal in goals.items()
    }


def matmul_products(size: int) -> dict[str, Callable[[], Any]]:
    """A float32 product of two square `size` matrices in numpy (its BLAS), onnxruntime and
    TensorFlow: the CPU's matrix-multiply peak the generator is held against."""
    import onnxruntime as ort
    import tensorflow as tf
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    spec = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in "abc"]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", spec[:2], spec[2:]
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    tf_a, tf_b = tf.constant(a), tf.constant(b)
    tf_matmul = tf.function(lambda: tf.matmul(tf_a, tf_b))
    return {
        "numpy": lambda: a @ b,
        "onnxruntime": lambda: session.run(None, {"a": a, "b": b}),
        "tensorflow": lambda: tf_matmul().numpy(),
    }


def measure_peak_share(run, noise, flops: int, size: int, config: BenchmarkConfig):
    """The matrix-product GFLOP/s of each library (medians), and the generator's share of the
    fastest: each round times one generator window and then each product, and the share is the
    median over rounds of generator GFLOP/s over that round's fastest product."""
    products = matmul_products(size)
    for product in products.values():
        product()  # warm-up
    run(noise)
    repeats = max(1, math.ceil(config.window_seconds / max(_seconds(lambda: run(noise)), 1e-6)))
    rounds = []
    for _ in range(config.windows):
        seconds = timed(lambda: [run(noise) for _ in range(repeats)])
        generator = repeats * len(noise) * flops / seconds / 1e9
        speeds = {name: 2 * size**3 / timed(product) / 1e9 for name, product in products.items()}
        rounds.append((generator, speeds))
    peaks = {name: round(float(np.median([r[1][name] for r in rounds])), 1) for name in products}
    share = float(np.median([generator / max(speeds.values()) for generator, speeds in rounds]))
    return peaks, round(share, 3)


def measure_latency(runners, noise: np.ndarray, calls: int) -> dict[str, list[float]]:
    """Single-call times at batch 1, the engines taking turns in blocks of 25 calls."""
    latencies: dict[str, list[float]] = {engine: [] for engine in runners}
    for block in range(math.ceil(calls / 25)):
        count = min(25, calls - block * 25)
        for engine, run in runners.items():
            time.sleep(SETTLE_SECONDS)
            latencies[engine] += [_seconds(lambda run=run: run(noise)) for _ in range(count)]
    return latencies


def measure_throughput(runners, noise: np.ndarray, windows: int, window_seconds: float):
    """Median samples/s per engine over `windows` timed windows, alternating the engines."""
    repeats = {}
    for engine, run in runners.items():
        run(noise)  # warm-up at this batch size
        once = min(_seconds(lambda run=run: run(noise)) for _ in range(2))
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
    rates = {engine: metrics[engine].get("samples_per_second", {}) for engine in ENGINES}
    lines = [
        f"{'batch':>6}  {'onnxruntime/s':>14}  {'tensorflow/s':>13}  {'ratio':>6}  "
        f"{'ORT GFLOP/s':>11}  {'int8/s':>8}  {'TF bf16/s':>10}  {'int8/TF':>8}"
    ]
    for size, rate in rates["onnxruntime"].items():
        bf16 = rates["tensorflow_bf16"].get(size)
        lines.append(
            f"{size:>6}  {rate:>14,.0f}  {rates['tensorflow'][size]:>13,.0f}  "
            f"{metrics['onnxruntime_over_tensorflow'][size]:>6.2f}  "
            f"{metrics['onnxruntime']['gflops'][size]:>11.1f}  "
            f"{rates['onnxruntime_int8'][size]:>8,.0f}  "
            f"{'-' if bf16 is None else f'{bf16:,.0f}':>10}  "
            f"{metrics['int8_over_tensorflow'][size]:>8.2f}"
        )
    lines.append("")
    for name in ENGINES:
        engine = metrics[name]
        latency = engine.get("latency_ms")
        if latency is None:
            continue
        lines.append(
            f"{name:<16} batch-1 latency p50 {latency['p50']:.3f} ms, p90 {latency['p90']:.3f} ms,"
            f" p99 {latency['p99']:.3f} ms; first inference "
            f"{engine['first_inference_seconds'] * 1e3:.1f} ms"
        )
    peaks = ", ".join(f"{name} {value:.0f}" for name, value in metrics["matmul_gflops"].items())
    lines += ["", f"float32 matrix product GFLOP/s: {peaks}", ""]
    for name, target in metrics["targets"].items():
        verdict = "met" if target["met"] else "NOT met"
        lines.append(f"{name}: {target['measured']} (target {target['target']}) {verdict}")
    return "\n".join(lines)


def write_results(metrics: dict[str, Any], metrics_path: Path, plots_dir: Path) -> None:
    """The metrics JSON (for `dvc metrics show`) and a throughput table (for `dvc plots show`)."""
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    plots_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(metrics_path, metrics)
    rows = [",".join(("batch_size", *ENGINES))]
    for size in metrics["onnxruntime"]["samples_per_second"]:
        cells = [str(metrics[e].get("samples_per_second", {}).get(size, "")) for e in ENGINES]
        rows.append(",".join([size, *cells]))
    write_text_atomically(plots_dir / "throughput.csv", "\n".join(rows) + "\n")
    write_targets(metrics["targets"], plots_dir / "targets.csv")


def write_targets(targets: dict[str, dict[str, Any]], path: Path) -> None:
    """The targets as a table for `dvc plots show`: name, measured ratio, goal, met."""
    rows = ["target,measured,goal,met"]
    rows += [
        f"{name},{'' if t['measured'] is None else t['measured']},{t['target']},{t['met']}"
        for name, t in targets.items()
    ]
    write_text_atomically(path, "\n".join(rows) + "\n")
