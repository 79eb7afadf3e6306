"""`dcgan serve`: what it serves, with which headers, and how it starts and stops."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from conftest import ctrl_c_stops_it, invoke
from pipeline.serving import serve as web

needs_runtime = pytest.mark.skipif(
    not (web.RUNTIME / web.RUNTIME_FILES[0]).is_file(),
    reason="onnxruntime-web is not in node_modules: `make web-setup` installs it",
)


@pytest.fixture
def served(exported_model):
    server = web.make_server(
        web.Site.build([exported_model / "models/generator.onnx"]), "127.0.0.1", 0
    )
    web.serve_in_background(server)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetch(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


@needs_runtime
@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
        ("/contract.json", "application/json"),
        ("/models/generator.onnx", "application/octet-stream"),
    ],
)
def test_files_come_with_their_type_and_the_isolation_headers(served, path, kind):
    status, headers, body = fetch(served + path)
    assert status == 200 and body
    assert headers["Content-Type"] == kind
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"


@needs_runtime
def test_the_model_list_names_what_is_served(served, exported_model):
    _, _, body = fetch(served + "/models.json")
    size = (exported_model / "models/generator.onnx").stat().st_size
    assert json.loads(body) == [
        {
            "name": "generator.onnx",
            "url": "models/generator.onnx",
            "bytes": size,
            "kind": "generator",
        }
    ]


@needs_runtime
@pytest.mark.parametrize(
    "path", ["/pyproject.toml", "/../pyproject.toml", "/models/../../pyproject.toml", "/ort/"]
)
def test_nothing_unlisted_is_served(served, path):
    with pytest.raises(urllib.error.HTTPError) as error:
        fetch(served + path)
    assert error.value.code == 404


def test_a_missing_runtime_is_one_clear_error(monkeypatch, tmp_path, exported_model):
    monkeypatch.setattr(web, "RUNTIME", tmp_path)
    with pytest.raises(web.ServeError, match=r"onnxruntime-web is not installed .*make web-setup"):
        web.Site.build([exported_model / "models/generator.onnx"])


@needs_runtime
def test_a_missing_model_is_one_line(tmp_path):
    result = invoke("serve", "--model", str(tmp_path / "nope.onnx"))
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {tmp_path / 'nope.onnx'}: no such model file (run `make run` first?)"
    ]


@needs_runtime
def test_a_taken_port_is_one_line(exported_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke(
            "serve", "--model", str(exported_model / "models/generator.onnx"), "--port", str(port)
        )
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: 127.0.0.1:{port} is taken: choose another --port"


@needs_runtime
def test_ctrl_c_stops_the_server_cleanly(exported_model):
    command = [
        sys.executable,
        "-m",
        "pipeline",
        "serve",
        "--port",
        "0",
        "--model",
        str(exported_model / "models/generator.onnx"),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_stops_it,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("Serving the page on http://127.0.0.1:"), line
        url = line.split()[4]
        api_line = process.stdout.readline()  # communicate() reads past this buffer
        assert api_line.rstrip().endswith("generator.onnx: GET /api/contract, GET /api/sample")
        assert fetch(url)[0] == 200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0
    assert out.strip() == "Stopped."
    assert err == ""


def conditional_get(url: str, **headers):
    """Status, headers and body of a GET with `headers`; a 304 is an answer, not an error."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@needs_runtime
@pytest.mark.parametrize("path", ["/models/generator.onnx", "/ort/ort-wasm-simd-threaded.wasm"])
def test_an_unchanged_file_is_answered_304_without_a_body(served, path):
    status, headers, body = conditional_get(served + path)
    assert status == 200 and len(body) == int(headers["Content-Length"])
    tag, modified = headers["ETag"], headers["Last-Modified"]
    assert headers["Cache-Control"] == "no-cache"  # asked again each time, so a rebuild shows
    for asked in ({"If-None-Match": tag}, {"If-Modified-Since": modified}):
        status, again, body = conditional_get(served + path, **asked)
        assert (status, body, again["ETag"]) == (304, b"", tag), asked
        assert again["Cross-Origin-Embedder-Policy"] == "require-corp"
    status, _, body = conditional_get(served + path, **{"If-None-Match": '"other"'})
    assert status == 200 and body


@needs_runtime
def test_a_rebuilt_model_gets_a_new_tag_and_is_sent_again(exported_model, tmp_path):
    model = tmp_path / "generator.onnx"
    model.write_bytes((exported_model / "models/generator.onnx").read_bytes())
    server = web.make_server(web.Site.build([model]), "127.0.0.1", 0)
    web.serve_in_background(server)
    url = f"http://127.0.0.1:{server.server_address[1]}/models/generator.onnx"
    try:
        _, headers, first = conditional_get(url)
        model.write_bytes(first + b"\0")  # another size, another modification time
        status, again, body = conditional_get(url, **{"If-None-Match": headers["ETag"]})
        assert status == 200 and body == first + b"\0" and again["ETag"] != headers["ETag"]
    finally:
        server.shutdown()
        server.server_close()


@needs_runtime
def test_the_model_list_has_a_tag_too(served):
    _, headers, body = conditional_get(served + "/models.json")
    asked = {"If-None-Match": headers["ETag"]}
    status, _, again = conditional_get(served + "/models.json", **asked)
    assert (status, again) == (304, b"") and json.loads(body)
