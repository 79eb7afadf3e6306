"""`dcgan serve`: the web page (web/), onnxruntime-web's files and the generators over HTTP.

Only what is listed is served: the page's files, the runtime files it loads, the contract and the
models given, each under a fixed URL (no path from a request touches the disk). Every response
carries the cross-origin isolation headers that let onnxruntime-web use threads
(SharedArrayBuffer), and `.wasm` its MIME type, without which the browser fetches it twice.
Each file has an ETag and Last-Modified from its size and modification time: the browser asks
again every time (`no-cache`, so a rebuilt model is seen at once) and gets 304 without a body
while the file is unchanged, so the model and runtime are downloaded once. Files are streamed
in chunks, never held whole per client. Under /api/, `pipeline.serving.api` answers for apps
that want a service. Standard library only here: the page needs no TensorFlow.
"""

from __future__ import annotations

import email.utils
import errno
import hashlib
import json
import logging
import mimetypes
import os
import shutil
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pipeline.errors import PipelineError
from pipeline.runtime.contract_files import MANIFEST_FILE
from pipeline.serving.http_server import (
    REQUEST_SECONDS,
    TIMEOUT_SECONDS,
    BoundedServer,
    DeadlineHandler,
)

if TYPE_CHECKING:
    from pipeline.serving.api import Api

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]  # the checkout: pipeline/serving/serve.py
WEB = REPO / "web"
DOCS = REPO / "docs"
RUNTIME = REPO / "node_modules" / "onnxruntime-web" / "dist"
PAGE_FILES = ("index.html", "app.js", "generator.js", "readers.js", "style.css")
# The WASM build the page imports and the files it loads in turn (no WebGPU/JSEP build: 14 MB
# instead of 28 MB to download).
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# The first is the page's default: the int8 model is a quarter of the download and faster in
# WebAssembly, for about the same Frechet distance (docs/PERFORMANCE.md, the model card).
DEFAULT_MODELS = ("models/generator-int8.onnx", "models/generator.onnx")
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
}


CHUNK_SIZE = 1 << 16
API_PREFIX = "/api/"
PAGE_PATHS = ("/", "/index.html")


class ServeError(PipelineError):
    """The page cannot be served: a file is missing, or the address is taken."""


ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class Site:
    """URL path -> file, the JSON list of the models, and the API (None: not served)."""

    files: dict[str, Path]
    models_json: bytes
    api: Api | None = None
    default_model: str | None = None  # the URL path of the model the page opens first

    @classmethod
    def build(cls, models: list[Path], api: Api | None = None, family: list[Path] = ()) -> Site:
        """The site for the generators `models` (the first is the page's default) and the
        `family` models that read images (a classifier, an encoder), each listed in
        models.json with its kind: `generator`, or `family` (the page reads which from the
        model's metadata)."""
        if not (RUNTIME / RUNTIME_FILES[0]).is_file():
            raise ServeError(
                "onnxruntime-web is not installed (node_modules/onnxruntime-web): "
                "run `make web-setup`"
            )
        files = {f"/{name}": WEB / name for name in PAGE_FILES}
        files["/"] = WEB / "index.html"
        files["/contract.json"] = DOCS / MANIFEST_FILE
        files.update({f"/ort/{name}": RUNTIME / name for name in RUNTIME_FILES})
        listing = []
        for kind, folder, paths in (("generator", "models", models), ("family", "family", family)):
            for model in paths:
                if not model.is_file():
                    raise ServeError(f"{model}: no such model file (run `make run` first?)")
                url = f"{folder}/{model.name}"
                if f"/{url}" in files:
                    raise ServeError(f"two models are named {model.name}: rename one")
                files[f"/{url}"] = model
                size = model.stat().st_size
                listing.append({"name": model.name, "url": url, "bytes": size, "kind": kind})
        default = listing[0]["url"] if models else None
        return cls(files, json.dumps(listing).encode(), api, default)


def handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(DeadlineHandler):
        server_version = "dcgan-serve"

        def do_GET(self):
            self.request_received()
            self._respond(head=False)

        def do_HEAD(self):
            self.request_received()
            self._respond(head=True)

        def do_POST(self):
            if urlsplit(self.path).path.startswith(API_PREFIX):
                return self._answer_api("POST")
            self.request_received()
            self._refuse(405, f"only GET and HEAD here, and POST under {API_PREFIX}", False)

        def _refuse(self, status: int, message: str, head: bool) -> None:
            """The site's refusals as JSON, as the API's and the HTTP layer's."""
            body = json.dumps({"error": message}).encode()
            self._send(status, body, TYPES[".json"], head, no_store=True)

        def _answer_api(self, method: str) -> None:
            from pipeline.serving.api import MAX_BODY_BYTES, error_reply

            url = urlsplit(self.path)
            length = self.headers.get("Content-Length", "")
            if method == "POST" and not (length.isascii() and length.isdigit()):  # not "²"
                reply = error_reply(411, "send the body with a Content-Length")
            elif method == "POST" and int(length) > MAX_BODY_BYTES:
                self.close_connection = True  # the body is not read
                reply = error_reply(413, f"the body is over {MAX_BODY_BYTES} bytes")
            elif site.api is None:
                reply = error_reply(404, "this server has no API")
            else:
                body = self.rfile.read(int(length)) if method == "POST" else None
                self.request_received()
                route = url.path.removeprefix(API_PREFIX)
                reply = site.api.handle(method, route, url.query, body)
            self._send(reply.status, reply.body, reply.content_type, False, no_store=True)

        def _respond(self, *, head: bool) -> None:
            path = urlsplit(self.path).path
            if path.startswith(API_PREFIX) and not head:
                return self._answer_api("GET")
            if path == "/models.json":
                tag = '"' + hashlib.sha256(site.models_json).hexdigest()[:32] + '"'
                if self._unchanged(tag, None):
                    return self._not_modified(tag, None)
                return self._send(200, site.models_json, TYPES[".json"], head, tag)
            file = site.files.get(path)
            if file is None:
                return self._refuse(404, f"{path[:100]}: not found", head)
            try:
                handle = file.open("rb")
            except OSError:
                return self._refuse(404, f"{path[:100]}: not found", head)
            with handle:
                stat = os.fstat(handle.fileno())
                tag = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
                if self._unchanged(tag, stat.st_mtime):
                    return self._not_modified(tag, stat.st_mtime)
                kind = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
                self._head(200, kind or "application/octet-stream", stat.st_size, tag)
                self._last_modified(stat.st_mtime)
                if path in PAGE_PATHS and site.default_model:
                    # the browser fetches the page's first model beside the runtime at once,
                    # not after the page's script has read models.json
                    self.send_header(
                        "Link", f"</{site.default_model}>; rel=preload; as=fetch; crossorigin"
                    )
                self.end_headers()
                if not head:
                    shutil.copyfileobj(handle, self.wfile, CHUNK_SIZE)

        def _unchanged(self, tag: str, modified: float | None) -> bool:
            """Whether the client's copy is current: its If-None-Match names `tag`, or (without
            one) its If-Modified-Since is no older than `modified`."""
            matches = self.headers.get("If-None-Match")
            if matches is not None:
                return tag in [t.strip() for t in matches.split(",")] or matches.strip() == "*"
            since = self.headers.get("If-Modified-Since")
            if since is None or modified is None:
                return False
            try:
                return int(modified) <= email.utils.parsedate_to_datetime(since).timestamp()
            except (TypeError, ValueError, IndexError, OverflowError):
                return False

        def _not_modified(self, tag: str, modified: float | None) -> None:
            self.send_response(304)
            self.send_header("ETag", tag)
            self.send_header("Cache-Control", "no-cache")
            self._last_modified(modified)
            for name, value in ISOLATION.items():
                self.send_header(name, value)
            self.end_headers()

        def _last_modified(self, modified: float | None) -> None:
            if modified is not None:
                self.send_header("Last-Modified", email.utils.formatdate(modified, usegmt=True))

        def _head(
            self, status: int, kind: str, length: int, tag: str | None, no_store: bool = False
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(length))
            # files are revalidated (a rebuilt model is seen); API answers are made per request
            self.send_header("Cache-Control", "no-store" if no_store else "no-cache")
            if tag is not None:
                self.send_header("ETag", tag)
            for name, value in ISOLATION.items():
                self.send_header(name, value)

        def _send(
            self,
            status: int,
            body: bytes,
            kind: str,
            head: bool,
            tag: str | None = None,
            *,
            no_store: bool = False,
        ) -> None:
            self._head(status, kind, len(body), tag, no_store)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, format, *args):
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def make_server(
    site: Site,
    host: str,
    port: int,
    timeout: float = TIMEOUT_SECONDS,
    request_seconds: float = REQUEST_SECONDS,
) -> ThreadingHTTPServer:
    """A server bound to `host:port` (port 0: a free one) whose connections each have
    `timeout` seconds per read or write and `request_seconds` for each whole request
    (`pipeline.serving.http_server`), or a one-line `ServeError`."""
    handler = handler_for(site)
    handler.timeout = timeout
    handler.request_seconds = request_seconds
    try:
        return BoundedServer((host, port), handler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ServeError(f"{host}:{port} is taken: choose another --port") from error
        raise ServeError(f"cannot listen on {host}:{port} ({error.strerror or error})") from error


def serve_forever(server: ThreadingHTTPServer) -> None:
    """Serve until Ctrl-C, then close the socket."""
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_in_background(server: ThreadingHTTPServer) -> threading.Thread:
    """Serve from a daemon thread (tests and the browser benchmark); stop with
    `server.shutdown()`."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread
