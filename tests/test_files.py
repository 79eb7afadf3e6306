"""Atomic writes, free-space checks, digests and locks, on real files in a temporary folder."""

import errno
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tracemalloc
from contextlib import contextmanager

import numpy as np
import pytest

from conftest import REPO
from pipeline.errors import PipelineError, WriteError
from pipeline.storage import files


@contextmanager
def umask(mask):
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


class TestWritePathAtomically:
    def test_the_writer_gets_a_hidden_temporary_beside_the_file_with_its_suffix(self, tmp_path):
        seen = []

        def write(temporary):
            seen.append(temporary)
            assert temporary.exists()  # created, so no other writer can take the name
            temporary.write_text("new")

        target = tmp_path / "model.keras"
        files.write_path_atomically(target, write)
        (temporary,) = seen
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".model.keras.")
        assert temporary.name.endswith(".tmp.keras")
        assert target.read_text() == "new"
        assert sorted(tmp_path.iterdir()) == [target]

    @pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640)])
    def test_a_new_file_gets_the_mode_a_plain_file_would(self, tmp_path, mask, expected):
        with umask(mask):
            assert files.default_file_mode() == expected
            files.write_text_atomically(tmp_path / "new.txt", "x")
        assert mode(tmp_path / "new.txt") == expected

    def test_a_replaced_file_keeps_its_mode(self, tmp_path):
        target = tmp_path / "kept.txt"
        target.write_text("old")
        target.chmod(0o604)
        files.write_text_atomically(target, "new")
        assert (mode(target), target.read_text()) == (0o604, "new")

    @pytest.mark.parametrize("stop", [ValueError("bad"), KeyboardInterrupt()])
    def test_a_writer_that_stops_leaves_the_old_file_and_no_temporary(self, tmp_path, stop):
        target = tmp_path / "data.txt"
        target.write_text("old")

        def write(temporary):
            temporary.write_text("half")
            raise stop

        with pytest.raises(type(stop)):
            files.write_path_atomically(target, write)
        assert target.read_text() == "old"
        assert sorted(tmp_path.iterdir()) == [target]

    def test_a_writer_that_removed_its_temporary_still_reports_its_own_error(self, tmp_path):
        def write(temporary):
            temporary.unlink()
            raise ValueError("the writer's own error")

        with pytest.raises(ValueError, match="the writer's own error"):
            files.write_path_atomically(tmp_path / "x.txt", write)

    def test_a_refused_write_is_a_write_error_naming_the_file_and_cause(self, tmp_path):
        def write(temporary):
            raise OSError(errno.ENOSPC, "No space left on device")

        target = tmp_path / "full.npy"
        with pytest.raises(WriteError) as caught:
            files.write_path_atomically(target, write)
        assert str(caught.value) == f"{target}: cannot write: no space left on the device"
        assert list(tmp_path.iterdir()) == []

    def test_a_missing_folder_is_a_write_error(self, tmp_path):
        target = tmp_path / "absent" / "file.txt"
        with pytest.raises(WriteError) as caught:
            files.write_text_atomically(target, "x")
        assert str(caught.value) == f"{target}: cannot write: No such file or directory"


@pytest.mark.parametrize(
    ("number", "phrase"),
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EDQUOT, "the disk quota is used up"),
        (errno.EROFS, "the file system is read-only"),
        (errno.EACCES, "permission denied"),
        (errno.EPERM, "permission denied"),
        (errno.EFBIG, "the file would exceed the size limit"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_why_a_write_was_refused(number, phrase):
    assert files.why_not(OSError(number, os.strerror(number))) == phrase


def test_a_cause_without_a_system_message_is_the_error_itself():
    assert files.why_not(OSError("the device went away")) == "the device went away"


def test_json_is_indented_sorted_and_ends_with_a_newline(tmp_path):
    files.write_json_atomically(tmp_path / "m.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "m.json").read_text() == ('{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n')


def test_text_is_written_as_utf8(tmp_path):
    files.write_text_atomically(tmp_path / "t.txt", "Fréchet")
    assert (tmp_path / "t.txt").read_bytes() == "Fréchet".encode()


def test_a_handle_writer_writes_every_byte(tmp_path):
    files.write_atomically(tmp_path / "b.bin", lambda handle: handle.write(b"\x00\x01" * 5))
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01" * 5


class TestWriteFolderAtomically:
    def test_a_folder_is_filled_aside_then_replaces_the_old_one(self, tmp_path):
        target = tmp_path / "deep" / "plots"
        target.mkdir(parents=True)
        (target / "old.png").write_text("old")
        seen = []

        def fill(folder):
            seen.append(folder)
            assert folder.parent == target.parent and folder.name.startswith(".plots.")
            assert folder.name.endswith(".tmp") and list(folder.iterdir()) == []
            (folder / "new.png").write_text("new")

        with umask(0o027):
            files.write_folder_atomically(target, fill)
        assert [p.name for p in target.iterdir()] == ["new.png"]
        assert mode(target) == 0o750
        assert sorted(target.parent.iterdir()) == [target]

    def test_missing_parents_are_made(self, tmp_path):
        target = tmp_path / "a" / "b" / "c"
        files.write_folder_atomically(target, lambda folder: (folder / "x").write_text("x"))
        assert (target / "x").read_text() == "x"

    def test_a_fill_that_fails_leaves_the_old_folder_and_no_temporary(self, tmp_path):
        target = tmp_path / "plots"
        target.mkdir()
        (target / "old.png").write_text("old")

        def fill(folder):
            (folder / "half.png").write_text("half")
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            files.write_folder_atomically(target, fill)
        assert [p.name for p in target.iterdir()] == ["old.png"]
        assert sorted(tmp_path.iterdir()) == [target]

    def test_a_fill_that_removed_its_folder_still_reports_its_own_error(self, tmp_path):
        def fill(folder):
            folder.rmdir()
            raise ValueError("the fill's own error")

        with pytest.raises(ValueError, match="the fill's own error"):
            files.write_folder_atomically(tmp_path / "plots", fill)


class TestFreeSpace:
    def test_a_write_within_the_free_space_and_margin_passes(self, tmp_path):
        free = shutil.disk_usage(tmp_path).free
        files.require_free_space(tmp_path, int(free * 0.9), tmp_path / "x.npy")

    def test_a_write_inside_the_one_percent_margin_is_refused(self, tmp_path):
        free = shutil.disk_usage(tmp_path).free
        size = int(free * 0.995)
        with pytest.raises(PipelineError) as caught:
            files.require_free_space(tmp_path, size, tmp_path / "x.npy")
        message = str(caught.value)
        assert message.startswith(
            f"{tmp_path / 'x.npy'}: not enough free space: {size / 1e6:,.1f} MB to write, "
        )
        reported = float(message.split(", ")[-1].split(" MB")[0].replace(",", ""))
        assert reported == pytest.approx(free / 1e6, rel=0.01)
        assert message.endswith(f" MB free in {tmp_path}")

    def test_a_folder_that_cannot_be_read_is_left_to_the_write(self, tmp_path):
        files.require_free_space(tmp_path / "absent", 10**30, tmp_path / "absent" / "x")


def test_the_digest_of_a_file_larger_than_a_chunk_reads_a_chunk_at_a_time(tmp_path):
    data = np.random.default_rng(0).bytes(files.READ_CHUNK * 6 + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    del data
    tracemalloc.start()
    try:
        digest = files.sha256_of(tmp_path / "big.bin")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == expected
    assert peak < 3 * files.READ_CHUNK


class TestExclusiveLock:
    def test_a_second_holder_is_refused_at_once_with_what_holds_it(self, tmp_path):
        lock = tmp_path / "deep" / ".lock"
        with (
            files.exclusive_lock(lock, "the folder"),
            pytest.raises(PipelineError) as caught,
            files.exclusive_lock(lock, "the folder"),
        ):
            pass
        assert str(caught.value) == (
            f"the folder is in use by another process (it holds {lock}); "
            "wait for it to finish, or stop it"
        )

    def test_the_lock_is_free_again_after_the_block_and_its_file_kept(self, tmp_path):
        lock = tmp_path / ".lock"
        lock.write_text("notes")
        with files.exclusive_lock(lock, "x"):
            pass
        with files.exclusive_lock(lock, "x"):
            pass
        assert lock.read_text() == "notes"

    def test_another_process_is_refused_while_it_is_held(self, tmp_path):
        lock = tmp_path / ".lock"
        script = (
            "import sys; from pipeline.storage.files import exclusive_lock\n"
            "with exclusive_lock(sys.argv[1], 'the folder'): pass\n"
        )
        with files.exclusive_lock(lock, "x"):
            held = subprocess.run(
                [sys.executable, "-c", script, str(lock)], cwd=REPO, capture_output=True, text=True
            )
        assert held.returncode != 0 and "the folder is in use by another process" in held.stderr
        free = subprocess.run([sys.executable, "-c", script, str(lock)], cwd=REPO)
        assert free.returncode == 0
