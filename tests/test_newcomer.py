"""A newcomer's first hour: the README's quick start as written, `make run` and then the suite's
docs checks, in a fresh copy of this tree on a tiny configuration. The run rewrites every metric
with what this machine measures, and the docs checks must still pass: they hold the docs to the
committed metrics, so "run, then test" stays green on any CPU."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, git

pytestmark = [pytest.mark.slow, pytest.mark.network]  # the download stage fetches MNIST

QUICK_START = re.compile(r"## Quick start\n.*?```sh\n(.*?)```", re.S)
# The stages at their smallest that still measure something: about four minutes on 2 cores.
TINY_RUN = {
    "classifier": {"epochs": 1},
    "train": {"epochs": 1, "track_samples": 500, "track_every": 200},
    "export": {"check_samples": 16, "int8_calibration_samples": 64},
    "benchmark": {
        "batch_sizes": [1, 16],
        "windows": 1,
        "window_seconds": 0.05,
        "latency_calls": 10,
        "matmul_size": 256,
    },
    "evaluate": {"samples": 1000, "splits": 2, "grid_size": 4},
}
# The suite's checks that read what a run writes beside the docs.
DOCS_CHECKS = [
    "tests/test_docs.py",
    "tests/test_report.py::test_every_committed_block_is_what_make_report_writes",
    "tests/test_report.py::test_no_metric_figure_is_typed_outside_the_generated_blocks",
]


def quick_start() -> list[str]:
    block = QUICK_START.search((REPO / "README.md").read_text()).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]


def fresh_copy(folder: Path) -> Path:
    """The tracked files as they are here, committed in a new repository; then params.yaml
    made tiny in its working tree, as `dvc exp run -S` would leave it."""
    for name in git(REPO, "ls-files", "-z").stdout.decode().split("\0"):
        source = REPO / name
        if name and source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    for command in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"],
    ):
        assert git(folder, *command).returncode == 0, command
    params = yaml.safe_load((folder / "params.yaml").read_text())
    for section, values in TINY_RUN.items():
        params[section].update(values)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return folder


def run(command: list[str], folder: Path, env: dict[str, str], timeout: int) -> tuple[int, str]:
    """`command`'s exit code and output; on a timeout its whole process group is killed (make,
    dvc and the stage under it), and the test fails."""
    process = subprocess.Popen(
        command,
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{' '.join(command)}: over {timeout} s\n{output[-3000:]}")
    return process.returncode, output


def test_the_quick_start_as_written_then_the_docs_checks_pass(tmp_path):
    assert quick_start() == ["make run", "make test"]
    copy = fresh_copy(tmp_path / "fresh")
    # This environment's packages stand in for the copy's install, which CI's clean clone runs.
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    code, output = run(
        ["make", "-o", ".venv/.installed-run", "run", f"BIN={bin_dir}"], copy, env, 1800
    )
    assert code == 0, output[-4000:]
    assert git(copy, "status", "--porcelain", "metrics").stdout, "the run wrote no metric"
    checks = [sys.executable, "-m", "pytest", "-q", "--tb=line", "-p", "no:cacheprovider"]
    checks += DOCS_CHECKS
    code, output = run(checks, copy, env, 600)
    assert code == 0, output[-4000:]
