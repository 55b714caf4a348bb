"""Telemetry of a process: its settings, the metrics endpoint, OTLP traces."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import Counter

from infra.settings import SettingsError
from infra.settings import TelemetrySettings
from infra.settings_env import load_settings
from infra.telemetry import MetricsServer
from infra.telemetry import otlp_tracer_provider
from infra.telemetry import otlp_traces_url
from tests.support.metrics import metric_samples
from tests.support.slow_clients import bytes_sent_before_closed


def test_telemetry_settings_are_checked() -> None:
    assert load_settings(env={}).telemetry == TelemetrySettings()
    loaded = load_settings(
        env={"DOCPIPE_TELEMETRY_LOG_FORMAT": "json", "DOCPIPE_TELEMETRY_METRICS_PORT": "9464"}
    )
    assert loaded.telemetry.log_format == "json" and loaded.telemetry.metrics_port == 9464
    with pytest.raises(SettingsError, match="LOG_FORMAT"):
        load_settings(env={"DOCPIPE_TELEMETRY_LOG_FORMAT": "xml"})
    with pytest.raises(SettingsError, match="METRICS_PORT"):
        load_settings(env={"DOCPIPE_TELEMETRY_METRICS_PORT": "70000"})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "metrics.internal"])
def test_metrics_open_to_others_need_a_token(host: str) -> None:
    env = {"DOCPIPE_TELEMETRY_METRICS_PORT": "9464", "DOCPIPE_TELEMETRY_METRICS_HOST": host}
    with pytest.raises(SettingsError, match="DOCPIPE_TELEMETRY_METRICS_TOKEN"):
        load_settings(env=env)
    token = {**env, "DOCPIPE_TELEMETRY_METRICS_TOKEN": "scrape-token"}
    assert load_settings(env=token).telemetry.metrics_token == "scrape-token"
    # Without a port there is no endpoint to open.
    assert load_settings(env={"DOCPIPE_TELEMETRY_METRICS_HOST": host}).telemetry.metrics_port == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_metrics_on_loopback_need_no_token(host: str) -> None:
    env = {"DOCPIPE_TELEMETRY_METRICS_PORT": "9464", "DOCPIPE_TELEMETRY_METRICS_HOST": host}
    assert load_settings(env=env).telemetry.metrics_host == host


class _Stub(ThreadingHTTPServer):
    """A loopback HTTP server answering GETs with ``body`` and recording POSTs."""

    def __init__(self, body: bytes = b"") -> None:
        self.body = body
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(stub.body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                stub.posts.append(
                    (
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        self.rfile.read(length),
                    )
                )
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def stub() -> Iterator[_Stub]:
    server = _Stub(b'# TYPE temporal_request counter\ntemporal_request{operation="x"} 7\n')
    yield server
    server.shutdown()
    server.server_close()


def test_metrics_endpoint_serves_docpipe_then_sdk_metrics(stub: _Stub) -> None:
    registry = CollectorRegistry()
    Counter("docpipe_things", "things", registry=registry).inc(2)
    server = MetricsServer(registry, host="127.0.0.1", port=0, sdk_url=f"{stub.url}/metrics")
    try:
        with urllib.request.urlopen(server.url) as response:
            assert response.headers["Content-Type"].startswith("text/plain")
            text = response.read().decode()
        samples = metric_samples(text)
        assert samples[("docpipe_things_total", ())] == 2
        # The SDK's metrics are passed through under their own names.
        assert 'temporal_request{operation="x"} 7' in text
        server.sdk_url = "http://127.0.0.1:1/metrics"  # the SDK endpoint is gone
        with urllib.request.urlopen(server.url) as response:
            assert "docpipe_things_total 2.0" in response.read().decode()
    finally:
        server.close()


def test_otlp_exporter_sends_spans_to_the_configured_collector(stub: _Stub) -> None:
    assert otlp_traces_url("http://collector:4318/") == "http://collector:4318/v1/traces"
    assert otlp_traces_url("http://c:4318/custom") == "http://c:4318/custom"
    provider = otlp_tracer_provider(stub.url, "worker")
    with provider.get_tracer("test").start_as_current_span("hello"):
        pass
    assert provider.force_flush(10_000)
    provider.shutdown()
    ((path, headers, body),) = stub.posts
    assert path == "/v1/traces"
    assert headers["content-type"] == "application/x-protobuf"
    assert b"docpipe-worker" in body and b"hello" in body


def test_metrics_server_closes_a_connection_that_stops_sending() -> None:
    server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=0, timeout_seconds=0.2)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # the headers never end
            assert sock.recv(1024) == b""
    finally:
        server.close()


def test_metrics_server_cuts_off_a_request_that_trickles_in() -> None:
    server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=0, timeout_seconds=0.2)
    slow = b"GET /metrics HTTP/1.1\r\nX-Slow: " + b"a" * 600 + b"\r\n\r\n"
    try:
        sent = bytes_sent_before_closed("127.0.0.1", server.port, slow, every_s=0.05)
        assert sent < len(slow)
        # It goes on serving.
        with urllib.request.urlopen(server.url, timeout=10) as response:
            assert response.status == 200
    finally:
        server.close()


def test_a_metrics_server_with_a_token_answers_only_scrapes_that_carry_it() -> None:
    registry = CollectorRegistry()
    Counter("docpipe_things", "things", registry=registry).inc()
    server = MetricsServer(registry, host="127.0.0.1", port=0, token="scrape-token")
    try:
        for offered in (None, "Bearer wrong", "Basic scrape-token", "scrape-token"):
            request = urllib.request.Request(server.url)
            if offered is not None:
                request.add_header("Authorization", offered)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=10)
            assert refused.value.code == 401, offered
            assert refused.value.headers["WWW-Authenticate"] == "Bearer"
            assert b"docpipe_things" not in refused.value.read()
        request = urllib.request.Request(server.url)
        request.add_header("Authorization", "Bearer scrape-token")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert "docpipe_things_total 1.0" in response.read().decode()
    finally:
        server.close()
