"""The generators as DVC artifacts: declared in dvc.yaml, fetched by name by another project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO
from pipeline.runtime.sampler import Sampler

DVC = str(Path(sys.executable).with_name("dvc"))


def run(*args: str, cwd: Path) -> None:
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"


def declared() -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["artifacts"]


def test_both_generators_are_model_artifacts_of_the_export_stage():
    export_outs = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["export"]["outs"]
    artifacts = declared()
    assert {name: a["path"] for name, a in artifacts.items()} == {
        "generator": "models/generator.onnx",
        "generator-int8": "models/generator-int8.onnx",
    }
    for artifact in artifacts.values():
        assert artifact["type"] == "model"
        assert artifact["path"] in export_outs
        assert artifact["desc"] and "onnx" in artifact["labels"]


def test_another_project_gets_a_generator_by_name(exported_model, tmp_path):
    """A producer repository with this dvc.yaml's artifacts pushes its models to a local DVC
    remote and tags a version; `dvc artifacts get` in an unrelated folder fetches it by name."""
    producer, remote, consumer = tmp_path / "producer", tmp_path / "remote", tmp_path / "consumer"
    (producer / "models").mkdir(parents=True)
    consumer.mkdir()
    for name in ("generator.onnx", "generator-int8.onnx"):
        shutil.copy(exported_model / "models" / name, producer / "models" / name)
    (producer / "dvc.yaml").write_text(yaml.safe_dump({"artifacts": declared()}))
    run("git", "init", "-q", cwd=producer)
    run(DVC, "init", "-q", cwd=producer)
    run(DVC, "add", "-q", "models/generator.onnx", "models/generator-int8.onnx", cwd=producer)
    run(DVC, "remote", "add", "-d", "shared", str(remote), cwd=producer)
    run(DVC, "push", "-q", cwd=producer)
    run("git", "add", "-A", cwd=producer)
    run("git", "commit", "-qm", "models", cwd=producer)
    # A version is a git tag in GTO's form, name@vX.Y.Z; `get` takes the latest by default.
    run("git", "tag", "-a", "generator@v1.0.0", "-m", "first generator", cwd=producer)
    run(DVC, "artifacts", "get", str(producer), "generator", "-o", "fetched.onnx", cwd=consumer)
    fetched = consumer / "fetched.onnx"
    assert fetched.read_bytes() == (exported_model / "models/generator.onnx").read_bytes()
    assert Sampler(fetched).sample(4).shape == (4, 28, 28)
