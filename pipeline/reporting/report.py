"""Write the README's results section from the metrics files: no hand-typed numbers.

The section sits between two marker lines in README.md and is replaced whole. The final sample
grid and the training-progress GIF are copied to `docs/images/` (DVC outputs are not in git, and a
README on a code host can only show files that are).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from pipeline.benchmarks.benchmark import ENGINES
from pipeline.config import TrainConfig
from pipeline.errors import PipelineError
from pipeline.families import FAMILIES
from pipeline.gan.losses import OBJECTIVES
from pipeline.reporting.charts import line_chart_svg
from pipeline.runtime.files import write_text_atomically

START = "<!-- results:start (written by `make report` from metrics/*.json; do not edit) -->"
END = "<!-- results:end -->"
IMAGES = {
    "plots/train/final_grid.png": "final_grid.png",
    "plots/train/progress.gif": "progress.gif",
}
QUALITY_TSV = "plots/train/quality.tsv"
QUALITY_FIGURE = "docs/images/quality.svg"
# The experiments table's rows, kept in git: `refs/exps` are neither pushed nor cloned, so a
# run's row would vanish from the README with the checkout that made it.
LEDGER = "docs/experiments.json"
LEDGER_FIELDS = (
    "name",
    "model",
    "loss",
    "epochs",
    "levers",
    "frechet_distance",
    "classifier_score",
    "precision",
    "recall",
    "smallest_class_share",
    "label_accuracy",
    "test_errors",
    "train_seconds",
    "curve",
)
QUALITY_ROWS = [
    ("frechet_distance", "Frechet distance, classifier features (lower is better)", 3),
    ("frechet_distance_logits", "Frechet distance, classifier logits", 3),
    ("classifier_score", "classifier score (max 10)", 3),
    ("precision", "precision (fidelity)", 3),
    ("recall", "recall (diversity)", 3),
    ("class_entropy", "entropy of predicted classes (max ln 10 = 2.303)", 3),
    ("smallest_class_share", "smallest class share (0.1 if even)", 3),
    ("largest_class_share", "largest class share", 3),
    ("unsure_share", "share the classifier is unsure of (max p < 0.5)", 4),
]


def read_metrics(root: Path, name: str) -> dict[str, Any]:
    path = root / "metrics" / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({error}); run `dvc repro` first") from error


def section(root: Path, experiments: list[dict[str, Any]]) -> str:
    train = read_metrics(root, "train")
    export = read_metrics(root, "export")
    bench = read_metrics(root, "benchmark")
    classifier = read_metrics(root, "classifier")
    quality = read_metrics(root, "evaluate")
    lines = [
        START,
        "## Results",
        "",
        f"Default settings, {train['epochs']} epochs ({train['steps']} steps) on "
        f"{train['device']}{machine_text(train.get('machine'))} in {train['precision']}: "
        f"{train['seconds_per_epoch']:.0f} s per epoch, "
        f"{train['images_per_second']:.0f} images/s; final losses D {train['final_d_loss']:.3f}, "
        f"G {train['final_g_loss']:.3f}.",
        "",
        "| final samples (fixed noise) | training progress |",
        "| --- | --- |",
        "| ![final grid](docs/images/final_grid.png) | ![progress](docs/images/progress.gif) |",
        "",
        f"Sample quality of `models/generator.onnx` ({quality['samples']:,} samples) against the "
        f"{quality['test_images']:,} test images, in the feature space of an MNIST classifier "
        f"with {100 * classifier['test_accuracy']:.2f}% test accuracy; the reference row is "
        f"{quality['samples']:,} real training images measured the same way:",
        "",
        "| measure | generated | real reference |",
        "| --- | ---: | ---: |",
    ]
    generated, reference = quality["generated"], quality["real_reference"]
    for key, label, digits in QUALITY_ROWS:
        lines.append(f"| {label} | {generated[key]:.{digits}f} | {reference[key]:.{digits}f} |")
    lines += performance_lines(export, bench, read_metrics(root, "train_benchmark"), quality)
    if (root / "metrics/web_benchmark.json").is_file():
        lines += web_lines(read_metrics(root, "web_benchmark"))
    if (root / "metrics/distribute_benchmark.json").is_file():
        lines += distribute_lines(read_metrics(root, "distribute_benchmark"))
    if experiments:
        lines += [
            "",
            "Experiments (`dvc exp show`; train seconds are on the machine and under the load "
            "each ran with: compare them only within one session's runs; `auto` is what it "
            "meant at the run's commit, see Sample quality):",
            "",
            "| experiment | model | loss | epochs | levers | Frechet distance | classifier score "
            "| precision | recall | smallest class | label (InfoGAN: code) accuracy "
            "| test error (supervised-only baseline) | train s |",
            "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: |",
        ]
        for row in experiments:
            accuracy, seconds = row["label_accuracy"], row["train_seconds"]
            errors = row["test_errors"]
            lines.append(
                f"| {row['name']} | {row['model']} | {row['loss']} | {row['epochs']} | "
                f"{row['levers']} | {row['frechet_distance']:.3f} | "
                f"{row['classifier_score']:.3f} | {row['precision']:.3f} | {row['recall']:.3f} | "
                f"{row['smallest_class_share']:.3f} | "
                f"{'-' if accuracy is None else f'{accuracy:.4f}'} | "
                f"{'-' if errors is None else f'{errors[0]:.2%} ({errors[1]:.2%})'} | "
                f"{'-' if seconds is None else f'{seconds:.0f}'} |"
            )
        if (root / QUALITY_FIGURE).is_file():
            lines += [
                "",
                "Validation Frechet distance during training (`train.track_samples` images "
                "of the generator that would be exported, against the classifier's held-out "
                "training images; `plots/train/quality.tsv`), by training time:",
                "",
                f"![validation Frechet distance by training time]({QUALITY_FIGURE})",
            ]
    lines.append(END)
    return "\n".join(lines) + "\n"


TARGET_LABELS = {
    "project_over_plain_float32_step": "training step, project / plain float32 tf.function",
    "onnxruntime_over_tensorflow_batch_1": "sampling, onnxruntime / TensorFlow, batch 1",
    "onnxruntime_over_tensorflow_min_batch_16_to_1024": (
        "sampling, onnxruntime / TensorFlow, lowest of batches 16-1024"
    ),
    "onnxruntime_share_of_matmul_peak_batch_256": (
        "sampling, onnxruntime GFLOP/s at batch 256 / float32 matmul peak"
    ),
    "int8_over_tensorflow_batch_256": "int8 onnxruntime / TensorFlow float32, batch 256",
    "int8_over_tensorflow_bf16_batch_256": "int8 onnxruntime / TensorFlow mixed bf16, batch 256",
}


def performance_lines(export, bench, train_bench, quality) -> list[str]:
    """The performance section: every ratio measured side by side, and the targets."""
    rates = {engine: bench[engine]["samples_per_second"] for engine in ENGINES}
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
    plain, project = (train_bench["images_per_second"][k] for k in ("plain_float32", "project"))
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
        f"Training step, batch {train_bench['batch_size']} on {train_bench['device']}"
        f"{machine_text(train_bench.get('machine'))} "
        f"(`make bench-train`, alternating windows): plain float32 `tf.function` "
        f"{plain:.0f} images/s, the project's step ({train_bench['precision']}) {project:.0f} "
        f"images/s. The int8 model's Frechet distance is "
        f"{quality['int8_frechet_distance_ratio']:.3f}x the float32 model's.",
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
        f"difference from the Python sampler's pixels, grey levels: {parity}. Samples/s:",
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


# Train params that change only pictures and bookkeeping, not the generator a run exports.
COSMETIC_PARAMS = ("sample_every", "grid_size", "checkpoint_every")


DEFAULT_HORIZON = TrainConfig.average_horizon


def machine_words(machine: dict[str, Any]) -> str:
    """`a 2-core AMD EPYC with avx2, avx512f, ...`: every speed figure names its machine."""
    features = ", ".join(machine["features"]) or "none of AVX2, AVX-512, AMX"
    return f"a {machine['cores']}-core {machine['cpu']} with {features}"


def machine_text(machine: dict[str, Any] | None) -> str:
    """` (machine_words)`, or nothing for metrics made before they recorded the machine."""
    return f" ({machine_words(machine)})" if machine else ""


def _rate_text(rate: float | str) -> str:
    return rate if isinstance(rate, str) else f"{rate:g}"


def levers(params: dict[str, Any]) -> str:
    """The quality levers a run used, in a few words (runs from before them used none)."""
    if "average_decay" not in params:
        return "none"
    # Commits made while the levers were added lack some keys: what they ran with then.
    discriminator_rate = params.get("discriminator_learning_rate", params["learning_rate"])
    tracked = params.get("track_every", 0)
    parts = [
        f"average {params['average_decay']}" if params["average_decay"] else "no average",
        f"G lr {_rate_text(params['learning_rate'])}, D lr {_rate_text(discriminator_rate)}",
        f"{params.get('export_weights', 'last')} weights" if tracked else "untracked",
    ]
    # beta1 was 0.5 for every model until `auto` (that measured best for each) replaced it.
    if params.get("beta1", "auto") not in ("auto", 0.5):
        parts.append(f"beta1 {params['beta1']}")
    if params.get("beta2", 0.999) != 0.999:  # a screening run's key, not one of main's
        parts.append(f"beta2 {params['beta2']}")
    family = FAMILIES[params.get("model", "unconditional")]
    schedule = params.get("lr_schedule", "auto")
    if schedule == "auto":
        schedule = family.defaults.lr_schedule
    if schedule != "constant":
        parts.append(schedule)
    if params.get("average_horizon", DEFAULT_HORIZON) != DEFAULT_HORIZON:
        parts.append(f"average horizon {params['average_horizon']}")
    if params.get("label_smoothing"):
        parts.append(f"label smoothing {params['label_smoothing']}")
    if (
        params.get("r1_weight")
        and family.takes_r1
        and OBJECTIVES[params.get("loss", "gan")].takes_r1
    ):
        parts.append(f"R1 {params['r1_weight']}")
    if params.get("augment", "none") != "none":
        parts.append(f"augment {params['augment']}")
    if params.get("batch_size", 128) != 128:
        parts.append(f"batch {params['batch_size']}")
    if params.get("seed", 0):
        parts.append(f"seed {params['seed']}")
    if params.get("model") == "infogan":  # runs from before the keys: 1 for every code
        parts.append(f"info weight {params.get('info_weight', 1.0)}")
        parts.append(f"continuous weight {params.get('continuous_info_weight', 1.0)}")
        if params.get("categorical_jitter"):  # runs from before the key read it unjittered
            parts.append("jittered category")
    if params.get("model") == "semi-supervised":
        labelled = 10 * params.get("labelled_per_class", 10)
        parts.append(f"{labelled} labels, label seed {params.get('label_seed', 0)}")
    if params.get("distribute", "auto") not in ("auto", "off"):
        replicas = params.get("replicas") or ""
        parts.append(f"{params['distribute']} {replicas}".strip())
        if params.get("batch_norm", "synchronized") != "synchronized":
            parts.append(f"{params['batch_norm']} batch norm")
    return ", ".join(parts)


def experiment_rows(exp_show: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per evaluated run in `dvc exp show --json` output: the workspace, then every
    experiment of every commit; a conditional model's row has its label accuracy, an InfoGAN
    model's the accuracy of its categorical code matched to digits (else None), a
    semi-supervised model's the test errors of its classifier and baseline (else None)."""
    rows, seen = [], set()

    def add(name: str, rev: str | None, data: dict[str, Any] | None) -> None:
        try:
            params = data["params"]["params.yaml"]["data"]["train"]
            evaluated = data["metrics"]["metrics/evaluate.json"]["data"]
            generated = evaluated["generated"]
        except (KeyError, TypeError):
            return  # a run without an evaluate result has nothing to compare
        model = params.get("model", "unconditional")  # runs from before the option
        # Runs that would show the same row are listed once (an old commit's re-export can
        # move the distance in the sixth digit).
        settings = {k: v for k, v in params.items() if k not in COSMETIC_PARAMS}
        key = (json.dumps(settings, sort_keys=True), round(generated["frechet_distance"], 3))
        if key in seen:
            return
        seen.add(key)
        accuracy = (evaluated.get("conditioning") or {}).get("label_accuracy")
        if "codes" in evaluated:
            accuracy = evaluated["codes"]["categorical"]["accuracy"]
        errors = None
        if "semi_supervised" in evaluated:
            measured = evaluated["semi_supervised"]
            errors = (measured["test_error"], measured["baseline_test_error"])
        train = ((data.get("metrics") or {}).get("metrics/train.json") or {}).get("data") or {}
        rows.append(
            {
                "name": name,
                "rev": rev,
                **params,
                "model": model,
                "epochs": train.get("epochs", params.get("epochs")),  # `auto` resolved
                "levers": levers(params),
                **generated,
                "label_accuracy": accuracy,
                "test_errors": errors,
                "train_seconds": train.get("train_seconds"),
            }
        )

    for baseline in exp_show:
        # A commit's own metrics files can predate its params (committed between runs); the
        # workspace's and each experiment's were written by the run they describe.
        if baseline["rev"] == "workspace":
            add("workspace", None, baseline.get("data"))
        for experiment in baseline.get("experiments") or []:
            for revision in experiment.get("revs", []):
                add(
                    revision.get("name") or experiment.get("name"),
                    revision.get("rev"),
                    revision.get("data"),
                )
    return rows


def dvc_experiments(root: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["dvc", "exp", "show", "--json", "--all-commits"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise PipelineError(f"dvc exp show failed: {done.stderr.strip().splitlines()[-1:]}")
    return experiment_rows(json.loads(done.stdout))


def quality_curve(root: Path, rev: str | None) -> list[tuple[float, float]]:
    """(train seconds, validation Frechet distance) of one run, if it tracked it: the
    workspace's plots/train/quality.tsv, or an experiment's from its git commit (the file is in
    git)."""
    if rev is None:
        path = root / QUALITY_TSV
        return tracked_points(path.read_text() if path.is_file() else "")
    shown = subprocess.run(
        ["git", "show", f"{rev}:{QUALITY_TSV}"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    return tracked_points(shown.stdout if shown.returncode == 0 else "")


def merge_ledger(root: Path, experiments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of `experiments` (from `dvc exp show`) followed by the rows of the ledger whose
    names they do not reuse; the ledger is rewritten with the result. A row keeps what the table
    and the chart show, its quality curve included, since its commit may not outlive the
    checkout."""
    path = root / LEDGER
    try:
        kept = json.loads(path.read_text()) if path.is_file() else []
    except ValueError as error:
        raise PipelineError(f"{path}: not JSON ({error}); restore it from git") from error
    current = [
        {key: row.get(key) for key in LEDGER_FIELDS}
        | {"curve": quality_curve(root, row.get("rev"))}
        for row in experiments
    ]
    names = {row["name"] for row in current}
    merged = current + [row for row in kept if row.get("name") not in names]
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(json.dumps(row) for row in merged)  # a row per line: diffs show runs
    write_text_atomically(path, f"[\n{lines}\n]\n")
    return merged


def tracked_points(tsv: str) -> list[tuple[float, float]]:
    lines = tsv.splitlines()
    if len(lines) < 2:
        return []
    columns = lines[0].split("\t")
    seconds, distance = columns.index("train_seconds"), columns.index("frechet_distance")
    rows = [line.split("\t") for line in lines[1:]]
    return [(float(row[seconds]), float(row[distance])) for row in rows]


def write_report(root: Path, readme: Path, experiments: list[dict[str, Any]]) -> None:
    """Replace the results section of `readme` (appended if it has none), copy the images and
    draw the validation Frechet distance of each tracked run (`experiments`: rows of
    `merge_ledger`)."""
    text = readme.read_text()
    images = root / "docs/images"
    images.mkdir(parents=True, exist_ok=True)
    curves = {row["name"]: row["curve"] for row in experiments if row.get("curve")}
    if curves:
        chart = line_chart_svg(
            curves, x_label="training seconds", y_label="validation Frechet distance"
        )
        write_text_atomically(root / QUALITY_FIGURE, chart)
    new_section = section(root, experiments)
    for source, name in IMAGES.items():
        shutil.copyfile(root / source, images / name)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + new_section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + new_section
    write_text_atomically(readme, text)
