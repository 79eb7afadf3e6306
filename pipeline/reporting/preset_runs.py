"""The presets' block of docs/EXPERIMENTS.md: what each preset of `presets/` is, and what its
runs in the ledger cost and reached."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from pipeline.config import read_params, section_from
from pipeline.families import resolve
from pipeline.families.base import OwnMeasure
from pipeline.presets import Preset, preset_names, read_preset
from pipeline.reporting.ledger import levers, own_measure


def settings_key(preset: Preset, root: Path) -> tuple[str, str, int, str]:
    """(model, loss, epochs, levers) a run of `preset` with training seed 0 has in the ledger."""
    params = {**read_params(root / "params.yaml").get("train", {}), **preset.train, "seed": 0}
    resolved = resolve(section_from(params, "train", preset.name))
    return resolved.model, resolved.loss, resolved.epochs, levers(params)


def without_seed(row_levers: str) -> str:
    """A ledger row's levers without its training seed (`seed 1, r1_every 1` -> `r1_every 1`)."""
    parts = [part for part in row_levers.split(", ") if not part.startswith("seed ")]
    return ", ".join(parts) or "defaults"


def preset_runs(preset: Preset, root: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger's runs of `preset`: those it names, and those with its settings at any seed."""
    model, loss, epochs, wanted = settings_key(preset, root)
    return [
        row
        for row in rows
        if row["name"] in preset.runs
        or (
            (row["model"], row["loss"], row["epochs"]) == (model, loss, epochs)
            and without_seed(row["levers"]) == wanted
        )
    ]


def meets(row: dict[str, Any], targets: dict[str, float]) -> bool:
    """Whether a run reaches every target of its preset (`Preset.targets`)."""
    checks = {
        "frechet_distance": lambda goal: row["frechet_distance"] <= goal,
        "train_minutes": lambda goal: (row["train_seconds"] or float("inf")) <= 60 * goal,
        "family_measure": lambda goal: (own_measure(row) or OwnMeasure("", -1.0)).value >= goal,
    }
    return all(checks[name](goal) for name, goal in targets.items())


def targets_text(targets: dict[str, float], runs: list[dict[str, Any]]) -> str:
    """`FD ≤ 1.5, ≤ 10 min: 2 of 2 runs`, or `-` for a preset without targets."""
    if not targets:
        return "-"
    words = {
        "frechet_distance": lambda goal: f"FD ≤ {goal:g}",
        "train_minutes": lambda goal: f"≤ {goal:g} min",
        "family_measure": lambda goal: f"its measure ≥ {goal:g}",
    }
    goals = ", ".join(words[name](goal) for name, goal in targets.items())
    return f"{goals}: {sum(meets(row, targets) for row in runs)} of {len(runs)} runs"


def spread(values: list[float], form: str) -> str:
    """`mean ± sd`: the runs' mean and sample standard deviation (one value alone, or when
    they agree to `form`'s digits)."""
    mean = statistics.fmean(values)
    if len(values) < 2 or f"{min(values):{form}}" == f"{max(values):{form}}":
        return f"{mean:{form}}"
    return f"{mean:{form}} ± {statistics.stdev(values):{form}}"


def presets_block(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """One row a preset: its file's comment, its settings, and the spread of its runs."""
    lines = [
        "| preset | what it is | settings | runs | Frechet distance | classifier score "
        "| its family's measure | train s | targets met |",
        "| --- | --- | --- | --- | ---: | ---: | --- | ---: | --- |",
    ]
    for name in preset_names(root):
        preset = read_preset(root, name)
        settings = ", ".join(f"`{value}`" for value in preset.overrides())
        runs = preset_runs(preset, root, rows)
        if not runs:
            lines.append(
                f"| `{name}` | {preset.about} | {settings} | not run yet | | | | | "
                f"{targets_text(preset.targets, runs)} |"
            )
            continue
        measures = [measure for measure in map(own_measure, runs) if measure]
        measured = "-"
        if measures:
            first = measures[0]
            measured = f"{first.what} {spread([m.value for m in measures], '.2%')}"
        seconds = [row["train_seconds"] for row in runs if row["train_seconds"] is not None]
        names = ", ".join(f"`{row['name']}`" for row in runs)
        lines.append(
            f"| `{name}` | {preset.about} | {settings} | {names} | "
            f"{spread([row['frechet_distance'] for row in runs], '.3f')} | "
            f"{spread([row['classifier_score'] for row in runs], '.3f')} | {measured} | "
            f"{spread(seconds, '.0f') if seconds else '-'} | "
            f"{targets_text(preset.targets, runs)} |"
        )
    return lines
