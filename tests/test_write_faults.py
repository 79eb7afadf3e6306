"""The light commands against a full disk, a read-only file system, SIGTERM mid-write and files
whose headers lie: one `Error:` line, exit code 1 (143 for SIGTERM), nothing half-written and
no temporary left behind (docs/RELIABILITY.md). Full and read-only disks are real tmpfs mounts
where the machine allows them."""

from __future__ import annotations

import io
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

from conftest import invoke

SAMPLE = [sys.executable, "-m", "pipeline", "sample"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SAMPLE, *args], capture_output=True, text=True, timeout=300)


def test_a_large_npy_on_a_disk_too_small_is_refused_before_writing(exported_model, small_disk):
    model = exported_model / "models/generator.onnx"
    result = run("--model", str(model), "-n", "20000", "--out", str(small_disk / "x.npy"))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith(f"Error: {small_disk / 'x.npy'}: not enough free space: 15.7 MB to")
    assert "Traceback" not in result.stderr
    assert list(small_disk.iterdir()) == []


def test_a_disk_that_fills_mid_write_is_one_line_and_leaves_nothing(exported_model, small_disk):
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (8 * 2**20 - 8192))  # leaves about two pages
    model = exported_model / "models/generator.onnx"
    result = run("--model", str(model), "-n", "256", "--out", str(small_disk / "x.png"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: {small_disk / 'x.png'}: cannot write: no space left on the device"
    )
    assert sorted(small_disk.iterdir()) == [filler]


def test_a_read_only_file_system_is_one_line(exported_model, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    model = exported_model / "models/generator.onnx"
    result = run("--model", str(model), "-n", "4", "--out", str(small_disk / "x.png"))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: {small_disk / 'x.png'}: cannot write: the file system is read-only"
    )


def test_sigterm_mid_write_leaves_no_temporary_and_no_output(exported_model, tmp_path):
    model = exported_model / "models/generator.onnx"
    out = tmp_path / "many.npy"
    command = [*SAMPLE, "--model", str(model), "-n", "400000", "--out", str(out)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(tmp_path.glob(".many.npy.*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(tmp_path.glob(".many.npy.*")), "the write never started"
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def limited_memory(megabytes: int):
    """For `preexec_fn`: the child's address space capped, as a container's limit would."""
    limit = megabytes * 2**20
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def test_a_walk_beyond_the_memory_limit_is_one_line_and_leaves_nothing(exported_model, tmp_path):
    model = exported_model / "models/generator.onnx"
    out = tmp_path / "walk.gif"
    # 1024 digits x 10 points x 100 steps: 800 MB of frames, more than 1000 MB allow with the
    # interpreter and onnxruntime loaded (the walk asks for them before any work); the same
    # walk of 16 digits fits.
    walk = ["--model", str(model), "--interpolate", "--points", "10", "--steps", "100"]
    command = [*SAMPLE, *walk, "-n", "1024", "--out", str(out)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, preexec_fn=limited_memory(1000)
    )
    assert result.returncode == 1
    assert result.stderr == (
        "Error: out of memory: ask for less at once (fewer images) or free some memory\n"
    )
    assert list(tmp_path.iterdir()) == []
    fits = subprocess.run(
        [*SAMPLE, *walk, "-n", "16", "--out", str(out)],
        capture_output=True,
        timeout=300,
        preexec_fn=limited_memory(1000),
    )
    assert fits.returncode == 0, fits.stderr
    assert out.read_bytes()[:6] == b"GIF89a"


def test_a_replaced_file_keeps_its_permissions(exported_model, tmp_path):
    out = tmp_path / "x.png"
    out.write_bytes(b"old")
    out.chmod(0o600)
    result = invoke(
        "sample",
        "--model",
        str(exported_model / "models/generator.onnx"),
        "-n",
        "4",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"\x89PNG")
    assert out.stat().st_mode & 0o777 == 0o600


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` grey pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def npy_claiming(shape: tuple[int, ...], data: bytes) -> bytes:
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + data


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "huge.png",
            png_claiming(100_000, 100_000),
            "huge.png: the image claims far more pixels than 28x28",
        ),
        (
            "wide.png",
            png_claiming(5_000, 3_000),
            "wide.png: the image is 5000x3000 pixels, expected 28x28",
        ),
        (
            "billion.npy",
            npy_claiming((10**9, 28, 28), b"\0" * 1024),
            "billion.npy: the header claims shape (1000000000, 28, 28) (784,000,000,000 bytes), "
            "the file holds 1,024",
        ),
        (
            "short.npy",
            npy_claiming((2, 28, 28), b"\0" * 784),
            "short.npy: the header claims shape (2, 28, 28) (1,568 bytes), the file holds 784",
        ),
    ],
)
def test_a_header_that_lies_is_refused_before_anything_is_allocated(
    ssl_model, tmp_path, name, content, message
):
    path = tmp_path / name
    path.write_bytes(content)
    classifier = ssl_model / "models/family/classifier.onnx"
    started = time.monotonic()
    result = invoke("classify", "--model", str(classifier), str(path))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [f"Error: {tmp_path}/{message}"]
    assert time.monotonic() - started < 10


def test_the_console_script_is_the_one_that_handles_sigterm():
    import importlib.metadata

    scripts = importlib.metadata.entry_points(group="console_scripts")
    assert next(s for s in scripts if s.name == "dcgan").value == "pipeline.cli:run"
