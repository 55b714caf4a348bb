"""Bearer tokens of docpipe's own small HTTP servers (the codec server, the metrics
endpoint): the one check both make of a request's ``Authorization`` header."""

from __future__ import annotations

import hmac
from email.message import Message


def bearer_matches(headers: Message, token: str) -> bool:
    """Whether the request's ``Authorization`` is ``Bearer <token>``, compared in constant
    time (a comparison that stops at the first wrong byte tells how much was right)."""
    scheme, _, credentials = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credentials.strip().encode(), token.encode()
    )
