"""The request deadline of docpipe's small HTTP servers, at the handler (through real
servers: ``test_codec_http.py``, ``test_telemetry.py``)."""

from __future__ import annotations

import socket
import threading

from infra.small_http import DeadlineHandler


def test_a_deadline_that_fires_late_spares_the_next_request() -> None:
    # The first request's timer fired as the request arrived, and runs only once the next
    # request's timer has started: it must not cut that request's connection.
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        handler = object.__new__(DeadlineHandler)
        handler.connection = server_side
        handler._lock = threading.Lock()
        handler._cut = False
        handler._timer = threading.Timer(60, handler._cut_off)  # the next request's
        stale = threading.Thread(target=handler._cut_off)
        stale.start()
        stale.join()
        assert handler.arrived()
        client_side.sendall(b"ping")
        assert server_side.recv(4) == b"ping"
