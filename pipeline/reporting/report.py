"""`make report`: every figure the docs show, written from the metrics files and the code.

Each generated part of a page sits between two marker lines, `<!-- report:NAME -->` and
`<!-- report:NAME end -->`, and is replaced whole; the prose around it is the page's own. So a
number a metrics file holds is written in one place, and a test holds every committed block equal
to what this module renders. The final sample grid and the training-progress GIF are copied to
`docs/images/` (DVC outputs are not in git, and a page on a code host shows only files that are).
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.config import TrainConfig, read_params
from pipeline.errors import PipelineError
from pipeline.families import DEFAULT_FAMILY, FAMILIES, auto_values, distributes, resolve
from pipeline.gan.losses import OBJECTIVES
from pipeline.presets import preset_names, read_preset
from pipeline.reporting.figures import cpu_class, machine_text, machine_words, read_metrics
from pipeline.reporting.ledger import draw_curves, experiments_block, own_measure, read_ledger
from pipeline.reporting.performance import performance_block
from pipeline.reporting.preset_runs import (
    presets_block,
    settings_key,
    spread,
    without_seed,
)
from pipeline.storage.files import write_text_atomically

IMAGES = {
    "plots/train/final_grid.png": "final_grid.png",
    "plots/train/progress.gif": "progress.gif",
}
QUALITY_ROWS = [
    ("frechet_distance", "Frechet distance, classifier features (lower is better)", 3),
    ("frechet_distance_logits", "Frechet distance, classifier logits", 3),
    ("kernel_distance", "kernel distance (KID), classifier features, mean of 100 subsets", 4),
    ("classifier_score", "classifier score (max 10)", 3),
    ("precision", "precision (fidelity)", 3),
    ("recall", "recall (diversity)", 3),
    ("class_entropy", "entropy of predicted classes (max ln 10 = 2.303)", 3),
    ("smallest_class_share", "smallest class share (0.1 if even)", 3),
    ("largest_class_share", "largest class share", 3),
    ("unsure_share", "share the classifier is unsure of (max p < 0.5)", 4),
]
AUTO_KEYS = (
    "learning_rate",
    "discriminator_learning_rate",
    "beta1",
    "beta2",
    "critic_steps",
    "epochs",
    "batch_size",
)


def start_mark(name: str) -> str:
    return f"<!-- report:{name} (written by `make report`; do not edit) -->"


def end_mark(name: str) -> str:
    return f"<!-- report:{name} end -->"


def results_block(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """README's headline: the run, its images, its quality against real data, its speed."""
    train = read_metrics(root, "train")
    classifier = read_metrics(root, "classifier")
    quality = read_metrics(root, "evaluate")
    bench = read_metrics(root, "benchmark")
    lines = [
        f"Default settings, {train['epochs']} epochs ({train['steps']} steps) on "
        f"{train['device']}{machine_text(train.get('machine'))} in {train['precision']}: "
        f"{train['train_seconds']:.0f} s of training, {train['images_per_second']:.0f} images/s; "
        f"final losses D {train['final_d_loss']:.3f}, G {train['final_g_loss']:.3f}.",
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
    if "memorization" in quality:  # metrics written before the measure have none
        lines += memorization_lines(quality["memorization"])
    rates = {
        engine: bench[engine]["samples_per_second"] for engine in ("onnxruntime", "tensorflow")
    }
    batch = str(bench["onnxruntime_share_of_matmul_peak"]["batch_size"])
    lines += [
        "",
        "Speed (medians, every engine measured in one run on the same machine; more in "
        "[docs/PERFORMANCE.md](docs/PERFORMANCE.md)):",
        "",
        "| what | measured |",
        "| --- | ---: |",
        f"| training, images/s | {train['images_per_second']:,.0f} |",
        f"| sampling at batch {batch}, onnxruntime float32, samples/s | "
        f"{rates['onnxruntime'][batch]:,.0f} |",
        f"| the same in TensorFlow, samples/s | {rates['tensorflow'][batch]:,.0f} |",
        f"| int8 onnxruntime / TensorFlow float32, batch {batch} | "
        f"{bench['int8_over_tensorflow'][batch]:.2f}x |",
    ]
    if (root / "metrics/web_benchmark.json").is_file():
        web = read_metrics(root, "web_benchmark")
        lines += [
            "",
            f"The page draws its first grid of 64 {web['first_grid_ms']['median']:.0f} ms after "
            f"navigation (median; `make bench-web`, its own run, on "
            f"{machine_words(web['machine'])}).",
        ]
    return lines


def memorization_lines(copies: dict[str, Any]) -> list[str]:
    """Whether the generator copies training digits, beside held-out test digits
    (docs/EVALUATION.md, memorization)."""
    generated, held_out = copies["generated"], copies["held_out"]
    share = 100 * (1 - copies["quantile"])
    return [
        "",
        f"Memorization ({generated['samples']:,} generated digits, {held_out['samples']:,} "
        f"held-out test digits, each against its nearest of the {copies['training_images']:,} "
        "training digits; "
        "[docs/EVALUATION.md](docs/EVALUATION.md#memorization)):",
        "",
        "| measure | generated | held-out real |",
        "| --- | ---: | ---: |",
        f"| share nearer to a training digit than {share:.0f}% of held-out digits are | "
        f"{generated['copy_share']:.4f} | {held_out['copy_share']:.4f} |",
        f"| median distance to the nearest training digit, pixels in [0, 1] | "
        f"{generated['median_nearest_pixels']:.3f} | {held_out['median_nearest_pixels']:.3f} |",
        f"| the same in classifier features | {generated['median_nearest_features']:.3f} | "
        f"{held_out['median_nearest_features']:.3f} |",
    ]


def families_block(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """One row a family: what it is, and the command that trains it."""
    lines = ["| family | what it is | train it |", "| --- | --- | --- |"]
    presets = preset_names(root)
    for name, family in FAMILIES.items():
        command = "`make run`" if name == DEFAULT_FAMILY else f"`dvc exp run -S train.model={name}`"
        if name in presets:
            command = f"`make exp PRESET={name}`"
        lines.append(f"| `{name}` | {family.summary} | {command} |")
    return lines


def parameters_block(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The train section: each key, its value in params.yaml and what it does (the file's own
    comment on it)."""
    text = (root / "params.yaml").read_text()
    values = read_params(root / "params.yaml").get("train", {})
    comments = _comments(text, "train")
    lines = ["| key | params.yaml | what it does |", "| --- | --- | --- |"]
    for field in dataclasses.fields(TrainConfig):
        value = values.get(field.name, field.default)
        lines.append(f"| `{field.name}` | `{value}` | {comments.get(field.name, '')} |")
    return lines


def decisions_block(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """What `auto` means for each family with each loss it takes, from the code itself."""
    header = " | ".join(f"`{key}`" for key in AUTO_KEYS)
    lines = [
        f"| family | loss | optimizer | {header} | `lr_schedule` | critic norm | weight clip "
        "| R1 | distributes |",
        "| --- | --- | --- | " + "---: | " * len(AUTO_KEYS) + "--- | --- | --- | --- | --- |",
    ]
    for name, family in FAMILIES.items():
        for loss in family.losses:
            config = TrainConfig(model=name, loss=loss)
            objective = OBJECTIVES[loss]
            auto = auto_values(config)
            values = " | ".join("-" if auto[key] is None else f"{auto[key]:g}" for key in AUTO_KEYS)
            r1 = "yes" if family.takes_r1 and objective.takes_r1 else "no"
            spread = "yes" if distributes(config) else "no"
            clip = f"{objective.clip:g}" if objective.clip else "-"
            lines.append(
                f"| `{name}` | {loss} | {auto['optimizer']} | {values} | {auto['lr_schedule']} "
                f"| {auto['critic_norm']} | {clip} | {r1} | {spread} |"
            )
    return lines


def _comments(text: str, section: str) -> dict[str, str]:
    """`key -> comment` of the `section` of a params.yaml text: a key's own comment, the
    comment lines above it, and the lines that continue its comment (indented to it)."""
    comments: dict[str, str] = {}
    key, above, inside = None, [], False
    for line in text.splitlines():
        if not line.startswith(" "):
            inside, key, above = line.startswith(f"{section}:"), None, []
            continue
        body, _, comment = line.partition("#")
        if not inside or (not comment.strip() and not body.strip()):
            continue
        if body.strip():
            key = body.strip().split(":", 1)[0]
            comments[key] = " ".join([*above, comment.strip()]).strip()
            above = []
        elif len(body) > 2 and key:  # a continuation, indented past the keys
            comments[key] = f"{comments[key]} {comment.strip()}".strip()
        else:
            above.append(comment.strip())
    return comments


# Each block: the page it is on, and what renders it from (the root, the ledger's rows).
def run_seed(row: dict[str, Any]) -> int:
    """A ledger row's training seed (rows older than the field: from its levers)."""
    if row.get("seed") is not None:
        return row["seed"]
    seeds = [part for part in row["levers"].split(", ") if part.startswith("seed ")]
    return int(seeds[0].split()[1]) if seeds else TrainConfig().seed


def losses_block(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """Every loss on the default family and every other family at its own `auto`, then every
    preset (its runs: those with its settings and those it names), training seeds 0 and 1
    each, with the family's own measure and the machine; the newest run of each."""
    lines = [
        "| model | loss | settings | seed | run | Frechet distance | KID | classifier score "
        "| recall | smallest class | family measure | train s | CPU |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    autos = [(DEFAULT_FAMILY, loss) for loss in OBJECTIVES]
    autos += [
        (name, family.losses[0]) for name, family in FAMILIES.items() if name != DEFAULT_FAMILY
    ]
    # (model, loss, epochs, levers without the seed) -> what the settings are called, and the
    # runs presets name: a preset of a family's `auto` names that row.
    names: dict[tuple, list[str]] = {
        (model, loss, resolve(TrainConfig(model=model, loss=loss)).epochs, "defaults"): ["auto"]
        for model, loss in autos
    }
    named: dict[tuple, set[str]] = {}
    for name in preset_names(root):
        preset = read_preset(root, name)
        key = settings_key(preset, root)
        names.setdefault(key, []).append(f"preset `{name}`")
        named.setdefault(key, set()).update(preset.runs)
    for key, called in names.items():
        model, loss = key[:2]
        runs = [
            row
            for row in rows
            if row["name"] in named.get(key, ())
            or (row["model"], row["loss"], row["epochs"], without_seed(row["levers"])) == key
        ]
        shown = []
        for seed in (0, 1):
            head = f"| {model} | {loss} | {', '.join(called)} | {seed} |"
            row = next((row for row in runs if run_seed(row) == seed), None)
            shown += [row] if row is not None else []
            if row is None:
                lines.append(f"{head} not run | | | | | | | | |")
                continue
            measure = own_measure(row)
            measured = measure.text() if measure else "-"
            seconds = row["train_seconds"]
            kernel = row.get("kernel_distance")  # runs evaluated before KID have none
            lines.append(
                f"{head} `{row['name']}` ({row['epochs']} epochs) | "
                f"{row['frechet_distance']:.3f} | {'-' if kernel is None else f'{kernel:.4f}'} | "
                f"{row['classifier_score']:.3f} | "
                f"{row['recall']:.3f} | {row['smallest_class_share']:.3f} | "
                f"{measured} | "
                f"{'-' if seconds is None else f'{seconds:.0f}'} | "
                f"{cpu_class(row.get('machine'))} |"
            )
        if len(shown) > 1:
            lines.append(spread_line(f"| {model} | {loss} | {', '.join(called)} |", shown))
    return lines


def spread_line(head: str, runs: list[dict[str, Any]]) -> str:
    """The runs' mean ± sample standard deviation of each figure the losses table shows (`-`
    where a run lacks it: measured before it was)."""

    def cell(values: list[Any], form: str) -> str:
        return "-" if None in values else spread(values, form)

    measures = [own_measure(run) for run in runs]
    measure = "-"
    if None not in measures and len({m.what for m in measures}) == 1:
        measure = f"{measures[0].what} {spread([m.value for m in measures], '.2%')}"
    figures = [
        cell([run["frechet_distance"] for run in runs], ".3f"),
        cell([run.get("kernel_distance") for run in runs], ".4f"),
        cell([run["classifier_score"] for run in runs], ".3f"),
        cell([run["recall"] for run in runs], ".3f"),
        cell([run["smallest_class_share"] for run in runs], ".3f"),
        measure,
        cell([run["train_seconds"] for run in runs], ".0f"),
    ]
    return f"{head} mean ± sd | {len(runs)} runs | {' | '.join(figures)} | |"


BLOCKS: dict[str, tuple[str, Callable[[Path, list[dict[str, Any]]], list[str]]]] = {
    "results": ("README.md", results_block),
    "families": ("README.md", families_block),
    "losses": ("docs/FAMILIES.md", losses_block),
    **{name: block for family in FAMILIES.values() for name, block in family.report_blocks.items()},
    "performance": ("docs/PERFORMANCE.md", lambda root, rows: performance_block(root)),
    "presets": ("docs/EXPERIMENTS.md", presets_block),
    "experiments": ("docs/EXPERIMENTS.md", experiments_block),
    "parameters": ("docs/TRAINING.md", parameters_block),
    "decisions": ("docs/DECISIONS.md", decisions_block),
}


def render(root: Path, rows: list[dict[str, Any]]) -> dict[str, str]:
    """Each page with its blocks as `make report` writes them (page path -> text)."""
    pages: dict[str, str] = {}
    for name, (page, block) in BLOCKS.items():
        text = pages.get(page)
        if text is None:
            path = root / page
            if not path.is_file():
                raise PipelineError(f"{path}: no such page for the {name} block")
            text = path.read_text()
        start, end = start_mark(name), end_mark(name)
        if start not in text or end not in text:
            raise PipelineError(f"{root / page}: no `{start}` ... `{end}` block")
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1]
        body = "\n".join(block(root, rows))
        pages[page] = f"{head}{start}\n{body}\n{end}{tail}"
    return pages


def write_report(root: Path, rows: list[dict[str, Any]] | None = None) -> list[Path]:
    """Fill every block (`rows`: the ledger's, by default as committed), draw the quality
    chart and copy the images; returns the pages written."""
    rows = read_ledger(root) if rows is None else rows
    missing = [source for source in IMAGES if not (root / source).is_file()]
    if missing:
        raise PipelineError(f"{missing[0]}: no such file; `make run` draws it")
    images = root / "docs/images"
    images.mkdir(parents=True, exist_ok=True)
    draw_curves(root, rows)
    for source, name in IMAGES.items():
        shutil.copyfile(root / source, images / name)
    written = []
    for page, text in render(root, rows).items():
        write_text_atomically(root / page, text)
        written.append(root / page)
    return written
