"""`dcgan serve`: the web page (web/), onnxruntime-web's files and the generators over HTTP.

Only what is listed is served: the page's files, the runtime files it loads, the contract and the
models given, each under a fixed URL (no path from a request touches the disk). Every response
carries the cross-origin isolation headers that let onnxruntime-web use threads
(SharedArrayBuffer), and `.wasm` its MIME type, without which the browser fetches it twice.
Standard library only: the page needs no TensorFlow.
"""

from __future__ import annotations

import errno
import json
import logging
import mimetypes
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.errors import PipelineError
from pipeline.runtime.contract_files import MANIFEST_FILE

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]  # the checkout: pipeline/runtime/serve.py
WEB = REPO / "web"
DOCS = REPO / "docs"
RUNTIME = REPO / "node_modules" / "onnxruntime-web" / "dist"
PAGE_FILES = ("index.html", "app.js", "generator.js", "style.css")
# The WASM build the page imports and the files it loads in turn (no WebGPU/JSEP build: 14 MB
# instead of 28 MB to download).
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# The first is the page's default: in WebAssembly the int8 model draws 1.7-1.9x as many digits
# per second as the float32 one (docs/PERFORMANCE.md), for a Frechet distance about 5% higher.
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


class ServeError(PipelineError):
    """The page cannot be served: a file is missing, or the address is taken."""


ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class Site:
    """URL path -> file, and the JSON list of the models."""

    files: dict[str, Path]
    models_json: bytes

    @classmethod
    def build(cls, models: list[Path]) -> Site:
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
        for model in models:
            if not model.is_file():
                raise ServeError(f"{model}: no such model file (run `make run` first?)")
            url = f"models/{model.name}"
            if f"/{url}" in files:
                raise ServeError(f"two models are named {model.name}: rename one")
            files[f"/{url}"] = model
            listing.append({"name": model.name, "url": url, "bytes": model.stat().st_size})
        return cls(files, json.dumps(listing).encode())


def handler_for(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "dcgan-serve"

        def do_GET(self):
            self._respond(head=False)

        def do_HEAD(self):
            self._respond(head=True)

        def _respond(self, *, head: bool) -> None:
            path = urlsplit(self.path).path
            if path == "/models.json":
                return self._send(200, site.models_json, TYPES[".json"], head)
            file = site.files.get(path)
            if file is None:
                return self._send(404, b"not found\n", "text/plain; charset=utf-8", head)
            try:
                body = file.read_bytes()
            except OSError:
                return self._send(404, b"not found\n", "text/plain; charset=utf-8", head)
            kind = TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0]
            return self._send(200, body, kind or "application/octet-stream", head)

        def _send(self, status: int, body: bytes, kind: str, head: bool) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")  # a rebuilt model is fetched anew
            for name, value in ISOLATION.items():
                self.send_header(name, value)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, format, *args):
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def make_server(site: Site, host: str, port: int) -> ThreadingHTTPServer:
    """A server bound to `host:port` (port 0: a free one), or a one-line `ServeError`."""
    try:
        server = ThreadingHTTPServer((host, port), handler_for(site))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ServeError(f"{host}:{port} is taken: choose another --port") from error
        raise ServeError(f"cannot listen on {host}:{port} ({error.strerror or error})") from error
    server.daemon_threads = True
    return server


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
