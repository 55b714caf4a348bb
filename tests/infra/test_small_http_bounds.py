"""The bound on connections served at once, through both of docpipe's small HTTP servers
(the codec server and the metrics endpoint), with a real HTTP client."""

from __future__ import annotations

import base64
import contextlib
import socket
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client import CollectorRegistry

from infra.codec import EncryptionCodec
from infra.codec_http import CodecServer
from infra.codec_http import CodecServerConfig
from infra.keyring import StaticKeyring
from infra.small_http import BoundedHTTPServer
from infra.telemetry import MetricsServer
from tests.support.polling import wait_for

BOUND = 3
# Where the server listens, and a request it answers 200 when it serves it.
Served = tuple[str, Callable[[], requests.Response]]


@contextlib.contextmanager
def _codec_server() -> Iterator[Served]:
    codec = EncryptionCodec(StaticKeyring(keys={"k1": bytes(32)}, active="k1"))
    server = CodecServer(CodecServerConfig(max_connections=BOUND), codec)
    # A request with a body of some size: a refused one is not read.
    data = base64.b64encode(b"x" * 300_000).decode()
    encoding = base64.b64encode(b"binary/plain").decode()
    body: dict[str, Any] = {"payloads": [{"metadata": {"encoding": encoding}, "data": data}]}
    try:
        yield server.url, lambda: requests.post(f"{server.url}/decode", json=body, timeout=30)
    finally:
        server.stop()


@contextlib.contextmanager
def _metrics_server() -> Iterator[Served]:
    server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=0, max_connections=BOUND)
    try:
        yield server.url, lambda: requests.get(server.url, timeout=30)
    finally:
        server.close()


SERVERS: dict[str, Callable[[], AbstractContextManager[Served]]] = {
    "codec": _codec_server,
    "metrics": _metrics_server,
}


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_connections_past_the_bound_are_answered_503_until_one_closes(name: str) -> None:
    with SERVERS[name]() as (url, request), contextlib.ExitStack() as held:
        address = urlsplit(url)
        # Clients that connect and send nothing: each holds a thread until its deadline.
        # The server takes connections in the order they came: these first.
        silent = [
            held.enter_context(socket.create_connection((address.hostname, address.port)))
            for _ in range(BOUND)
        ]
        refused = request()
        assert refused.status_code == 503
        assert refused.text == "too many connections open\n"
        assert refused.headers["Connection"] == "close"
        silent[0].close()

        def answered() -> bool:
            return request().status_code == 200

        wait_for(answered, 30, f"the {name} server to serve once a connection closed")


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BoundedHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler, max_connections=0)
