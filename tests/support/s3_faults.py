"""S3 fault injection: moto has none, so a botocore ``before-send`` handler answers instead
of the server for chosen calls, and botocore's real retry logic runs on the answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import KW_ONLY
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from urllib.parse import quote

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectionClosedError


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


# eq=False: a fault is one handler registered with botocore, equal only to itself.
@dataclass(eq=False)
class S3Faults:
    """Fails calls of one operation: the first ``count`` (``count=None``: every call),
    only those whose URL names ``key`` when given, and only for ``seconds`` from the first
    call it fails when given (a storm that passes, however late the calls begin).

    Args:
        operation: e.g. ``"GetObject"``.
        status: HTTP status to answer with, e.g. 503; 0 means a connection reset instead.
        code: the S3 error code in the answer, e.g. ``"SlowDown"``.
    """

    operation: str
    _: KW_ONLY
    status: int
    code: str = ""
    count: int | None = None
    key: str | None = None
    seconds: float | None = None
    # What the handler has done so far: calls still to fail (of ``count``), when the
    # storm ends (``seconds`` after the first failed call), and how many it failed.
    remaining: int | None = field(init=False)
    until: float | None = field(init=False, default=None)
    injected: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.remaining = self.count

    def install(self, client: Any) -> S3Faults:
        client.meta.events.register(f"before-send.s3.{self.operation}", self._before_send)
        return self

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.key is not None and quote(self.key) not in request.url:
            return None
        if self.seconds is not None and self.until is None:
            self.until = time.monotonic() + self.seconds
        if self.until is not None and time.monotonic() >= self.until:
            return None
        if self.remaining is not None:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        self.injected += 1
        if self.status == 0:
            raise ConnectionClosedError(endpoint_url=request.url)
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{self.code}</Code>"
            f"<Message>injected by the test</Message></Error>"
        ).encode()
        return AWSResponse(request.url, self.status, HTTPHeaders(), _Body(body))
