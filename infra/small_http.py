"""What docpipe's own small HTTP servers (the codec server, the metrics endpoint) share:
serving from a thread that stops promptly, and the check of a bearer token."""

from __future__ import annotations

import hmac
import socketserver
import threading
from email.message import Message

# How often the serving thread looks for a stop, so how long a stop may take:
# socketserver's 0.5 s added up to that to every stop of a worker, a consumer and a test
# server. Idle, a tenth of a second costs about 1 ms of CPU a second (0.5 s: 0.25 ms).
SHUTDOWN_POLL_S = 0.1


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


def bearer_matches(headers: Message, token: str) -> bool:
    """Whether the request's ``Authorization`` is ``Bearer <token>``, compared in constant
    time (a comparison that stops at the first wrong byte tells how much was right)."""
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )
