"""The experiments ledger: every evaluated run `dvc exp show` lists, kept in
`docs/experiments.json` (a run's row outlives the checkout that made it), and its table.

`refs/exps` are neither pushed nor cloned, so the ledger is what carries the runs in git.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

from pipeline.config import TrainConfig
from pipeline.errors import PipelineError
from pipeline.families import DEFAULT_FAMILY, FAMILIES, auto_values
from pipeline.families.base import OwnMeasure
from pipeline.gan.losses import OBJECTIVES
from pipeline.storage.files import write_text_atomically

# dvclive's tables of the tracked runs' training time and validation Frechet distance by step.
LIVE_METRICS = "dvclive/train/plots/metrics"
CURVE_COLUMNS = ("train_seconds", "frechet_distance")
QUALITY_FIGURE = "docs/images/quality.svg"
LEDGER = "docs/experiments.json"
FAMILY_FIELDS = tuple(
    dict.fromkeys(field for family in FAMILIES.values() for field in family.ledger_fields)
)

# The common fields, then those the families fill (`Family.ledger_fields`), then the run's.
LEDGER_FIELDS = (
    "name",
    "model",
    "loss",
    "epochs",
    "levers",
    "frechet_distance",
    "kernel_distance",
    "classifier_score",
    "precision",
    "recall",
    "smallest_class_share",
    *FAMILY_FIELDS,
    "train_seconds",
    "seed",
    "machine",
    "curve",
)

# Train params that change only pictures and bookkeeping, not the generator a run exports.
COSMETIC_PARAMS = ("sample_every", "grid_size", "checkpoint_every")

# Not levers: what the table shows in columns of their own, and the cosmetic keys.
NOT_LEVERS = ("model", "loss", "epochs", *COSMETIC_PARAMS)


def levers(params: dict[str, Any]) -> str:
    """The train settings a run changed from params.yaml's defaults, as `key value`, in the
    section's order, leaving out those of other families (which its model never read);
    `defaults` when it changed none. A value that is what `auto` means for the run's family
    and loss is no change (a run made when the default was that number wrote it out)."""
    defaults = TrainConfig()
    family = FAMILIES.get(family_name(params.get("model", "auto")))
    others = {
        key
        for other in FAMILIES.values()
        if other is not family
        for key in other.own_settings
        if family is None or key not in family.own_settings
    }
    meant = auto_meaning(params)
    changed = [
        f"{field.name} {params[field.name]}"
        for field in dataclasses.fields(TrainConfig)
        if field.name not in NOT_LEVERS
        and field.name not in others
        and field.name in params
        and params[field.name] != getattr(defaults, field.name)
        and not (
            getattr(defaults, field.name) == "auto"
            and field.name in meant
            and params[field.name] == meant[field.name]
        )
    ]
    return ", ".join(changed) or "defaults"


def auto_meaning(params: dict[str, Any]) -> dict[str, Any]:
    """What `auto` means for the run that `params` (its train section) describe; {} when its
    family or loss is not one of today's."""
    model, loss = family_name(params.get("model", "auto")), params.get("loss", "gan")
    if model not in FAMILIES or loss not in OBJECTIVES:
        return {}
    given = {key: params[key] for key in ("critic_steps", "optimizer") if key in params}
    return auto_values(TrainConfig(model=model, loss=loss, **given))


def own_measure(row: dict[str, Any]) -> OwnMeasure | None:
    """The family's own measure of a ledger row (`Family.own_measure`); None when it has
    none."""
    family = FAMILIES.get(row.get("model", ""))
    return family.own_measure(row) if family is not None else None


def family_name(model: str) -> str:
    """`train.model` as the family it names (`auto` and a key left out: the default)."""
    return DEFAULT_FAMILY if model == "auto" else model


def made_by(params: dict[str, Any], resolved: dict[str, Any]) -> bool:
    """Whether training metrics whose resolved settings are `resolved` can come from `params`:
    every setting given (not `auto`) equal to the one trained with. Without `resolved` (runs
    older than it) there is nothing to contradict."""
    return all(
        resolved[key] == value
        for key, value in params.items()
        if key in resolved and key not in COSMETIC_PARAMS and value != "auto"
    )


def experiment_rows(exp_show: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per evaluated run in `dvc exp show --json` output: the workspace, then every
    experiment of every commit; the fields the families fill, by the run's family (None in
    the others)."""
    rows, seen = [], set()

    def add(name: str, rev: str | None, data: dict[str, Any] | None) -> None:
        try:
            params = data["params"]["params.yaml"]["data"]["train"]
            evaluated = data["metrics"]["metrics/evaluate.json"]["data"]
            generated = evaluated["generated"]
        except (KeyError, TypeError):
            return  # a run without an evaluate result has nothing to compare
        train = ((data.get("metrics") or {}).get("metrics/train.json") or {}).get("data") or {}
        if not train or not made_by(params, train.get("resolved") or {}):
            return  # its metrics are its baseline's: the run failed or is still training
        # Runs that would show the same row are listed once (an old commit's re-export can
        # move the distance in the sixth digit).
        settings = {k: v for k, v in params.items() if k not in COSMETIC_PARAMS}
        key = (json.dumps(settings, sort_keys=True), round(generated["frechet_distance"], 3))
        if key in seen:
            return
        seen.add(key)
        model = family_name(params.get("model", "auto"))
        family = FAMILIES.get(model)
        own = family.ledger_values(evaluated) if family is not None else {}
        rows.append(
            {
                "name": name,
                "rev": rev,
                **params,
                "model": model,
                "epochs": train.get("epochs", params.get("epochs")),  # `auto` resolved
                "levers": levers(params),
                **generated,
                **(dict.fromkeys(FAMILY_FIELDS) | own),
                "train_seconds": train.get("train_seconds"),
                "seed": params.get("seed", TrainConfig().seed),
                "machine": train.get("machine"),
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
    """(train seconds, validation Frechet distance) of one run, if it tracked it: from the
    workspace's dvclive tables, or an experiment's from its git commit (they are in git)."""
    tables = []
    for column in CURVE_COLUMNS:
        path = f"{LIVE_METRICS}/{column}.tsv"
        if rev is None:
            tables.append((root / path).read_text() if (root / path).is_file() else "")
            continue
        shown = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True, check=False
        )
        tables.append(shown.stdout if shown.returncode == 0 else "")
    return tracked_points(*tables)


def merge_ledger(root: Path, experiments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of `experiments` (from `dvc exp show`) followed by the rows of the ledger whose
    names they do not reuse; the ledger is rewritten with the result. A row keeps what the table
    and the chart show, its quality curve included, since its commit may not outlive the
    checkout."""
    path = root / LEDGER
    kept = read_ledger(root)
    kept_curves = {row.get("name"): row.get("curve", []) for row in kept}

    def curve(row: dict[str, Any]) -> list[tuple[float, float]]:
        # An experiment's commit that holds no curve in the tables read here (one made with an
        # older layout of them) keeps the curve the ledger read from it when it was made.
        found = quality_curve(root, row.get("rev"))
        if not found and row.get("rev") is not None:
            return kept_curves.get(row.get("name"), [])
        return found

    current = [
        {key: row.get(key) for key in LEDGER_FIELDS} | {"curve": curve(row)} for row in experiments
    ]
    names = {row["name"] for row in current}
    merged = current + [row for row in kept if row.get("name") not in names]
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(json.dumps(row) for row in merged)  # a row per line: diffs show runs
    write_text_atomically(path, f"[\n{lines}\n]\n")
    return merged


def tracked_points(seconds_tsv: str, distance_tsv: str) -> list[tuple[float, float]]:
    """The points of the two dvclive tables (`step`, then the value) at the steps both have."""
    seconds, distances = _by_step(seconds_tsv), _by_step(distance_tsv)
    return [(seconds[step], distances[step]) for step in sorted(seconds.keys() & distances)]


def _by_step(tsv: str) -> dict[int, float]:
    rows = [line.split("\t") for line in tsv.splitlines()[1:] if line]
    return {int(step): float(value) for step, value in rows}


def read_ledger(root: Path) -> list[dict[str, Any]]:
    path = root / LEDGER
    try:
        return json.loads(path.read_text()) if path.is_file() else []
    except ValueError as error:
        raise PipelineError(f"{path}: not JSON ({error}); restore it from git") from error


def experiments_block(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """The ledger's table, then the chart of every tracked run's validation Frechet distance."""
    lines = [
        "Train seconds are on the machine and under the load each run had: compare them only "
        "within one session's runs. `levers` names the train settings a run changed from "
        "params.yaml's; `auto` is what it meant at the run's commit.",
        "",
        "| experiment | model | loss | epochs | levers | Frechet distance | classifier score "
        "| precision | recall | smallest class | family measure | train s |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for row in rows:
        measure, seconds = own_measure(row), row["train_seconds"]
        lines.append(
            f"| {row['name']} | {row['model']} | {row['loss']} | {row['epochs']} | "
            f"{row['levers']} | {row['frechet_distance']:.3f} | "
            f"{row['classifier_score']:.3f} | {row['precision']:.3f} | {row['recall']:.3f} | "
            f"{row['smallest_class_share']:.3f} | "
            f"{'-' if measure is None else measure.text()} | "
            f"{'-' if seconds is None else f'{seconds:.0f}'} |"
        )
    if (root / QUALITY_FIGURE).is_file():
        lines += [
            "",
            "Validation Frechet distance during training (`train.track_samples` images of the "
            "generator that would be exported, against the classifier's held-out training "
            "images; `dvclive/train/plots/metrics`), by training time:",
            "",
            f"![validation Frechet distance by training time](images/{Path(QUALITY_FIGURE).name})",
        ]
    return lines


def draw_curves(root: Path, rows: list[dict[str, Any]]) -> None:
    """The chart of every tracked run's validation Frechet distance, for the block."""
    from pipeline.reporting.charts import line_chart_svg

    curves = {row["name"]: row["curve"] for row in rows if row.get("curve")}
    if curves:
        chart = line_chart_svg(
            curves, x_label="training seconds", y_label="validation Frechet distance"
        )
        (root / QUALITY_FIGURE).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(root / QUALITY_FIGURE, chart)
