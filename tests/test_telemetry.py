"""Operators' view without a server: labels, queries, metrics, progress signals, logs, OTLP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import ActivityEnvironment

from consumers.intake import IntakeCounters
from consumers.metrics import IntakeCollector
from consumers.tracing import trace_carrier
from infra.app.lookups import workflow_id_of
from infra.app.status_view import list_query, parse_since
from infra.settings import SettingsError, TelemetrySettings, load_settings
from infra.telemetry import (
    JsonFormatter,
    MetricsServer,
    TextFormatter,
    otlp_tracer_provider,
    otlp_traces_url,
)
from pipeline.labels import object_key_value, static_details, static_summary
from pipeline.metrics import PipelineMetrics
from pipeline.models import CheckRequest, DocumentRef, PagesProgress
from pipeline.progress import ProgressSignals

DOCUMENT = DocumentRef(bucket="documents", key="hr/salary of j.doe.pdf", version_id="v1", size=9)


def _request(hashed: bool) -> CheckRequest:
    return CheckRequest(
        document=DOCUMENT,
        results_bucket="results",
        results_prefix=DOCUMENT.results_prefix("results"),
        hash_object_key=hashed,
    )


def test_labels_name_the_document_or_hide_its_key() -> None:
    assert object_key_value(DOCUMENT.key, False) == DOCUMENT.key
    hashed = object_key_value(DOCUMENT.key, True)
    assert hashed.startswith("sha256:") and len(hashed) == 7 + 64
    assert static_summary(_request(False)) == f"docpipe check of {DOCUMENT.document_id}"
    assert "s3://results/results/documents/hr/salary" in static_details(_request(False))
    for text in (static_summary(_request(True)), static_details(_request(True))):
        assert "salary" not in text and "documents/" in text
    assert object_key_value("k" * 5000, False) == "k" * 2000


def test_list_query_combines_filters_and_quotes_values() -> None:
    since = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    query = list_query(status="review", bucket="docs", since=since, key="it's.pdf")
    assert query == (
        "WorkflowType = 'DocumentCheckWorkflow' AND DocpipeStatus = 'review' AND "
        "DocpipeBucket = 'docs' AND DocpipeObjectKey = 'it''s.pdf' AND "
        "StartTime >= '2026-05-01T12:30:00Z'"
    )
    hashed = list_query(key="a.pdf", hash_keys=True)
    assert hashed.endswith(f"DocpipeObjectKey = '{object_key_value('a.pdf', True)}'")


def test_since_takes_durations_and_times() -> None:
    now = datetime(2026, 5, 2, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 5, 1, 22, 30, tzinfo=UTC)
    assert parse_since("2d", now) == datetime(2026, 4, 30, tzinfo=UTC)
    assert parse_since("2026-04-01", now) == datetime(2026, 4, 1, tzinfo=UTC)
    assert parse_since("2026-04-01T10:00:00+02:00", now).hour == 10
    with pytest.raises(ValueError):
        parse_since("yesterday", now)


def test_status_takes_workflow_or_document_ids() -> None:
    assert workflow_id_of("docpipe/documents/a.pdf@v1") == "docpipe/documents/a.pdf@v1"
    assert workflow_id_of("documents/a.pdf@v1") == "docpipe/documents/a.pdf@v1"
    with pytest.raises(LookupError, match="give a workflow ID"):
        workflow_id_of("a.pdf")


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


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_intake_counters_are_read_at_scrape_time() -> None:
    @dataclasses.dataclass
    class Intake:
        counters: IntakeCounters
        in_flight: int = 0

    intake = Intake(IntakeCounters())
    registry = CollectorRegistry()
    registry.register(IntakeCollector(intake))
    intake.counters.consumed, intake.counters.started, intake.counters.deduped = 5, 3, 1
    intake.counters.dead_lettered = 1
    intake.counters.by_reason["not_json"] = 1
    intake.in_flight = 2
    from prometheus_client import generate_latest

    samples = _samples(generate_latest(registry).decode())
    assert samples[("docpipe_intake_consumed_total", ())] == 5
    assert samples[("docpipe_intake_started_total", ())] == 3
    assert samples[("docpipe_intake_deduped_total", ())] == 1
    assert samples[("docpipe_intake_dead_lettered_total", (("reason", "not_json"),))] == 1
    assert samples[("docpipe_intake_in_flight", ())] == 2


def test_pipeline_metrics_count_pages_errors_and_verdicts() -> None:
    metrics = PipelineMetrics()
    pages: list[dict[str, object]] = [
        {"page": 1},
        {"page": 2, "error_type": "timeout"},
        {"page": 3, "error_type": None},
    ]
    metrics.record_range(pages, 0.3)
    metrics.record_verdict("review", ["blank_pages", "needs_ocr"])
    from prometheus_client import generate_latest

    samples = _samples(generate_latest(metrics.registry).decode())
    assert samples[("docpipe_pages_checked_total", ())] == 3
    assert samples[("docpipe_page_check_seconds_count", ())] == 3
    assert samples[("docpipe_page_check_seconds_sum", ())] == pytest.approx(0.3)
    assert samples[("docpipe_page_errors_total", (("error_type", "timeout"),))] == 1
    assert samples[("docpipe_verdicts_total", (("verdict", "review"),))] == 1
    reasons = (("reason", "needs_ocr"), ("verdict", "review"))
    assert samples[("docpipe_verdict_reasons_total", reasons)] == 1
    assert samples[("docpipe_documents_in_flight", (("step", "check_pages"),))] == 0


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
        samples = _samples(text)
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


def test_trace_headers_of_a_kafka_record() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = [("traceparent", parent.encode()), ("other", b"x"), ("tracestate", b"\xff")]
    assert trace_carrier(headers) == {"traceparent": parent}
    assert trace_carrier(None) == {}


def _record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(
        "pipeline.activities", logging.INFO, "f", 1, "report for %s", ("d",), None
    )
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_log_formats_carry_the_ids() -> None:
    ids = {"document_id": "documents/a.pdf@v1", "workflow_id": "docpipe/documents/a.pdf@v1"}
    entry = json.loads(JsonFormatter().format(_record(**ids)))
    assert entry["message"] == "report for d" and entry["level"] == "info"
    assert entry["document_id"] == ids["document_id"]
    assert entry["workflow_id"] == ids["workflow_id"]
    assert "document_id" not in json.loads(JsonFormatter().format(_record()))
    text = TextFormatter().format(_record(**ids))
    assert text.endswith("report for d [workflow docpipe/documents/a.pdf@v1]")


class _FakeHandle:
    id = "wf"

    def __init__(self, sent: list[PagesProgress]) -> None:
        self._sent = sent

    async def signal(self, name: str, update: PagesProgress) -> None:
        assert name == "pages_progress"
        self._sent.append(update)


class _FakeClient:
    def __init__(self) -> None:
        self.sent: list[PagesProgress] = []

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None) -> Any:
        return _FakeHandle(self.sent)


async def _signals(
    client: _FakeClient | None, *, pages: int, every: int, attempt: int, first: int, interval: float
) -> None:
    signals = ProgressSignals(
        client,  # type: ignore[arg-type]
        page_count=pages,
        attempt=attempt,
        first_page=first,
        min_interval_s=interval,
    )
    for done in range(first - 1 + every, pages + every, every):
        signals.advanced(min(done, pages))
        await asyncio.sleep(0)  # let the signal in flight finish
    await signals.close()


@pytest.mark.parametrize("pages", [30, 900, 100_000])
async def test_progress_signals_are_bounded_whatever_the_page_count(pages: int) -> None:
    client = _FakeClient()
    env = ActivityEnvironment()
    every = max(1, pages // 2000)
    await env.run(_signals, client, pages=pages, every=every, attempt=1, first=1, interval=0)
    counts = [update.pages_checked for update in client.sent]
    assert len(counts) <= 19 and counts == sorted(counts)
    assert all(0 < n < pages for n in counts)
    if pages >= 900:
        assert len(counts) == 19  # one per 5% step, the last pages come with the result


async def test_progress_signals_wait_between_and_announce_a_resumed_attempt() -> None:
    env = ActivityEnvironment()
    slow = _FakeClient()
    await env.run(_signals, slow, pages=1000, every=10, attempt=1, first=1, interval=60)
    assert slow.sent == []  # a fast document sends none
    resumed = _FakeClient()
    await env.run(_signals, resumed, pages=1000, every=10, attempt=3, first=401, interval=60)
    assert resumed.sent == [PagesProgress(pages_checked=400, attempt=3, resumed_from_page=401)]
    await env.run(_signals, None, pages=1000, every=10, attempt=3, first=401, interval=0)
