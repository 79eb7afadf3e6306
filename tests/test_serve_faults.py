"""`dcgan serve` against clients that stall, hang up or flood it: a real server process on
127.0.0.1, real sockets, bounded in count and time (docs/RELIABILITY.md)."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ctrl_c_stops_it
from pipeline.serving import serve as web
from pipeline.serving.http_server import MAX_CONNECTIONS, MAX_PER_ADDRESS

pytestmark = pytest.mark.skipif(
    not (web.RUNTIME / web.RUNTIME_FILES[0]).is_file(),
    reason="onnxruntime-web is not in node_modules: `make web-setup` installs it",
)


class Server:
    def __init__(self, model: Path, *options: str):
        command = [sys.executable, "-m", "pipeline", "serve", "--port", "0", "--model", str(model)]
        self.process = subprocess.Popen(
            [*command, *options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=ctrl_c_stops_it,
        )
        line = self.process.stdout.readline()
        assert line.startswith("Serving the page on http://"), line + self.process.stderr.read()
        self.url = line.split()[4]
        assert self.process.stdout.readline().startswith("API on ")
        host, port = self.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        self.host, self.port = host.strip("[]"), int(port)
        self.get("/models.json", timeout=30)  # serving, not about to

    def status(self, key: str) -> int:
        """A number from /proc/PID/status: VmRSS in kB, Threads."""
        lines = Path(f"/proc/{self.process.pid}/status").read_text().splitlines()
        return int(next(line for line in lines if line.startswith(f"{key}:")).split()[1])

    def rss_mb(self) -> float:
        return self.status("VmRSS") / 1024

    def get(self, path: str, timeout: float = 10) -> bytes:
        with urllib.request.urlopen(self.url.rstrip("/") + path, timeout=timeout) as response:
            return response.read()

    def connect(self, receive_buffer: int | None = None, source: int = 1) -> socket.socket:
        """A connection from 127.0.0.`source` (an IPv4 server): many clients' addresses
        on one machine, each under its share of the server's connections."""
        client = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        if receive_buffer:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        if ":" not in self.host:
            client.bind((f"127.0.0.{source}", 0))
        client.settimeout(10)
        client.connect((self.host, self.port))
        return client

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        try:
            _, err = self.process.communicate(timeout=30)
        finally:
            self.process.kill()
        return self.process.returncode, err


@pytest.fixture
def model(exported_model) -> Path:
    return exported_model / "models/generator.onnx"  # 25 MB: the dense layer of 1024 x 6272


def test_fifty_clients_that_never_read_leave_memory_bounded_and_others_answered(model):
    server = Server(model)
    stalled = []
    try:
        server.get("/models.json")
        before = server.rss_mb()
        for number in range(50):
            client = server.connect(receive_buffer=4096, source=2 + number)
            client.sendall(b"GET /models/generator.onnx HTTP/1.1\r\nHost: x\r\n\r\n")
            stalled.append(client)
        time.sleep(2)  # every answer started and stuck on a full socket
        during = server.rss_mb()
        started = time.monotonic()
        assert b"generator.onnx" in server.get("/models.json")
        answered_in = time.monotonic() - started
    finally:
        for client in stalled:
            client.close()
        code, err = server.stop()
    assert during < 200, f"{before:.0f} MB before, {during:.0f} MB with 50 stalled clients"
    assert answered_in < 2
    assert code == 0 and "Traceback" not in err


def test_half_sent_requests_time_out_and_free_their_threads(model):
    server = Server(model, "--timeout", "1")
    half = []
    try:
        for number in range(MAX_CONNECTIONS + 36):  # more than the server serves at once
            client = server.connect(source=2 + number)
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the blank line never comes
            half.append(client)
        started = time.monotonic()
        assert b"generator.onnx" in server.get("/models.json", timeout=20)
        waited = time.monotonic() - started
        closed = [client.recv(1) for client in half[:MAX_CONNECTIONS]]
    finally:
        for client in half:
            client.close()
        code, err = server.stop()
    assert waited < 5  # once the first half-sent requests timed out, after about 1 s
    assert closed == [b""] * MAX_CONNECTIONS  # the server hung up on them
    assert code == 0 and "Traceback" not in err


def test_no_number_of_clients_runs_more_than_the_bounded_threads(model):
    server = Server(model, "--timeout", "30")
    half = []
    try:
        counts = []
        for _ in range(5):  # the fewest over half a second: the threads of an idle server
            counts.append(server.status("Threads"))
            time.sleep(0.1)
        idle = min(counts)
        for number in range(MAX_CONNECTIONS + 36):
            client = server.connect(source=2 + number)
            client.sendall(b"GET / HTTP/1.1\r\n")
            half.append(client)
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not seen or seen[-1] < MAX_CONNECTIONS):
            seen.append(server.status("Threads") - idle)
            time.sleep(0.1)
        time.sleep(0.5)  # time for more threads, were there no bound
        seen.append(server.status("Threads") - idle)
    finally:
        for client in half:
            client.close()
        server.stop()
    # one thread per connection served, the rest waiting (a thread still ending from the
    # readiness request may count in `idle`)
    assert max(seen) <= MAX_CONNECTIONS and seen[-1] >= MAX_CONNECTIONS - 1


def test_one_address_holds_at_most_its_share_and_the_others_are_served(model):
    server = Server(model, "--timeout", "30")
    held = []
    try:
        for _ in range(MAX_PER_ADDRESS):
            client = server.connect(source=9)
            client.sendall(b"GET / HTTP/1.1\r\n")  # half a request, holding its slot
            held.append(client)
        over = server.connect(source=9)
        answer = over.recv(4096)
        started = time.monotonic()
        assert b"generator.onnx" in server.get("/models.json")  # from another address
        answered_in = time.monotonic() - started
    finally:
        for client in [*held, over]:
            client.close()
        code, err = server.stop()
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 503 ") and b"Content-Type: application/json" in head
    assert json.loads(body) == {"error": "too many connections from this address at once"}
    assert answered_in < 2
    assert code == 0 and "Traceback" not in err


def test_a_request_trickled_past_its_deadline_is_cut(exported_model):
    """Each header line comes within the per-read limit (2 s), the whole request never within
    its deadline (1 s): the connection ends at the deadline, not when the client stops."""
    site = web.Site.build([exported_model / "models/generator.onnx"])
    server = web.make_server(site, "127.0.0.1", 0, timeout=2, request_seconds=1)
    web.serve_in_background(server)
    client = socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10)
    try:
        started = time.monotonic()
        client.sendall(b"GET / HTTP/1.1\r\n")
        ended = None
        for number in range(20):
            time.sleep(0.25)
            try:
                client.sendall(b"X-Trickle-%d: 1\r\n" % number)
            except OSError:  # the server has hung up
                ended = time.monotonic() - started
                break
        if ended is None:
            assert client.recv(1) == b""
            ended = time.monotonic() - started
    finally:
        client.close()
        server.shutdown()
        server.server_close()
    assert 0.9 < ended < 3, f"cut after {ended:.2f} s"


def test_clients_that_hang_up_mid_download_are_no_traceback(model):
    server = Server(model)
    try:
        for _ in range(20):
            client = server.connect(receive_buffer=4096)
            client.sendall(b"GET /models/generator.onnx HTTP/1.0\r\n\r\n")
            client.recv(1024)
            # a reset, not a polite close: the server's next write fails at once
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
        time.sleep(1)
        assert server.get("/models.json")
    finally:
        code, err = server.stop()
    assert code == 0
    assert err == ""


def test_an_ipv6_loopback_address_is_served(model):
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        server = Server(model, "--host", "::1")
        try:
            assert server.url.startswith("http://[::1]:")
            assert b"generator.onnx" in server.get("/models.json")
        finally:
            server.stop()
        return
    pytest.skip("this machine has no IPv6 loopback")


def test_listening_beyond_loopback_says_so(model):
    server = Server(model, "--host", "0.0.0.0")
    code, err = server.stop()
    assert err.splitlines()[0] == (
        "Warning: listening on 0.0.0.0: other machines on the network can reach the page and "
        "the API (use --host 127.0.0.1 to keep them on this one)"
    )
    assert code == 0


def test_a_slot_is_given_back_once_whoever_frees_it():
    """Ctrl-C can land while the loop starts a connection's thread, after the thread has run:
    both then free the slot, and a second release must neither raise (which would swallow the
    Ctrl-C and keep serving) nor add a slot."""
    from http.server import BaseHTTPRequestHandler

    from pipeline.serving.http_server import BoundedServer

    server = BoundedServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    try:
        ours, theirs = socket.socketpair()
        theirs.close()  # the handler reads nothing and ends
        server.process_request(ours, ("127.0.0.1", 0))
        deadline = time.monotonic() + 10
        while server.holders and time.monotonic() < deadline:
            time.sleep(0.01)
        server.free_slot(ours)  # as the loop would after the thread
        taken = [server.slots.acquire(blocking=False) for _ in range(MAX_CONNECTIONS + 1)]
        assert taken == [True] * MAX_CONNECTIONS + [False]
    finally:
        server.server_close()
