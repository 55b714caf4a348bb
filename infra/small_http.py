"""What docpipe's own small HTTP servers (the codec server, the metrics endpoint) share:
serving from a thread that stops promptly, a thread for each connection up to a bound, a
deadline for each request to arrive, and the check of a bearer token."""

from __future__ import annotations

import contextlib
import hmac
import socket
import socketserver
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

# How often the serving thread looks for a stop, so how long a stop may take:
# socketserver's 0.5 s added up to that to every stop of a worker, a consumer and a test
# server. Idle, a tenth of a second costs about 1 ms of CPU a second (0.5 s: 0.25 ms).
SHUTDOWN_POLL_S = 0.1
# Connections served at once, each by a thread of its own: a browser keeps six open to a
# server, a Prometheus one. More at once are answered 503 (``BoundedHTTPServer``).
DEFAULT_MAX_CONNECTIONS = 128
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 26\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    b"too many connections open\n"
)


def serve_in_thread(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Serve ``server`` from a new daemon thread, started; ``server.shutdown()`` ends it."""
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": SHUTDOWN_POLL_S},
        name=name,
        daemon=True,
    )
    thread.start()
    return thread


class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most ``max_connections`` connections at
    once. One more is answered 503 by the serving thread itself and closed: many slow
    clients (each may hold its thread until its deadline, ``DeadlineHandler``) cannot make
    the process start threads without bound."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._slots = threading.BoundedSemaphore(max_connections)
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket) -> None:
        # Sent without waiting (a new connection's buffer takes it); what the client sent
        # is left unread (its client still reads the answer).
        with contextlib.suppress(OSError):
            request.setblocking(False)
            request.send(_BUSY)
        self.shutdown_request(request)


def bearer_matches(headers: Message, token: str) -> bool:
    """Whether the request's ``Authorization`` is ``Bearer <token>``, compared in constant
    time (a comparison that stops at the first wrong byte tells how much was right)."""
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )


class DeadlineHandler(BaseHTTPRequestHandler):
    """A request handler whose reads wait at most ``timeout_seconds``, and whose requests
    must arrive whole (line, headers and body) within twice that of the wait for them.

    The socket timeout alone bounds each read: a client that sends a byte a little more
    often holds a thread for as long as it likes. Past the deadline the connection is
    shut, which ends the read under way. (Twice: a request that merely stalls meets the
    read timeout first, and a handler can still say why it gives up.) A handler calls
    :meth:`arrived` once it has read the request, and answers only if it returns True.
    """

    timeout_seconds: float = 30.0

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.timeout_seconds)
        self._lock = threading.Lock()
        self._cut = False
        self._timer: threading.Timer | None = None

    def handle_one_request(self) -> None:
        self._timer = threading.Timer(2 * self.timeout_seconds, self._cut_off)
        self._timer.daemon = True
        self._timer.start()
        try:
            super().handle_one_request()
        except OSError:
            if not self._cut:
                raise
            # What was read of the request was answered on a connection already shut.
        finally:
            self.arrived()
            if self._cut:
                self.close_connection = True

    def arrived(self) -> bool:
        """The request is read: stop its deadline. False if it had passed (the connection
        is shut: nothing to answer)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return not self._cut

    def _cut_off(self) -> None:
        with self._lock:
            # A timer that fired as its request arrived may run only now, while the next
            # request's timer runs: that request is not this timer's to cut.
            if self._timer is not threading.current_thread():
                return
            self._timer = None
            self._cut = True
        # The client may have gone already.
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
