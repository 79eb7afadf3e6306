"""The HTTP server under `dcgan serve`, made safe to leave running: a bounded number of
connections, each with time limits, and clients' faults logged in one line.

- At most `MAX_CONNECTIONS` are served at once, each on its own thread; further clients wait in
  the listening socket's backlog until one ends, so no number of clients can exhaust threads.
- At most `MAX_PER_ADDRESS` of them come from one client address: a further connection from it
  is answered at once with a JSON 503 and closed, so one host cannot take every slot.
- Every socket operation of a connection has a time limit (`timeout`): a client that sends
  half a request, or requests a model and never reads it, loses its connection after that long
  instead of holding a thread (and files are sent in chunks, so it holds no more than one).
- Each whole request (its line, headers and body) must arrive within `REQUEST_SECONDS`
  (`DeadlineHandler`): a client that trickles a byte at a time, each within the per-operation
  limit, loses its connection then. Sending the answer is not limited by it: a slow reader of
  a large model is bounded by the per-operation limit alone.
- A client that disconnects or stalls is the client's fault: one debug line, not a traceback.
- IPv6 addresses (`::1`) work as IPv4 ones do.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import socket
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
MAX_PER_ADDRESS = 16
TIMEOUT_SECONDS = 10.0
REQUEST_SECONDS = 30.0
WATCH_SECONDS = 0.2  # how often the deadlines are checked
BUSY_BODY = b'{"error": "too many connections from this address at once"}'
BUSY_REPLY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(BUSY_BODY), BUSY_BODY)
)
# What a client that goes away or stalls raises on the server's side.
CLIENT_FAULTS = (ConnectionError, TimeoutError)


class BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `MAX_CONNECTIONS` at once."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]):
        self.address_family = address_family(address[0])
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.holders: dict = {}  # the connections that hold a slot -> their client's address
        self.per_address: Counter = Counter()
        self.holders_lock = threading.Lock()
        self.deadlines: dict = {}  # handlers reading a request -> when it must be read
        self.deadlines_lock = threading.Lock()
        self.closed = threading.Event()
        super().__init__(address, handler)
        threading.Thread(target=self.cut_late_requests, daemon=True).start()

    def server_close(self) -> None:
        self.closed.set()
        super().server_close()

    def watch(self, handler, deadline: float) -> None:
        with self.deadlines_lock:
            self.deadlines[handler] = deadline

    def unwatch(self, handler) -> None:
        with self.deadlines_lock:
            self.deadlines.pop(handler, None)

    def cut_late_requests(self) -> None:
        """The one watchdog: every `WATCH_SECONDS`, cut the connections whose request is
        late (a thread per request would double the threads a flood costs)."""
        while not self.closed.wait(WATCH_SECONDS):
            now = time.monotonic()
            with self.deadlines_lock:
                late = [handler for handler, due in self.deadlines.items() if due <= now]
                for handler in late:
                    del self.deadlines[handler]
            for handler in late:
                handler.cut()

    def process_request(self, request, client_address) -> None:
        with self.holders_lock:
            crowded = self.per_address[client_address[0]] >= MAX_PER_ADDRESS
            if not crowded:
                self.per_address[client_address[0]] += 1
                self.holders[request] = client_address[0]
        if crowded:
            return self.refuse(request, client_address)
        # Waiting here keeps further connections in the backlog; a slot frees within the
        # handler's timeouts at the latest.
        self.slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:  # Ctrl-C while the thread starts: it may have run already
            self.free_slot(request)
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.free_slot(request)

    def free_slot(self, request) -> None:
        """Give back `request`'s slot once, whichever of its thread and the loop gets here
        first (a second release would raise and hide the Ctrl-C that caused the first)."""
        with self.holders_lock:
            if request not in self.holders:
                return
            address = self.holders.pop(request)
            self.per_address[address] -= 1
            if not self.per_address[address]:
                del self.per_address[address]
        self.slots.release()

    def refuse(self, request, client_address) -> None:
        """Answer a connection beyond its address's share with `BUSY_REPLY` and close it, on
        the accepting thread: a reply this short fits any socket's buffer."""
        log.debug("%s: over %d connections at once, refused", client_address[0], MAX_PER_ADDRESS)
        with contextlib.suppress(OSError):
            request.settimeout(1.0)
            request.sendall(BUSY_REPLY)
        self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, CLIENT_FAULTS):
            log.debug("%s: the client went away (%s)", client_address[0], error)
        else:
            log.warning("%s: %s: %s", client_address[0], type(error).__name__, error)


class DeadlineHandler(BaseHTTPRequestHandler):
    """A handler whose client has `request_seconds` to send each whole request (its server a
    `BoundedServer`, whose one watchdog thread cuts late ones); the handler calls
    `request_received` once it has read it, and the answer goes out unhurried."""

    request_seconds = REQUEST_SECONDS

    def send_error(self, code: int, message: str | None = None, explain: str | None = None):
        """The HTTP layer's own refusals (a malformed request line, a header line too long,
        too many headers, an unsupported version) as JSON, as the API answers, not HTML."""
        short = message or self.responses.get(code, ("error",))[0]
        body = json.dumps({"error": f"{code} {short}"}).encode()
        self.log_error("code %d, message %s", code, short)
        self.send_response(code, short)
        self.send_header("Connection", "close")
        self.close_connection = True
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 205, 304):
            self.wfile.write(body)

    def handle_one_request(self) -> None:
        self.server.watch(self, time.monotonic() + self.request_seconds)
        try:
            super().handle_one_request()
        finally:
            self.server.unwatch(self)

    def request_received(self) -> None:
        self.server.unwatch(self)

    def cut(self) -> None:
        """End a connection whose request is late: the handler's read then sees its end."""
        log.debug("%s: no whole request in %g s, cut", self.client_address[0], self.request_seconds)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def address_family(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address or a name that resolves only to one, else AF_INET."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name
        try:
            families = {info[0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
        except OSError:
            return socket.AF_INET  # the bind then says what is wrong
        return socket.AF_INET if socket.AF_INET in families else socket.AF_INET6


def reachable_from_elsewhere(host: str) -> bool:
    """Whether listening on `host` lets other machines connect: any address but loopback."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)}
    except OSError:
        return False
    return any(not ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses)


def url_host(host: str) -> str:
    """`host` as it goes into a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host
