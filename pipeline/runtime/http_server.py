"""The HTTP server under `dcgan serve`, made safe to leave running: a bounded number of
connections, each with a time limit, and clients' faults logged in one line.

- At most `MAX_CONNECTIONS` are served at once, each on its own thread; further clients wait in
  the listening socket's backlog until one ends, so no number of clients can exhaust threads.
- Every socket operation of a connection has a time limit (`timeout`): a client that sends
  half a request, or requests a model and never reads it, loses its connection after that long
  instead of holding a thread (and files are sent in chunks, so it holds no more than one).
- A client that disconnects or stalls is the client's fault: one debug line, not a traceback.
- IPv6 addresses (`::1`) work as IPv4 ones do.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
TIMEOUT_SECONDS = 10.0
# What a client that goes away or stalls raises on the server's side.
CLIENT_FAULTS = (ConnectionError, TimeoutError)


class BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `MAX_CONNECTIONS` at once."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]):
        self.address_family = address_family(address[0])
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.holders: set = set()  # the connections that hold a slot
        self.holders_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:
        # Waiting here keeps further connections in the backlog; a slot frees within the
        # handler's timeout at the latest.
        self.slots.acquire()
        with self.holders_lock:
            self.holders.add(request)
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
            self.holders.discard(request)
        self.slots.release()

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, CLIENT_FAULTS):
            log.debug("%s: the client went away (%s)", client_address[0], error)
        else:
            log.warning("%s: %s: %s", client_address[0], type(error).__name__, error)


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
