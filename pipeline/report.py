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

from pipeline.errors import PipelineError
from pipeline.files import write_text_atomically

START = "<!-- results:start (written by `make report` from metrics/*.json; do not edit) -->"
END = "<!-- results:end -->"
IMAGES = {
    "plots/train/final_grid.png": "final_grid.png",
    "plots/train/progress.gif": "progress.gif",
}
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
        f"{train['device']} in {train['precision']}: {train['seconds_per_epoch']:.0f} s per epoch, "
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
    lines += [
        "",
        f"Export: largest |onnxruntime - TensorFlow| = {export['max_abs_diff']:.2e} on "
        f"{export['check_samples']} samples. Sampling speed (samples/s, median of timed windows, "
        "both engines in one run, float32):",
        "",
        "| batch | onnxruntime | TensorFlow | ratio | ORT GFLOP/s | TF GFLOP/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ort, tf = bench["onnxruntime"], bench["tensorflow"]
    for size in sorted(ort["samples_per_second"], key=int):  # JSON keys come back sorted as text
        rate = ort["samples_per_second"][size]
        lines.append(
            f"| {size} | {rate:,.0f} | {tf['samples_per_second'][size]:,.0f} | "
            f"{bench['onnxruntime_over_tensorflow'][size]:.2f} | {ort['gflops'][size]:.1f} | "
            f"{tf['gflops'][size]:.1f} |"
        )
    lines += [
        "",
        f"Batch-1 latency p50/p99: onnxruntime {ort['latency_ms']['p50']:.2f}/"
        f"{ort['latency_ms']['p99']:.2f} ms, TensorFlow {tf['latency_ms']['p50']:.2f}/"
        f"{tf['latency_ms']['p99']:.2f} ms.",
    ]
    if experiments:
        lines += [
            "",
            "Experiments (`dvc exp show`):",
            "",
            "| experiment | loss | epochs | Frechet distance | classifier score | precision "
            "| recall |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in experiments:
            lines.append(
                f"| {row['name']} | {row['loss']} | {row['epochs']} | "
                f"{row['frechet_distance']:.3f} | {row['classifier_score']:.3f} | "
                f"{row['precision']:.3f} | {row['recall']:.3f} |"
            )
    lines.append(END)
    return "\n".join(lines) + "\n"


def experiment_rows(exp_show: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per evaluated run in `dvc exp show --json` output (the workspace first)."""
    rows, seen = [], set()

    def add(name: str, data: dict[str, Any] | None) -> None:
        try:
            params = data["params"]["params.yaml"]["data"]["train"]
            generated = data["metrics"]["metrics/evaluate.json"]["data"]["generated"]
        except (KeyError, TypeError):
            return  # a run without an evaluate result has nothing to compare
        key = (params["loss"], params["epochs"], generated["frechet_distance"])
        if key in seen:
            return
        seen.add(key)
        rows.append({"name": name, **params, **generated})

    for baseline in exp_show:
        rev = baseline["rev"]  # "workspace", or a commit
        add(baseline.get("name") or (rev if rev == "workspace" else rev[:7]), baseline.get("data"))
        for experiment in baseline.get("experiments") or []:
            for revision in experiment.get("revs", []):
                add(revision.get("name") or experiment.get("name"), revision.get("data"))
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


def write_report(root: Path, readme: Path, experiments: list[dict[str, Any]]) -> None:
    """Replace the results section of `readme` (appended if it has none) and copy the images."""
    text = readme.read_text()
    new_section = section(root, experiments)
    images = root / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    for source, name in IMAGES.items():
        shutil.copyfile(root / source, images / name)
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + new_section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + new_section
    write_text_atomically(readme, text)
