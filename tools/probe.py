"""Hostile inputs and faults against every entry point, each judged as a user would see it.

The sampler, `dcgan` (sample, classify, encode, evaluate, exp, serve and the stages), the HTTP
API, the Node sampler and the page each get bad values, damaged or foreign files and abusive
clients; a case is **good** when the answer is a clear refusal (a non-zero exit whose last line
says what is wrong, no traceback; a JSON 4xx/5xx; a visible message on the page), nothing was
written or changed, and it came within its time bound. Anything else is listed as a defect.
Needs `make run`'s models (and `make web-setup` for Node and the page).

    .venv/bin/python tools/probe.py        # `make probe`
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL = ROOT / "models/generator.onnx"
LIMIT_SECONDS = 60


@dataclass
class Case:
    entry: str
    what: str
    run: Callable[[], tuple[bool, str]]  # (good, what was seen)


def command(*args: str, out: Path | None = None) -> tuple[bool, str]:
    """`dcgan ARGS`: good when it exits non-zero with an `Error:` last line and no traceback,
    and `out` (when given) was not written."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LIMIT_SECONDS,
    )
    return refused(done, out)


def node(*args: str, out: Path | None = None) -> tuple[bool, str]:
    done = subprocess.run(
        ["node", "examples/node/sample.mjs", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LIMIT_SECONDS,
    )
    return refused(done, out)


def refused(done: subprocess.CompletedProcess, out: Path | None) -> tuple[bool, str]:
    text = (done.stdout + done.stderr).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    good = (
        done.returncode != 0
        and "Traceback" not in text
        and len(errors) == 1
        and len(lines) <= 5  # a usage error: the error, and the usage around it
        and (out is None or not out.exists())
    )
    return good, f"exit {done.returncode}: {(errors or lines or [''])[0][:150]}"


def api_call(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None
) -> tuple[bool, str]:
    """Good when the API answers 4xx or 5xx with a JSON error."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=LIMIT_SECONDS)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        if body is not None and "Content-Length" not in (headers or {}):
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        payload = response.read()
    except OSError as error:
        return False, f"no answer ({error})"
    finally:
        connection.close()
    try:
        message = json.loads(payload)["error"]
    except (ValueError, KeyError, TypeError):
        return False, f"HTTP {response.status}, not a JSON error: {payload[:80]!r}"
    return 400 <= response.status < 600, f"HTTP {response.status}: {message[:120]}"


def crowd(port: int, source: str, count: int) -> tuple[bool, str]:
    """`count` half-sent requests from one address: beyond its share a JSON 503 at once, and
    another address still served."""
    held, answers = [], []
    try:
        for _ in range(count):
            client = socket.socket()
            client.bind((source, 0))
            client.settimeout(5)
            client.connect(("127.0.0.1", port))
            client.sendall(b"GET / HTTP/1.1\r\n")
            held.append(client)
        for client in held[16:]:
            answers.append(client.recv(200).split(b"\r\n", 1)[0])
        served, seen = api_call(port, "GET", "/api/nothing")  # another address: 404 JSON
    finally:
        for client in held:
            client.close()
    good = served and answers and all(b" 503 " in a for a in answers)
    return bool(good), f"{len(answers)} over the share: {set(answers)}; other address: {seen}"


def page_case(url: str, query: str) -> tuple[bool, str]:
    from playwright.sync_api import sync_playwright

    from pipeline.benchmarks.browser import SETTLED, launch

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(url + query)
            page.wait_for_selector(SETTLED, timeout=LIMIT_SECONDS * 1000)
            state = page.evaluate("document.body.dataset.state")
            message = page.text_content("#error") or ""
        finally:
            browser.close()
    return state == "error" and bool(message), f"{state}: {message[:120]}"


def damaged_models(folder: Path) -> dict[str, Path]:
    """Files a user may hand in: flipped weight bytes, empty, text, truncated."""
    import onnx

    data = bytearray(MODEL.read_bytes())
    weights = onnx.load_from_string(bytes(data)).graph.initializer
    largest = max(weights, key=lambda tensor: len(tensor.raw_data))
    start = data.find(largest.raw_data) + len(largest.raw_data) // 2
    data[start : start + 200] = bytes(byte ^ 0xFF for byte in data[start : start + 200])
    files = {
        "flipped": bytes(data),
        "empty": b"",
        "text": b"not a model at all\n",
        "truncated": MODEL.read_bytes()[: len(data) // 2],
    }
    paths = {}
    for name, content in files.items():
        paths[name] = folder / f"{name}.onnx"
        paths[name].write_bytes(content)
    return paths


def cases(folder: Path, bad: dict[str, Path], port: int, page_url: str | None) -> list[Case]:
    out = folder / "x.png"
    npy = folder / "x.npy"
    (folder / "noimage.png").write_text("not a picture")
    params = (ROOT / "params.yaml").read_text()
    (folder / "twice.yaml").write_text(params + "\ntrain:\n  epochs: 4\n")
    (folder / "opset.yaml").write_text(params.replace("opset: 17", "opset: 99", 1))
    (folder / "latin1.yaml").write_bytes(params.encode() + b"# caf\xe9\n")
    sample = ("sample", "--model", str(MODEL))
    m = str(MODEL)

    def python_sampler(path: Path) -> tuple[bool, str]:
        from pipeline.errors import PipelineError
        from pipeline.runtime.sampler import Sampler

        try:
            Sampler(path).sample(4)
        except PipelineError as error:
            return "\n" not in str(error), str(error)[:150]
        except Exception as error:
            return False, f"{type(error).__name__}: {error}"[:150]
        return False, "sampled"

    listed = [
        Case("sampler", f"Sampler on a {name} file", lambda p=path: python_sampler(p))
        for name, path in bad.items()
    ]
    listed += [
        Case("cli", "sample -n 0", lambda: command(*sample, "-n", "0", "--out", str(out), out=out)),
        Case(
            "cli", "sample -n -1", lambda: command(*sample, "-n", "-1", "--out", str(out), out=out)
        ),
        Case(
            "cli",
            "sample -n 10^9 (memory)",
            lambda: command(*sample, "-n", str(10**9), "--out", str(npy), out=npy),
        ),
        Case("cli", "sample --seed -1", lambda: command(*sample, "--seed", "-1", out=out)),
        Case("cli", "sample --seed 2^64", lambda: command(*sample, "--seed", str(2**64), out=out)),
        Case("cli", "sample --label 3, unconditional", lambda: command(*sample, "--label", "3")),
        Case(
            "cli",
            "sample --code category=3, unconditional",
            lambda: command(*sample, "--code", "category=3"),
        ),
        Case("cli", "sample --sweep c1, unconditional", lambda: command(*sample, "--sweep", "c1")),
        Case("cli", "sample --out x.bmp", lambda: command(*sample, "--out", str(folder / "x.bmp"))),
        Case(
            "cli",
            "sample --out into a missing folder",
            lambda: command(*sample, "--out", str(folder / "no/such/x.png")),
        ),
        Case(
            "cli",
            "sample --out on /proc (refused write)",
            lambda: command(*sample, "--out", "/proc/x.png"),
        ),
        Case(
            "cli",
            "sample --model missing",
            lambda: command("sample", "--model", str(folder / "no.onnx")),
        ),
        *[
            Case(
                "cli",
                f"sample --model {name}",
                lambda p=path: command("sample", "--model", str(p), "--out", str(out), out=out),
            )
            for name, path in bad.items()
        ],
        Case(
            "cli",
            "classify --model the generator",
            lambda: command("classify", "--model", m, str(folder / "noimage.png")),
        ),
        Case(
            "cli",
            "encode --model the generator",
            lambda: command(
                "encode", "--model", m, str(folder / "noimage.png"), "--out", str(npy), out=npy
            ),
        ),
        Case(
            "cli",
            "evaluate --noise-range 1 -1",
            lambda: command("evaluate", "--model", m, "--noise-range", "1", "-1"),
        ),
        Case(
            "cli",
            "evaluate --noise-dim 0",
            lambda: command("evaluate", "--model", m, "--noise-dim", "0"),
        ),
        Case(
            "cli",
            "train --params with a key written twice",
            lambda: command("train", "--params", str(folder / "twice.yaml")),
        ),
        Case(
            "cli",
            "export --params with opset 99",
            lambda: command("export", "--params", str(folder / "opset.yaml")),
        ),
        Case(
            "cli",
            "train --params not UTF-8",
            lambda: command("train", "--params", str(folder / "latin1.yaml")),
        ),
        Case(
            "exp",
            "exp quality -S train.batch_size=-1",
            lambda: exp_unchanged("quality", "-S", "train.batch_size=-1"),
        ),
        Case(
            "exp",
            "exp quality -S train.nokey=1",
            lambda: exp_unchanged("quality", "-S", "train.nokey=1"),
        ),
        Case(
            "exp",
            "exp quality -S 'train.epochs=[1'",
            lambda: exp_unchanged("quality", "-S", "train.epochs=[1"),
        ),
        Case("exp", "exp of no such preset", lambda: exp_unchanged("no-such-preset")),
        Case(
            "serve",
            "serve --model flipped",
            lambda: command("serve", "--model", str(bad["flipped"]), "--port", "0"),
        ),
        Case("serve", "serve on a port that is taken", lambda: serve_taken(m)),
        Case("api", "GET /api/sample?n=0", lambda: api_call(port, "GET", "/api/sample?n=0")),
        Case("api", "GET /api/sample?n=abc", lambda: api_call(port, "GET", "/api/sample?n=abc")),
        Case(
            "api", "GET /api/sample?n=100000", lambda: api_call(port, "GET", "/api/sample?n=100000")
        ),
        Case(
            "api", "GET /api/sample?seed=-1", lambda: api_call(port, "GET", "/api/sample?seed=-1")
        ),
        Case(
            "api",
            "GET /api/sample?label=3 (unconditional)",
            lambda: api_call(port, "GET", "/api/sample?label=3"),
        ),
        Case(
            "api",
            "GET with 40 query fields",
            lambda: api_call(port, "GET", "/api/sample?" + "&".join(f"k{i}=1" for i in range(40))),
        ),
        Case("api", "GET /api/nothing", lambda: api_call(port, "GET", "/api/nothing")),
        Case(
            "api",
            "POST /api/classify without Content-Length",
            lambda: api_call(port, "POST", "/api/classify"),
        ),
        Case(
            "api",
            "POST with Content-Length 10^12",
            lambda: api_call(port, "POST", "/api/classify", None, {"Content-Length": str(10**12)}),
        ),
        Case(
            "api",
            "POST with Content-Length in Unicode digits",
            lambda: api_call(port, "POST", "/api/classify", None, {"Content-Length": "\u00b2"}),
        ),
        Case(
            "api",
            "POST /api/classify of no image (no family model)",
            lambda: api_call(port, "POST", "/api/classify", b"junk"),
        ),
        Case("api", "20 connections from one address", lambda: crowd(port, "127.0.0.7", 20)),
        Case(
            "node",
            "--threads 2048",
            lambda: node("--model", m, "--threads", "2048", "-n", "4", "--out", str(npy), out=npy),
        ),
        Case("node", "-n 0", lambda: node("--model", m, "-n", "0", "--out", str(npy), out=npy)),
        Case(
            "node",
            "--seed -1",
            lambda: node("--model", m, "--seed", "-1", "--out", str(npy), out=npy),
        ),
        Case(
            "node",
            "--label 3, unconditional",
            lambda: node("--model", m, "--label", "3", "--out", str(npy), out=npy),
        ),
        *[
            Case(
                "node",
                f"--model {name}",
                lambda p=path: node("--model", str(p), "--out", str(npy), out=npy),
            )
            for name, path in bad.items()
        ],
    ]
    if page_url is not None:
        listed += [
            Case(
                "page",
                f"?model=models/{name}.onnx",
                lambda n=name: page_case(page_url, f"?model=models/{n}.onnx"),
            )
            for name in ("flipped", "text")
        ]
        listed += [
            Case("page", "?count=0", lambda: page_case(page_url, "?count=0")),
            Case("page", "?seed=-1", lambda: page_case(page_url, "?seed=-1")),
        ]
    return listed


def serve_taken(model: str) -> tuple[bool, str]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        return command("serve", "--model", model, "--port", str(taken.getsockname()[1]))


def exp_unchanged(*args: str) -> tuple[bool, str]:
    """`dcgan exp ARGS` refused and params.yaml as it was."""
    before = (ROOT / "params.yaml").read_bytes()
    good, seen = command("exp", *args)
    return good and (ROOT / "params.yaml").read_bytes() == before, seen


def main() -> int:
    from pipeline.serving import serve as web

    if not MODEL.is_file():
        print(f"{MODEL.relative_to(ROOT)}: no such model; `make run` first", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="probe-"))
    try:
        bad = damaged_models(folder)
        page_url = None
        from pipeline.benchmarks.browser import missing

        if missing() is None and shutil.which("node"):
            page_site = web.Site.build([MODEL, bad["flipped"], bad["text"]])
            page_server = web.make_server(page_site, "127.0.0.1", 0)
            web.serve_in_background(page_server)
            page_url = f"http://127.0.0.1:{page_server.server_address[1]}/"
        from pipeline.serving.api import Api

        api_server = web.make_server(
            web.Site.build([MODEL], Api.load(MODEL, folder)), "127.0.0.1", 0
        )
        web.serve_in_background(api_server)
        port = api_server.server_address[1]
        totals = {"good": 0, "defect": 0}
        print("| entry | case | seconds | verdict | seen |\n| --- | --- | ---: | --- | --- |")
        for case in cases(folder, bad, port, page_url):
            started = time.monotonic()
            try:
                good, seen = case.run()
            except Exception as error:
                good, seen = False, f"the probe's call raised {type(error).__name__}: {error}"
            seconds = time.monotonic() - started
            good = good and seconds < LIMIT_SECONDS
            totals["good" if good else "defect"] += 1
            seen = seen.replace("|", "\\|").replace("\n", " ")
            verdict = "good" if good else "DEFECT"
            print(
                f"| {case.entry} | {case.what} | {seconds:.1f} | {verdict} | {seen} |", flush=True
            )
        print(f"\n{sum(totals.values())} cases: {totals['good']} good, {totals['defect']} defects")
        return 1 if totals["defect"] else 0
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    sys.exit(main())
