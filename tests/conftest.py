"""Shared fixtures: a tiny synthetic IDX dataset, and a real HTTP server on 127.0.0.1 for it."""

from __future__ import annotations

import gzip
import hashlib
import json
import shlex
import signal
import socket
import struct
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from pipeline.config import TrainConfig
from pipeline.data.datasets import DatasetFile, DatasetSpec
from pipeline.storage.idx import UBYTE_TYPE


def pytest_collection_modifyitems(items) -> None:
    """Under an oneDNN cap that makes TensorFlow's bfloat16 kernels abort the process
    (`make test-isa`), the `bf16` tests are skipped rather than taking the run down."""
    from pipeline.runtime import machine

    if machine.bf16_runs():
        return
    reason = f"bfloat16 cannot run under ONEDNN_MAX_CPU_ISA={machine.isa_cap()}"
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "bf16" in item.keywords:
            item.add_marker(skip)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array: the tests' own data, in the format the reader reads."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(f">HBB{array.ndim}I", 0, UBYTE_TYPE, array.ndim, *array.shape)
    return header + array.tobytes()


# Two float32 computations of one network by different kernels (TensorFlow's oneDNN or Eigen,
# onnxruntime's MLAS) differ only in the order of their sums. A sum of n products of order 1
# rounds by about sqrt(n) units of 2^-24 (a random walk of roundings), n at worst; the widest
# sums of these networks have n = 1,024 (the generator's second dense layer): 2e-6 typical,
# 6e-5 at worst, and batch norm and tanh do not amplify them. So 1e-4, the export stage's own
# tolerance (params.yaml), bounds them on every CPU class (`make test-isa`); mixed bfloat16 would
# round the same sums to about 1e-2, which is why these comparisons are made in float32.
FLOAT32_REORDERING = 1e-4
TINY_SPLITS = {"train": 64, "t10k": 16}
REPO = Path(__file__).resolve().parents[1]
# 64 images in batches of 32: two steps an epoch; a checkpoint and a progress frame only at the
# end unless asked (each frame recalibrates the weight average's batch norm on 2,048 draws).
# The R1 penalty and the weight average are off: the one traces a second training step, the
# other recalibrates batch norm for every frame and for the saved generator, together two
# thirds of a tiny run's time. The tests of what they touch (outputs, resuming, tracking,
# distribution, the conditional and semi-supervised models) turn them back on: `STABILISED`,
# `train_defaults`.
TINY_TRAIN = {
    "batch_size": 32,
    "sample_every": 1000,
    "checkpoint_every": 1000,
    "grid_size": 2,
    "track_every": 0,  # tracking needs a trained classifier: test_tracking.py makes one
    "r1_weight": 0.0,
    "average_decay": 0.0,
}
# The later stages on the tiny exported model (noise_dim 8): a few seconds each.
TINY_STAGES = {
    "train": {"epochs": 1, "noise_dim": 8},
    "classifier": {"epochs": 1, "batch_size": 16, "validation_size": 16},
    "evaluate": {"samples": 100, "splits": 2, "grid_size": 3},
}
QUICK_BENCHMARK = {
    "batch_sizes": [1, 4],
    "windows": 2,
    "window_seconds": 0.01,
    "latency_calls": 10,
    "matmul_size": 64,
}


def dvc_stage(name: str) -> dict:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][name]


# How dvc.yaml runs `dcgan`: the package of the folder DVC runs in (tests/test_dvc_deps.py).
STAGE_PROGRAM = ["python", "-m", "pipeline"]


def make_variable(name: str) -> str:
    """The value of `name ?= ...` or `name := ...` in the Makefile."""
    for line in (REPO / "Makefile").read_text().splitlines():
        for operator in ("?=", ":="):
            if line.startswith(f"{name} {operator} "):
                return line.split(f"{operator} ", 1)[1]
    raise AssertionError(f"no {name} in the Makefile")


def bench_train_args() -> list[str]:
    """`make bench-train`'s command, without `dcgan`."""
    words = shlex.split(make_variable("BENCH_TRAIN"))
    assert words[:2] == ["dcgan", "train-benchmark"]
    return words[1:]


def stage_args(name: str) -> list[str]:
    """The stage's command from dvc.yaml, with the default dataset, without `python -m
    pipeline`; the command is named as the stage (in click's spelling, `-` for `_`)."""
    words = shlex.split(dvc_stage(name)["cmd"].replace("${download.dataset}", "mnist"))
    assert words[:4] == [*STAGE_PROGRAM, name.replace("_", "-")]
    return words[3:]


# `dvc exp run -S` writes its values into params.yaml in the workspace: a run's file too.
PARAMS_FILE = "params.yaml"


def run_written_paths(repo: Path = REPO) -> list[str]:
    """Every file or folder that a run writes: params.yaml (`dvc exp run -S`) and what
    `repo`'s dvc.yaml names, each stage's outputs, metrics and plots, and the top-level
    metrics and plots (the benchmarks outside `dvc repro` among them); the default dataset's."""
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    entries = [PARAMS_FILE]
    entries += [
        entry
        for stage in pipeline["stages"].values()
        for kind in ("outs", "metrics", "plots")
        for entry in stage.get(kind, [])
    ]
    entries += pipeline.get("metrics", [])
    for plot in pipeline.get("plots", []):
        definition = next(iter(plot.values())) if isinstance(plot, dict) else None
        axes = definition.get("y") if isinstance(definition, dict) else None
        entries += list(axes) if isinstance(axes, dict) else [plot]
    return [path.replace("${download.dataset}", "mnist").rstrip("/") for path in paths(entries)]


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)


def committed_view(folder: Path, repo: Path = REPO) -> Path:
    """`repo` as its docs were reported, in `folder`: every file git tracks as the working
    tree has it, except those a run writes (params.yaml, metrics, dvclive's tables), which are
    HEAD's. A user's own `make run` or experiment rewrites those; the docs change only by `make
    report` and a commit.
    Outside a git checkout: `repo` itself."""
    listed = git(repo, "ls-files", "-z")
    if listed.returncode != 0:
        return repo
    written = run_written_paths(repo)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source, target = repo / name, folder / name
        if not source.is_file():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if any(name == path or name.startswith(f"{path}/") for path in written):
            target.write_bytes(git(repo, "show", f"HEAD:{name}").stdout)
        else:
            target.write_bytes(source.read_bytes())
    return folder


@pytest.fixture(scope="session")
def committed_root(tmp_path_factory) -> Path:
    """This repository as its docs were reported (`committed_view`)."""
    return committed_view(tmp_path_factory.mktemp("committed"))


def paths(entries: list) -> list[str]:
    """The paths of dvc.yaml entries, each a path or a path with its options."""
    return [next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries]


def declared_paths(name: str) -> list[str]:
    """Every output, metric and plot file that dvc.yaml says the stage writes."""
    stage = dvc_stage(name)
    return paths([*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])])


LIVE_METRICS = "dvclive/train/plots/metrics"


def live_tables(folder: Path) -> dict[str, str]:
    """Every dvclive table the train stage wrote in `folder`, by file name."""
    return {p.name: p.read_text() for p in sorted((folder / LIVE_METRICS).glob("*.tsv"))}


def live_rows(folder: Path, metric: str) -> list[list[str]]:
    """The rows of one dvclive table, its header first."""
    text = (folder / LIVE_METRICS / f"{metric}.tsv").read_text()
    return [line.split("\t") for line in text.splitlines()]


def ctrl_c_stops_it() -> None:
    """A child's `preexec_fn`: SIGINT as a terminal gives it, even when the suite runs in a
    background job of a script (which ignores SIGINT, and so would every child it starts)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def invoke(*args: str):
    from pipeline.cli import main

    return CliRunner().invoke(main, list(args))


def invoke_ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def train_defaults(*keys: str) -> dict[str, Any]:
    """params.yaml's defaults of these train keys, for a test that needs what TINY_TRAIN
    turns off."""
    return {key: getattr(TrainConfig, key) for key in keys}


STABILISED = train_defaults("r1_weight", "average_decay")  # both of TINY_TRAIN's economies undone


def set_params(folder: Path, **sections) -> None:
    """A params.yaml in `folder`: the tiny train section, updated by `train=...` and others."""
    params = {"train": {**TINY_TRAIN, **sections.pop("train", {})}, **sections}
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture(scope="session")
def exported_model(tmp_path_factory, tiny_dataset) -> Path:
    """A folder laid out like the repository after train (2 steps) and export, noise_dim 8."""
    return train_and_export(tmp_path_factory.mktemp("exported"), tiny_dataset)


@pytest.fixture(scope="session")
def conditional_model(tmp_path_factory, tiny_dataset) -> Path:
    """The same with `train.model: conditional` and the weight average (whose batch-norm
    recalibration draws labels)."""
    folder = tmp_path_factory.mktemp("conditional")
    return train_and_export(
        folder, tiny_dataset, model="conditional", **train_defaults("average_decay")
    )


@pytest.fixture(scope="session")
def infogan_model(tmp_path_factory, tiny_dataset) -> Path:
    """The same with `train.model: infogan` (10 categories, 2 continuous codes)."""
    folder = tmp_path_factory.mktemp("infogan")
    return train_and_export(folder, tiny_dataset, model="infogan")


SSL_LABELLED_PER_CLASS = 2


@pytest.fixture(scope="session")
def ssl_model(tmp_path_factory, tiny_dataset) -> Path:
    """The same with `train.model: semi-supervised`, 2 labelled images of each digit (the tiny
    dataset has 6 or 7), and the weight average (the exported classifiers are averages)."""
    folder = tmp_path_factory.mktemp("semi-supervised")
    return train_and_export(
        folder,
        tiny_dataset,
        model="semi-supervised",
        labelled_per_class=SSL_LABELLED_PER_CLASS,
        **train_defaults("average_decay"),
    )


@pytest.fixture(scope="session")
def bigan_exported(tmp_path_factory, tiny_dataset) -> Path:
    """The same with `train.model: bigan` and the weight average (the exported encoder is one)."""
    folder = tmp_path_factory.mktemp("bigan")
    return train_and_export(folder, tiny_dataset, model="bigan", **train_defaults("average_decay"))


def without_metadata(source: Path, path: Path, key: str) -> Path:
    """The model at `source` with one metadata entry removed: a broken contract."""
    import onnx

    model = onnx.load(str(source))
    kept = [prop for prop in model.metadata_props if prop.key != key]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, str(path))
    return path


def flipped_weights(source: Path, path: Path, count: int = 200) -> Path:
    """The model at `source` with `count` bytes inside its largest weight tensor inverted, its
    metadata (and the digest in it) untouched: the damage `onnx.checker` and onnxruntime let
    through."""
    import onnx

    data = bytearray(source.read_bytes())
    weights = onnx.load_from_string(bytes(data)).graph.initializer
    largest = max(weights, key=lambda tensor: len(tensor.raw_data))
    start = data.find(largest.raw_data) + len(largest.raw_data) // 2
    data[start : start + count] = bytes(byte ^ 0xFF for byte in data[start : start + count])
    path.write_bytes(bytes(data))
    return path


def nan_generator(source: Path, path: Path) -> Path:
    """The generator at `source` with every bias its Add nodes take set to NaN: a model whose
    images are NaN (tanh keeps it), its contract and its weights' digest intact."""
    import onnx
    from onnx import numpy_helper

    from pipeline.export.checks import with_digest

    model = onnx.load(str(source))
    added = {name for node in model.graph.node if node.op_type == "Add" for name in node.input}
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.name in added:
            values = np.full_like(numpy_helper.to_array(tensor), np.nan)
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(values, tensor.name))
    path.write_bytes(with_digest(model))
    return path


def train_and_export(folder: Path, tiny_dataset, **train) -> Path:
    import os

    tiny_dataset.write_folder(folder / "data" / "mnist")
    set_params(folder, train={"epochs": 1, "noise_dim": 8, **train})
    previous = Path.cwd()
    os.chdir(folder)
    try:
        invoke_ok(*stage_args("train"))
        metrics = json.loads(invoke_ok(*stage_args("export")).stdout)
    finally:
        os.chdir(previous)
    assert metrics["max_abs_diff"] <= FLOAT32_REORDERING
    return folder


@dataclass
class TinyDataset:
    """Raw IDX bytes of four small files and a spec whose checksums match them."""

    raw: dict[str, bytes]
    spec: DatasetSpec

    def write_folder(self, folder: Path, *, gzipped: bool = False) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in self.raw.items():
            if gzipped:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        return folder


@pytest.fixture
def small_disk(tmp_path):
    """An 8 MB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.fixture(scope="session")
def tiny_dataset() -> TinyDataset:
    rng = np.random.default_rng(0)
    raw = {}
    for prefix, count in TINY_SPLITS.items():
        raw[f"{prefix}-images-idx3-ubyte"] = encode_idx(
            rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        )
        raw[f"{prefix}-labels-idx1-ubyte"] = encode_idx(np.arange(count, dtype=np.uint8) % 10)
    files = tuple(
        DatasetFile(name, hashlib.sha256(data).hexdigest(), len(data)) for name, data in raw.items()
    )
    return TinyDataset(raw=raw, spec=DatasetSpec(name="tiny", files=files))


@dataclass
class Route:
    """What the server does for one path: `ok`, `truncate` (half the announced bytes, then
    close), `stall` (headers and a few bytes, then silence), `error` (HTTP 500) or `error_once`
    (HTTP 500 the first time, then `ok`)."""

    body: bytes
    behaviour: str = "ok"
    served: int = 0


@dataclass
class DataServer:
    base_url: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def publish(self, path: str, body: bytes, behaviour: str = "ok") -> str:
        self.routes[path] = Route(body, behaviour)
        return self.base_url + path

    def serve_dataset(
        self, folder: str, dataset: TinyDataset, behaviour: str = "ok", *, gzipped: bool = True
    ) -> str:
        """Publish every file of `dataset` under `/<folder>/`; returns that folder's URL."""
        for name, data in dataset.raw.items():
            if gzipped:
                self.publish(f"/{folder}/{name}.gz", gzip.compress(data), behaviour)
            else:
                self.publish(f"/{folder}/{name}", data, behaviour)
        return f"{self.base_url}/{folder}/"


def _handler_for(server: DataServer):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            server.requests.append(self.path)
            route = server.routes.get(self.path)
            if route is None:
                self.send_error(404, "Not Found")
                return
            route.served += 1
            if route.behaviour == "error" or (
                route.behaviour == "error_once" and route.served == 1
            ):
                self.send_error(500, "Internal Server Error")
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if route.behaviour in ("ok", "error_once"):
                self.wfile.write(route.body)
            elif route.behaviour == "truncate":
                self.wfile.write(route.body[: len(route.body) // 2])
                self.close_connection = True
            elif route.behaviour == "stall":
                self.wfile.write(route.body[:10])
                self.wfile.flush()
                server.release.wait(timeout=10)

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def data_server():
    holder = DataServer(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(holder))
    httpd.daemon_threads = True
    holder.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield holder
    holder.release.set()
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def unavailable(reason: str):
    """Skip a test whose tool (Chromium, Node, node_modules) is missing, saying how to get it;
    fail instead when DCGAN_REQUIRE_BROWSER is set (`.ci/run` sets it: there they must run)."""
    import os

    if os.environ.get("DCGAN_REQUIRE_BROWSER"):
        pytest.fail(f"{reason} (DCGAN_REQUIRE_BROWSER is set)")
    pytest.skip(f"{reason}: `make web-setup` installs it")
