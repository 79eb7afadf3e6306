"""What every report block reads: the metrics files, and the words that name a machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError


def read_metrics(root: Path, name: str) -> dict[str, Any]:
    path = root / "metrics" / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise PipelineError(f"{path}: cannot read ({error}); run `dvc repro` first") from error


def machine_words(machine: dict[str, Any]) -> str:
    """`a 2-core AMD EPYC with avx2, avx512f, ...`: every speed figure names its machine."""
    features = ", ".join(machine["features"]) or "none of AVX2, AVX-512, AMX"
    cap = f", oneDNN capped at {machine['isa_cap']}" if machine.get("isa_cap") else ""
    return f"a {machine['cores']}-core {machine['cpu']} with {features}{cap}"


# The widest instruction set a machine's kernels use, from the widest down: what sets its speed
# and how its arithmetic rounds.
CPU_CLASSES = (
    ("amx_bf16", "AMX"),
    ("avx512_bf16", "AVX512_BF16"),
    ("avx512f", "AVX-512"),
    ("avx2", "AVX2"),
)


def cpu_class(machine: dict[str, Any] | None) -> str:
    """`AMD EPYC, AVX512_BF16`: a table cell for the machine a run was made on ('-' before
    runs recorded it; the CPU alone where its features are not kept: `dvc exp show` drops a
    metric's lists)."""
    if not machine:
        return "-"
    features = machine.get("features", [])
    widest = next((name for flag, name in CPU_CLASSES if flag in features), "")
    if machine.get("isa_cap"):
        widest = f"capped at {machine['isa_cap']}"
    return ", ".join(part for part in (machine["cpu"], widest) if part)


def machine_text(machine: dict[str, Any] | None) -> str:
    """` (machine_words)`, or nothing for metrics made before they recorded the machine."""
    return f" ({machine_words(machine)})" if machine else ""
