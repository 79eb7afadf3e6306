"""Every output DVC caches depends on the stage's inputs alone: the same command on the same
inputs writes the same bytes, so `dvc repro --force`, or `dvc repro` on a fresh machine, caches
nothing new and makes no later stage run again. (Metrics and benchmark tables, which hold run
times, are kept out of the cache in dvc.yaml.)"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import STABILISED, TINY_STAGES, dvc_stage, set_params, stage_args
from pipeline.data.download import download
from pipeline.data.sources import FolderSource

# The stages with cached outputs, in the order `dvc repro` runs them (download: below).
STAGES = ("classifier", "train", "export", "evaluate")


def cached_outputs(stage: str) -> list[str]:
    """dvc.yaml's outputs of `stage` that DVC caches (not `cache: false`)."""
    paths = []
    for entry in dvc_stage(stage).get("outs", []):
        if isinstance(entry, dict):
            (path, options), *_ = entry.items()
            if options.get("cache", True):
                paths.append(path)
        else:
            paths.append(entry)
    return paths


def hashes(folder: Path, paths: list[str]) -> dict[str, str]:
    """SHA-256 of every file under each of `paths` (files or folders)."""
    found = {}
    for path in paths:
        root = folder / path
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for file in files:
            if file.is_file():
                found[str(file.relative_to(folder))] = hashlib.sha256(file.read_bytes()).hexdigest()
    assert found, f"nothing written under {paths}"
    return found


def run_stages(stages) -> None:
    """Each stage in a process of its own, as DVC runs them (Keras names layers by how many a
    process has made before)."""
    for stage in stages:
        command = [sys.executable, "-m", "pipeline", *stage_args(stage)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow  # nine stage processes, about 70 s; tests/test_stable_files.py is the fast part
def test_every_stage_writes_the_same_bytes_again(tmp_path, tiny_dataset, monkeypatch):
    tiny_dataset.write_folder(tmp_path / "data/mnist")
    set_params(
        tmp_path,
        **{**TINY_STAGES, "train": {**TINY_STAGES["train"], **STABILISED, "sample_every": 1}},
    )
    monkeypatch.chdir(tmp_path)
    outputs = {stage: cached_outputs(stage) for stage in STAGES}
    run_stages(STAGES)
    first = {stage: hashes(tmp_path, paths) for stage, paths in outputs.items()}
    assert any(name.endswith(".keras") for name in first["classifier"])

    run_stages(STAGES)  # dvc repro --force: train resumes its finished checkpoint
    assert {stage: hashes(tmp_path, paths) for stage, paths in outputs.items()} == first

    shutil.rmtree(tmp_path / "checkpoints")  # a fresh machine trains from scratch
    run_stages(["train"])
    assert hashes(tmp_path, outputs["train"]) == first["train"]


@pytest.mark.parametrize("gzipped", [False, True])
def test_the_download_writes_the_same_bytes_again(tmp_path, tiny_dataset, gzipped):
    source = FolderSource(tiny_dataset.write_folder(tmp_path / "source", gzipped=gzipped))
    for out in ("a", "b"):
        download(tiny_dataset.spec, tmp_path / out, [source])
    assert hashes(tmp_path / "a", ["."]) == hashes(tmp_path / "b", ["."])
    assert hashes(tmp_path / "a", ["."]) == {
        name: hashlib.sha256(data).hexdigest() for name, data in tiny_dataset.raw.items()
    } | {"SHA256SUMS": hashes(tmp_path / "a", ["SHA256SUMS"])["SHA256SUMS"]}
