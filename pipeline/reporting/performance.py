"""The performance page's tables: every speed ratio measured side by side in one run, the
browser and Node figures, and what `tf.distribute` adds to a step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.benchmarks.benchmark import ENGINES
from pipeline.benchmarks.train_benchmark import PARTS
from pipeline.reporting.figures import machine_text, machine_words, read_metrics

TARGET_LABELS = {
    "loop_over_plain_bfloat16_step": "training loop / plain mixed-bf16 tf.function step",
    "loop_share_of_bfloat16_peak": "training loop GFLOP/s / bf16 matrix product peak",
    "onnxruntime_over_tensorflow_batch_1": "sampling, onnxruntime / TensorFlow, batch 1",
    "onnxruntime_over_tensorflow_min_batch_16_to_1024": (
        "sampling, onnxruntime / TensorFlow, lowest of batches 16-1024"
    ),
    "onnxruntime_share_of_matmul_peak_batch_256": (
        "sampling, onnxruntime GFLOP/s at batch 256 / float32 matmul peak"
    ),
    "int8_over_tensorflow_batch_256": "int8 onnxruntime / TensorFlow float32, batch 256",
    "int8_over_onnxruntime_batch_256": "int8 onnxruntime / float32 onnxruntime, batch 256",
    "float32_file_over_int8_file": "float32 model file / int8 model file",
    "int8_over_tensorflow_bf16_batch_256": "int8 onnxruntime / TensorFlow mixed bf16, batch 256",
}


PAGE_TARGET_LABELS = {
    "first_grid_ms": "first visit: navigation to the first grid of 64, ms (median)",
    "reload_first_grid_ms": "reload (304s from the browser's cache): to the first grid, ms",
    "parity_max_grey_levels": "largest difference from the Python sampler's pixels, grey levels",
}


def performance_lines(export, bench, train_bench, quality) -> list[str]:
    """The performance section: every ratio measured side by side, and the targets."""
    rates = {engine: bench[engine].get("samples_per_second", {}) for engine in ENGINES}
    lines = [
        "",
        "### Performance",
        "",
        f"Export: largest |onnxruntime - TensorFlow| = {export['max_abs_diff']:.2e} on "
        f"{export['check_samples']} samples; the int8 model differs from it by "
        f"{export['int8_mean_abs_diff']:.4f} on average. Sampling speed (samples/s, medians of "
        "timed windows, all engines alternating in one run of `make bench`"
        f"{', on ' + machine_words(bench['machine']) if bench.get('machine') else ''}):",
        "",
        "| batch | onnxruntime | TensorFlow | ratio | ORT GFLOP/s | ORT int8 | TF mixed bf16 "
        "| int8 / TF |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in sorted(rates["onnxruntime"], key=int):  # JSON keys come back sorted as text
        bf16 = rates["tensorflow_bf16"].get(size)
        lines.append(
            f"| {size} | {rates['onnxruntime'][size]:,.0f} | {rates['tensorflow'][size]:,.0f} | "
            f"{bench['onnxruntime_over_tensorflow'][size]:.2f} | "
            f"{bench['onnxruntime']['gflops'][size]:.1f} | "
            f"{rates['onnxruntime_int8'][size]:,.0f} | "
            f"{'-' if bf16 is None else f'{bf16:,.0f}'} | "
            f"{bench['int8_over_tensorflow'][size]:.2f} |"
        )
    ort, tf, int8 = bench["onnxruntime"], bench["tensorflow"], bench["onnxruntime_int8"]
    peaks = ", ".join(f"{name} {value:.0f}" for name, value in bench["matmul_gflops"].items())
    share = bench["onnxruntime_share_of_matmul_peak"]
    lines += [
        "",
        f"Batch-1 latency p50/p99: onnxruntime {ort['latency_ms']['p50']:.2f}/"
        f"{ort['latency_ms']['p99']:.2f} ms, int8 {int8['latency_ms']['p50']:.2f}/"
        f"{int8['latency_ms']['p99']:.2f} ms, TensorFlow {tf['latency_ms']['p50']:.2f}/"
        f"{tf['latency_ms']['p99']:.2f} ms. Float32 matrix product, GFLOP/s: {peaks}; the "
        f"generator ({bench['mflop_per_image']} MFLOP per image) in onnxruntime at batch "
        f"{share['batch_size']} reaches {100 * share['share']:.0f}% of the fastest, measured "
        "in alternation with it.",
        "",
        f"The int8 model's Frechet distance is {quality['int8_frechet_distance_ratio']:.3f}x "
        "the float32 model's.",
        *training_lines(train_bench),
        "",
        "| target | goal | measured | met |",
        "| --- | ---: | ---: | --- |",
    ]
    targets = {**train_bench["targets"], **bench["targets"]}
    for name, target in targets.items():
        measured = "-" if target["measured"] is None else f"{target['measured']:.3f}"
        label = TARGET_LABELS.get(name, name)
        verdict = "yes" if target["met"] else "**no**"
        lines.append(f"| {label} | {target['target']} | {measured} | {verdict} |")
    return lines


def training_lines(bench: dict[str, Any]) -> list[str]:
    """The training loop beside the plain steps and the matrix product, and its profile."""
    rates, peaks = bench["images_per_second"], bench["matmul_gflops"]
    lines = [
        "",
        f"Training, batch {bench['batch_size']} on {bench['device']}"
        f"{machine_text(bench.get('machine'))}, the loop in {bench['precision']} (`make "
        "bench-train`: every figure from one run, the steps in alternating windows): the loop "
        f"{rates['loop']:.0f} images/s, its step alone {rates['project_step']:.0f}; plain "
        f"`tf.function` steps of the same networks {rates['plain_bfloat16']:.0f} in mixed "
        f"bfloat16 and {rates['plain_float32']:.0f} in float32. At "
        f"{bench['mflop_per_image']} MFLOP per training image the loop runs at "
        f"{100 * bench['loop_share_of_bfloat16_peak']:.0f}% of the bfloat16 matrix product's "
        f"{peaks['bfloat16']:.0f} GFLOP/s (float32: {peaks['float32']:.0f}). Where a step of "
        "the loop goes:",
        "",
        "| part | ms per step | share |",
        "| --- | ---: | ---: |",
    ]
    for name, label in PARTS.items():  # in the order of a step (the JSON's is sorted)
        part = bench["profile"][name]
        lines.append(f"| {label} | {part['ms_per_step']:.1f} | {100 * part['share']:.1f}% |")
    return lines


# The first visit's steps, as the page records them (web/app.js, `milestone`).
VISIT_STEPS = {
    "script": "its script running",
    "runtime": "the runtime compiled",
    "download": "the model downloaded",
    "session": "the session made",
}


def steps_text(web: dict[str, Any]) -> str:
    """` Of that median: ...`, the first visit's steps (empty for runs made before)."""
    steps = web["first_grid_ms"].get("steps_median")
    if not steps:
        return ""
    reached = ", ".join(
        f"{label} at {steps[name]:.0f} ms" for name, label in VISIT_STEPS.items() if name in steps
    )
    return f" Median milestones of a first visit: {reached}."


def web_lines(web: dict[str, Any]) -> list[str]:
    """The browser and Node figures of `make bench-web`, beside native onnxruntime."""
    loads = ", ".join(f"{ms:.0f}" for ms in web["first_grid_ms"]["loads"])
    sizes = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in web["model_bytes"].items())
    parity = ", ".join(f"{name} {levels}" for name, levels in web["parity_max_grey_levels"].items())
    lines = [
        "",
        f"In the browser and in Node (`make bench-web`: {web['browser']}, onnxruntime-web "
        f"{web['onnxruntime_web']} on WASM, onnxruntime-node {web['onnxruntime_node']}, native "
        f"onnxruntime measured in the same run{', on ' + machine_words(web['machine'])}): "
        f"from navigation to the first grid of 64 digits {web['first_grid_ms']['median']:.0f} ms "
        f"median ({loads}) with the page's default model ({web['page_default']}); models "
        f"loaded: {sizes}; largest "
        f"difference from the Python sampler's pixels, grey levels: {parity}.{steps_text(web)} "
        "Samples/s:",
        "",
        "| model | threads | batch | browser | Node | native | browser / native |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, engines in web["samples_per_second"].items():
        for key in engines["browser"]:
            for batch in sorted(engines["browser"][key], key=int):
                rate = {engine: engines[engine][key][batch] for engine in engines}
                lines.append(
                    f"| {name} | {key.removeprefix('threads_')} | {batch} | "
                    f"{rate['browser']:,.0f} | {rate['node']:,.0f} | {rate['native']:,.0f} | "
                    f"{rate['browser'] / rate['native']:.2f} |"
                )
    ratio = web["ratios"]["page_default_over_native_float32_1_thread"]
    lines += [
        "",
        f"The page's default ({web['page_default']}, {web['threads'][-1]} "
        f"threads) at batch 64 runs at {ratio:.2f}x native onnxruntime float32 on one thread.",
    ]
    if "reload_first_grid_ms" in web:
        reload = web["reload_first_grid_ms"]
        loads = ", ".join(f"{ms:.0f}" for ms in reload["loads"])
        lines += [
            "",
            f"Reloaded in the same browser (its disk cache kept): the first grid after "
            f"{reload['median']:.0f} ms median ({loads}); {reload['answers_304']} of the "
            f"reloads' {reload['answers']} answers were 304 without a body, "
            f"{reload['body_bytes'] / 1e3:,.0f} kB of bodies in all.",
        ]
    if "targets" in web:
        lines += ["", "| page target | at most | measured | met |", "| --- | ---: | ---: | --- |"]
        for name, target in web["targets"].items():
            lines.append(
                f"| {PAGE_TARGET_LABELS[name]} | {target['target']:g} | "
                f"{target['measured']:.0f} | {'yes' if target['met'] else '**no**'} |"
            )
    if "api" in web:
        api = web["api"]
        lines += [
            "",
            f"HTTP API (`dcgan serve`, {api['generator']}): {api['requests']} requests of "
            f"`/api/sample?n={api['images_per_request']}` (a PNG grid each) from "
            f"{api['clients']} clients at once, on the same cores as the server: "
            f"{api['requests_per_second']:.0f} requests/s, latency p50 "
            f"{api['latency_ms']['p50']:.1f} ms, p99 {api['latency_ms']['p99']:.1f} ms.",
        ]
    return lines


DISTRIBUTED_SETUPS = {
    "mirrored_1": "MirroredStrategy, 1 replica",
    "mirrored_2": "MirroredStrategy, 2 logical CPU devices",
    "multi_worker_2": "MultiWorkerMirroredStrategy, 2 processes",
}


def distribute_lines(bench: dict[str, Any]) -> list[str]:
    """What `make bench-distribute` measured: each strategy's step against no strategy."""
    lines = [
        "",
        f"Training step under `tf.distribute` (`make bench-distribute`, batch "
        f"{bench['batch_size']}, {bench['precision']}, on {machine_words(bench['machine'])}; "
        f"no strategy: {bench['step_ms']['off']:.0f} ms per step). On 2 cores the replicas share "
        "the same cores, so this is the cost of the machinery, not a speed-up:",
        "",
        "| setup | ms per step | overhead |",
        "| --- | ---: | ---: |",
    ]
    for name, label in DISTRIBUTED_SETUPS.items():
        cost = bench["overhead"][name]
        lines.append(
            f"| {label} | {bench['step_ms'][name]:.0f} | {cost['ms']:+.0f} ms "
            f"({cost['percent']:+.0f}%) |"
        )
    return lines


def performance_block(root: Path) -> list[str]:
    """The whole block: export parity and sampling, the training step, the targets, then the
    browser and distribution figures where their benchmarks have run."""
    lines = performance_lines(
        read_metrics(root, "export"),
        read_metrics(root, "benchmark"),
        read_metrics(root, "train_benchmark"),
        read_metrics(root, "evaluate"),
    )
    if (root / "metrics/web_benchmark.json").is_file():
        lines += web_lines(read_metrics(root, "web_benchmark"))
    if (root / "metrics/distribute_benchmark.json").is_file():
        lines += distribute_lines(read_metrics(root, "distribute_benchmark"))
    return lines
