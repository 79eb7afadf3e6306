"""Atomic file writes: a temporary file in the destination's folder, then a rename.

A reader (or a later DVC stage) therefore sees either the old file or the complete new one, never
a half-written file, even if the process is killed mid-write.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.errors import PipelineError, WriteError


def default_file_mode() -> int:
    """The mode a plainly created file would get (temporary files are made owner-only)."""
    return 0o666 & ~_umask()


def _mode_for(path: Path) -> int:
    """The permissions `path` has, kept when it is replaced; a new file's otherwise."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return default_file_mode()


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def require_free_space(folder: Path, size: int, path: Path) -> None:
    """A one-line `PipelineError` unless `folder` has room for `size` more bytes (and a margin
    of 1%), checked before a large write starts rather than found out half-way."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the write itself will say what is wrong with the folder
    if size * 1.01 > free:
        raise PipelineError(
            f"{path}: not enough free space: {size / 1e6:,.1f} MB to write, "
            f"{free / 1e6:,.1f} MB free in {folder}"
        )


def write_path_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Call `write(temporary_path)` for a file next to `path`, then rename it over `path`.

    For writers that want a path rather than a handle (Keras' `save`, numpy's `save`); the
    temporary name keeps `path`'s suffix, which Keras needs to pick its format. Whatever stops
    the write (a full disk, a read-only folder, an error or a signal) leaves `path` as it was and
    no temporary behind; a system's refusal is a `WriteError` naming `path` and the cause.
    """
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
        )
    except OSError as error:
        raise WriteError(f"{path}: cannot write: {why_not(error)}") from error
    os.close(fd)
    temporary = Path(name)
    try:
        write(temporary)
        os.chmod(temporary, _mode_for(path))
        os.replace(temporary, path)
    except BaseException as error:
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise WriteError(f"{path}: cannot write: {why_not(error)}") from error
        raise


# The causes a user can act on, in their words; others keep the system's.
WRITE_FAILURES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "the file would exceed the size limit",
}


def why_not(error: OSError) -> str:
    """Why the system refused a write, in one short phrase."""
    return WRITE_FAILURES.get(error.errno, error.strerror or str(error))


def write_atomically(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Call `write(handle)` on a temporary file next to `path`, sync it, then rename it."""

    def write_and_sync(temporary: Path) -> None:
        with temporary.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())

    write_path_atomically(path, write_and_sync)


def write_text_atomically(path: Path, text: str) -> None:
    write_atomically(path, lambda handle: handle.write(text.encode()))


def write_json_atomically(path: Path, data: Any) -> None:
    write_text_atomically(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_folder_atomically(path: Path, fill: Callable[[Path], Any]) -> None:
    """Call `fill(temporary_folder)` on an empty folder next to `path`, then put it in
    `path`'s place: a failure leaves the previous folder as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        fill(temporary)
        os.chmod(temporary, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


READ_CHUNK = 1 << 20  # bytes: a digest reads large files a chunk at a time


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def exclusive_lock(path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block, or fail at once.

    The operating system drops the lock when the holder ends, however it ends (kill -9
    included), so a stale lock file never blocks a later run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:  # "a": never truncates a file another process holds
        if not _lock_at_once(handle):
            raise PipelineError(
                f"{what} is in use by another process (it holds {path}); "
                "wait for it to finish, or stop it"
            )
        yield


def _lock_at_once(handle) -> bool:
    """Take an exclusive lock on the open file without waiting; False when another process
    holds it. POSIX `flock`, or on Windows `msvcrt`'s lock of the file's first byte: each
    module is imported only where it exists, so the light install runs on both."""
    if os.name == "nt":
        return _lock_first_byte(handle)
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _lock_first_byte(handle) -> bool:
    """Windows: `msvcrt`'s non-blocking lock of the file's first byte."""
    import msvcrt

    handle.seek(0)
    try:
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True
