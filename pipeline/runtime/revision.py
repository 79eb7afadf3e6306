"""Which code produced an artifact: the git commit, marked `-dirty` when the tree had changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the whole pipeline package


def code_revision() -> str:
    """`<commit>` or `<commit>-dirty`; `unknown` outside a git checkout (an installed wheel)."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()
