"""Metrics and traces of real runs: both /metrics endpoints, and one trace per event."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from consumers.intake import UploadIntake
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.ports import free_ports
from infra.settings import Settings
from infra.telemetry import tracing_interceptors
from pipeline.models import CheckSummary
from tests.conftest import StartComponent
from tests.support.intake import Message
from tests.support.intake import native_event
from tests.support.intake import publish
from tests.support.intake import upload
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from workers.worker import build_workers
from workers.worker import document_activities
from workers.worker import result_publisher

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(port: int) -> Samples | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= set(lbls))


async def _scraped(port: int) -> Samples:
    async def ready() -> Samples | None:
        return await asyncio.to_thread(_scrape, port)

    return await async_wait_for(ready, 30, f"metrics on port {port}")


async def _result(client: Client, workflow_id: str) -> CheckSummary:
    """The check's result, once the consumer has started it and it has finished."""

    async def finished() -> CheckSummary | None:
        handle = client.get_workflow_handle(workflow_id, result_type=CheckSummary)
        try:
            summary: CheckSummary = await handle.result()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None  # not started yet
            raise
        return summary

    return await async_wait_for(finished, 60, f"the check {workflow_id}")


async def test_metrics_endpoints_count_a_run(
    settings: Settings, start_component: StartComponent
) -> None:
    worker_port, consumer_port = free_ports(2)

    def serving(port: int) -> Settings:
        telemetry = dataclasses.replace(
            settings.telemetry, metrics_port=port, metrics_host="127.0.0.1"
        )
        return dataclasses.replace(settings, telemetry=telemetry)

    start_component(["worker"], serving(worker_port))
    start_component(["consume"], serving(consumer_port))
    worker_before = await _scraped(worker_port)
    consumer_before = await _scraped(consumer_port)

    run = uuid.uuid4().hex[:8]
    review = upload(settings, f"metrics/{run}/blank.pdf", make_pdf(["text", "blank", "text"]))
    passed = upload(settings, f"metrics/{run}/plain.pdf", make_pdf(["text", "text"]))
    await publish(
        settings,
        [
            Message(native_event(review)),
            Message(native_event(passed)),
            Message(native_event(review)),  # a duplicate: deduped
            Message(b"{not json"),  # dead-lettered
        ],
    )
    client = await temporal_client(settings.temporal, settings.codec)
    for document in (review, passed):
        await _result(client, document.workflow_id)

    async def consumer_done() -> Samples | None:
        samples = await asyncio.to_thread(_scrape, consumer_port)
        if samples is None or _value(samples, "docpipe_intake_in_flight") != 0:
            return None
        consumed = _value(samples, "docpipe_intake_consumed_total")
        return (
            samples
            if consumed - _value(consumer_before, "docpipe_intake_consumed_total") == 4
            else None
        )

    consumer = await async_wait_for(consumer_done, 30, "the consumer's counters")

    def moved(after: Samples, before: Samples, name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved(consumer, consumer_before, "docpipe_intake_started_total") == 2
    assert moved(consumer, consumer_before, "docpipe_intake_deduped_total") == 1
    assert (
        moved(consumer, consumer_before, "docpipe_intake_dead_lettered_total", reason="not_json")
        == 1
    )
    # How old each event was when its check started: two new checks, ages >= 0.
    assert moved(consumer, consumer_before, "docpipe_event_age_seconds_count") == 2
    assert moved(consumer, consumer_before, "docpipe_event_age_seconds_sum") >= 0
    # Everything committed: no partition is behind.
    lag = {labels: v for (name, labels), v in consumer.items() if name == "docpipe_consumer_lag"}
    assert len(lag) == 3, "one lag gauge per assigned partition"

    async def caught_up() -> bool:
        samples = await asyncio.to_thread(_scrape, consumer_port) or {}
        return _total(samples, "docpipe_consumer_lag") == 0

    await async_wait_for(caught_up, 30, "the consumer's lag to reach 0")
    # The SDK's client metrics come through the same endpoint.
    # (The parser names counter samples *_total; the SDK exposes them without the suffix.)
    assert _total(consumer, "temporal_request_total", operation="StartWorkflowExecution") >= 3

    async def worker_done() -> Samples | None:
        samples = await asyncio.to_thread(_scrape, worker_port)
        if samples and moved(samples, worker_before, "docpipe_verdicts_total", verdict="pass"):
            return samples
        return None

    worker = await async_wait_for(worker_done, 30, "the worker's verdict counters")
    assert moved(worker, worker_before, "docpipe_pages_checked_total") == 5
    assert moved(worker, worker_before, "docpipe_page_check_seconds_count") == 5
    assert moved(worker, worker_before, "docpipe_chunk_writes_total", outcome="written") == 2
    assert moved(worker, worker_before, "docpipe_verdicts_total", verdict="review") == 1
    assert moved(worker, worker_before, "docpipe_verdicts_total", verdict="pass") == 1
    assert (
        moved(
            worker,
            worker_before,
            "docpipe_verdict_reasons_total",
            verdict="review",
            reason="blank_pages",
        )
        == 1
    )
    assert moved(worker, worker_before, "docpipe_check_resumes_total") == 0
    # From each upload event to its report: measured once per first check.
    assert moved(worker, worker_before, "docpipe_upload_to_report_seconds_count") == 2
    assert moved(worker, worker_before, "docpipe_upload_to_report_seconds_sum") > 0
    for step in ("check_document", "check_pages", "finalize"):
        assert _value(worker, "docpipe_documents_in_flight", step=step) == 0
    assert _total(worker, "temporal_workflow_completed_total") >= 2
    # Both documents fit in one chunk: check_document did all of each (publish may lag).
    assert _total(worker, "temporal_activity_execution_latency_count") >= 2


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans of this process, recorded in memory (the global provider is set once)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


async def test_one_trace_from_the_kafka_event_to_the_last_result_write(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    # The consumer and a worker in this process, sharing its tracer provider.
    client = await temporal_client(
        settings.temporal, settings.codec, interceptors=tracing_interceptors()
    )
    activities = document_activities(settings, client=client)
    publisher = result_publisher(settings)
    workers = build_workers(settings, client, activities, publisher=publisher)
    stop = asyncio.Event()
    intake = UploadIntake(settings, client, s3_client(settings.s3))
    tasks = [asyncio.create_task(w.run()) for w in workers]
    tasks.append(asyncio.create_task(intake.run(stop)))
    try:
        document = upload(
            settings, f"traced/{uuid.uuid4().hex[:8]}.pdf", make_pdf(["text"] * 12 + ["blank"])
        )
        trace_id, upstream_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        traceparent = f"00-{trace_id}-{upstream_span}-01"
        await publish(
            settings,
            [Message(native_event(document), headers=(("traceparent", traceparent.encode()),))],
        )
        summary = await _result(client, document.workflow_id)
        assert summary.verdict == "review"
    finally:
        stop.set()
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)
        await publisher.close()
        await asyncio.to_thread(activities.close)

    def ours() -> list[ReadableSpan]:
        return [
            s
            for s in spans.get_finished_spans()
            if s.context is not None and format(s.context.trace_id, "032x") == trace_id
        ]

    # publish_result ends after the workflow has its result; give its span a moment.
    await async_wait_for(
        lambda: asyncio.sleep(
            0, result=any(s.name == "RunActivity:publish_result" for s in ours())
        ),
        10,
        "the publish span",
    )
    traced = ours()
    names = [s.name for s in traced]
    for expected in (
        "docpipe.intake upload event",
        "StartWorkflow:DocumentCheckWorkflow",
        "RunWorkflow:DocumentCheckWorkflow",
        "RunActivity:check_document",
        "docpipe.download",
        "RunActivity:check_pages",
        "docpipe.page_range",
        "docpipe.write_chunk",
        "RunActivity:finalize",
        "docpipe.write_report",
        "RunActivity:publish_result",
    ):
        assert expected in names, f"{expected} missing from {sorted(set(names))}"
    # 13 pages in chunks of 10: two ranges, two chunk writes.
    assert names.count("docpipe.page_range") == 2 and names.count("docpipe.write_chunk") == 2

    # The report write descends, span by span, from the span that consumed the event,
    # whose parent is the upstream span named in the event's traceparent.
    by_id = {s.context.span_id: s for s in traced if s.context is not None}
    (report,) = [s for s in traced if s.name == "docpipe.write_report"]
    chain = [report.name]
    span: ReadableSpan | None = report
    while span is not None and span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span.name)
    assert chain[-1] == "docpipe.intake upload event", chain
    assert span is not None and span.parent is not None
    assert format(span.parent.span_id, "016x") == upstream_span
    assert "RunActivity:finalize" in chain and "StartWorkflow:DocumentCheckWorkflow" in chain
