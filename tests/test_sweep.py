"""Sweeps on DVC's experiment queue, and sharing them between machines through a git remote and a
DVC remote (README, Sweeps): `make sweep`'s own commands on a scratch project whose one stage
takes a second, so the grid, the queue, push and pull are exercised in full."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, STAGE_PROGRAM, make_variable

DVC = str(Path(sys.executable).with_name("dvc"))
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
    "DVC_NO_ANALYTICS": "1",
}
# Writes a metric and a cached output from its params: stands in for the pipeline's stages.
STAGE = """
import json, pathlib, yaml
train = yaml.safe_load(open("params.yaml"))["train"]
score = {"gan": 1.0, "lsgan": 2.0}[train["loss"]] + train["seed"] / 10
pathlib.Path("model.bin").write_text(f"{train}")
json.dump({"score": score}, open("metrics.json", "w"))
"""


def run(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **GIT_ENV}, timeout=600
    )
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture
def project(tmp_path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "stage.py").write_text(STAGE)
    (folder / "params.yaml").write_text(yaml.safe_dump({"train": {"loss": "gan", "seed": 0}}))
    pipeline = {
        "stages": {
            "train": {
                "cmd": f"{sys.executable} stage.py",
                "deps": ["stage.py"],
                "params": ["train.loss", "train.seed"],
                "outs": ["model.bin"],
                "metrics": [{"metrics.json": {"cache": False}}],
            }
        }
    }
    (folder / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    run("git", "init", "-q", cwd=folder)
    run(DVC, "init", "-q", cwd=folder)
    run(DVC, "repro", "-q", cwd=folder)
    # The remote every machine shares, in the project's committed config.
    run(DVC, "remote", "add", "-d", "shared", str(tmp_path / "dvc-remote"), cwd=folder)
    run("git", "add", "-A", cwd=folder)
    run("git", "commit", "-qm", "baseline", cwd=folder)
    return folder


def experiments(folder: Path) -> dict[str, float]:
    shown = json.loads(run(DVC, "exp", "show", "--json", "--all-commits", cwd=folder))
    scores = {}
    for commit in shown:
        for experiment in commit.get("experiments") or []:
            for revision in experiment["revs"]:
                data = revision.get("data") or {}
                metrics = data.get("metrics", {}).get("metrics.json", {}).get("data", {})
                if revision.get("name") and "score" in metrics:
                    scores[revision["name"]] = metrics["score"]
    return scores


def test_the_sweep_runs_its_grid_through_the_queue_and_travels_by_remotes(project, tmp_path):
    grid = make_variable("SWEEP")  # make sweep's default grid: 2 losses x 2 seeds
    run("sh", "-c", f"{DVC} exp run --queue {grid}", cwd=project)
    run(DVC, "exp", "run", "--run-all", "--jobs", make_variable("JOBS"), cwd=project)
    scores = experiments(project)
    assert sorted(scores.values()) == [1.0, 1.1, 2.0, 2.1]

    # One machine pushes its experiments (git refs and DVC outputs) to the shared remotes...
    git_remote = tmp_path / "git-remote.git"
    run("git", "init", "-q", "--bare", str(git_remote), cwd=tmp_path)
    run("git", "remote", "add", "origin", str(git_remote), cwd=project)
    run("git", "push", "-q", "origin", "HEAD:main", cwd=project)
    run(DVC, "exp", "push", "origin", "--all-commits", cwd=project)

    # ...another clones the project and pulls them: the table and the outputs come along.
    other = tmp_path / "other"
    run("git", "clone", "-q", "-b", "main", str(git_remote), str(other), cwd=tmp_path)
    run(DVC, "exp", "pull", "origin", "--all-commits", cwd=other)
    assert experiments(other) == scores
    name = min(scores, key=scores.get)
    run(DVC, "exp", "apply", name, cwd=other)
    run(DVC, "checkout", "-q", cwd=other)
    assert "'loss': 'gan', 'seed': 0" in (other / "model.bin").read_text()


def test_a_preset_runs_as_the_dvc_experiment_it_names(project):
    """`dcgan exp` (make exp) passes a preset file's values to `dvc exp run` as -S flags."""
    (project / "presets").mkdir()
    (project / "presets/lsgan.yaml").write_text("# The other loss.\ntrain:\n  loss: lsgan\n")
    printed = run(
        sys.executable, "-m", "pipeline", "exp", "lsgan", "--seed", "1", cwd=project
    ).splitlines()[0]
    assert printed == "$ dvc exp run -n lsgan-seed-1 -S train.loss=lsgan -S train.seed=1"
    assert experiments(project) == {"lsgan-seed-1": 2.1}


def test_a_stage_runs_the_code_of_the_folder_dvc_runs_it_in(tmp_path):
    """dvc.yaml runs `python -m pipeline`: an experiment's stages run its own copy of the code
    (DVC's temporary folder), where the `dcgan` script would import the workspace's install."""
    copy = tmp_path / "experiment"
    shutil.copytree(REPO / "pipeline", copy / "pipeline", ignore=shutil.ignore_patterns("*.pyc"))
    init = copy / "pipeline/__init__.py"
    changed = re.sub(r'__version__ = ".*"', '__version__ = "0.0-experiment"', init.read_text())
    init.write_text(changed)
    assert STAGE_PROGRAM[:1] == ["python"]
    ours = run(sys.executable, *STAGE_PROGRAM[1:], "--version", cwd=copy)
    assert ours.strip() == "dcgan, version 0.0-experiment"
    installed = run(str(Path(sys.executable).with_name("dcgan")), "--version", cwd=copy)
    assert "0.0-experiment" not in installed


def test_a_failed_experiment_leaves_params_yaml_as_it_was(project):
    """DVC writes the -S values into params.yaml before the stage runs and leaves them there
    when it fails; `dcgan exp` puts the file back."""
    (project / "presets").mkdir()
    (project / "presets/lsgan.yaml").write_text("# The other loss.\ntrain:\n  loss: lsgan\n")
    (project / "stage.py").write_text("raise SystemExit('the stage fails')\n")
    before = (project / "params.yaml").read_bytes()
    failed = subprocess.run(
        [sys.executable, "-m", "pipeline", "exp", "lsgan"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        timeout=600,
    )
    assert failed.returncode != 0
    assert (project / "params.yaml").read_bytes() == before
    assert "params.yaml restored as it was before the experiment." in failed.stderr
