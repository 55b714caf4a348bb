"""Crash-safe page checking, proven by killing real worker and parser processes."""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import signal
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from infra.clients import s3_client, temporal_client
from infra.processes import ManagedProcess
from infra.samples.generate import make_large_pdf
from infra.settings import Settings
from pipeline.models import DocumentRef
from pipeline.results import chunk_key
from tests.conftest import StartComponent
from tests.helpers import (
    async_wait_for,
    parser_pids,
    pid_alive,
    start_check,
    wait_for,
    with_pipeline,
)

CHUNK_PAGES = 25
HEARTBEAT_TIMEOUT_S = 2.0
GRACEFUL_SHUTDOWN_S = 5.0
_ATTEMPT_LINE = re.compile(r"checking \S+ pages (\d+)-(\d+) \(attempt (\d+)")


@pytest.fixture
def crash_settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_pipeline(
        settings,
        tmp_path,
        chunk_pages=CHUNK_PAGES,
        heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
        pool_size=2,
        graceful_shutdown_s=GRACEFUL_SHUTDOWN_S,
    )


def _upload(settings: Settings, pages: int, tmp_path: Path) -> DocumentRef:
    path = tmp_path / f"doc-{pages}.pdf"
    make_large_pdf(pages, path=path)
    bucket = settings.s3.documents_buckets[0]
    key = f"{settings.s3.results_prefix}/{path.name}"
    put = s3_client(settings.s3).put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"])


def _chunk_keys(settings: Settings, document: DocumentRef) -> list[str]:
    pages = (
        s3_client(settings.s3)
        .get_paginator("list_objects_v2")
        .paginate(
            Bucket=settings.s3.results_bucket,
            Prefix=f"{document.results_prefix(settings.s3.results_prefix)}/pages/",
        )
    )
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _durable_pages(settings: Settings, document: DocumentRef) -> int:
    """Pages in the contiguous run of chunk files from page 1."""
    prefix = document.results_prefix(settings.s3.results_prefix)
    written = set(_chunk_keys(settings, document))
    chunks = 0
    while chunk_key(prefix, chunks * CHUNK_PAGES + 1) in written:
        chunks += 1
    return chunks * CHUNK_PAGES


def _attempts(worker: ManagedProcess) -> list[tuple[int, int]]:
    """(attempt, first page) of every page-checking attempt this worker started."""
    text = worker.log_path.read_text(errors="replace")
    return [(int(m[3]), int(m[1])) for m in _ATTEMPT_LINE.finditer(text)]


def _assert_every_page_once(settings: Settings, document: DocumentRef, pages: int) -> None:
    s3 = s3_client(settings.s3)
    bucket = settings.s3.results_bucket
    prefix = document.results_prefix(settings.s3.results_prefix)
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/report.json")["Body"].read())
    chunk_keys = report["pages"]["chunks"]
    assert len(chunk_keys) == math.ceil(pages / CHUNK_PAGES)
    assert sorted(_chunk_keys(settings, document)) == sorted(chunk_keys)
    seen: list[int] = []
    for key in chunk_keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        seen.extend(json.loads(line)["page"] for line in body.splitlines())
    assert seen == list(range(1, pages + 1))
    assert report["checks"]["pages_checked"] == pages


def _wait_for_pages(settings: Settings, document: DocumentRef, pages: int) -> int:
    return wait_for(
        lambda: (n := _durable_pages(settings, document)) >= pages and n,
        90,
        f"{pages} durable pages",
    )


def _kill_worker(worker: ManagedProcess, how: signal.Signals = signal.SIGKILL) -> set[int]:
    parsers = parser_pids(worker.pid)
    assert parsers, "the worker has no parser processes mid-document"
    os.kill(worker.pid, how)
    worker.process.wait(timeout=60)
    wait_for(
        lambda: not [p for p in parsers if pid_alive(p)],
        5,
        f"parser processes of the {how.name}ed worker to exit",
    )
    return parsers


async def test_sigkilled_worker_resumes_from_checkpoint_twice(
    crash_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings, pages = crash_settings, 3000
    document = _upload(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal)
    handle = await start_check(client, settings, document)

    first_page, durable, window_pages = 1, 0, 0
    for attempt in (1, 2):
        worker = start_component(["worker"], settings)
        if attempt == 2:
            # The new attempt starts where the heartbeat checkpoint of the killed one was.
            started_attempts = wait_for(
                functools.partial(_attempts, worker), 30, "the second attempt to start"
            )
            ((number, first_page),) = started_attempts
            assert number == 2
            assert first_page > 1
            assert durable - (first_page - 1) <= window_pages, (durable, first_page)
            assert (first_page - 1) % CHUNK_PAGES == 0
        # The checking rate, measured once this worker is under way.
        mark = _wait_for_pages(settings, document, _durable_pages(settings, document) + 100)
        started = time.monotonic()
        durable = _wait_for_pages(settings, document, mark + 400)
        rate = (durable - mark) / (time.monotonic() - started)
        _kill_worker(worker)
        durable = _durable_pages(settings, document)
        # Redone work is bounded by what one heartbeat throttle window (0.8 x timeout)
        # checks, plus the chunks in flight; 1.5x slack for a noisy machine.
        window_pages = math.ceil(1.5 * rate * 0.8 * HEARTBEAT_TIMEOUT_S) + 2 * CHUNK_PAGES

    last = start_component(["worker"], settings)
    summary = await handle.result()
    assert summary.page_count == pages
    ((number, final_first_page),) = _attempts(last)
    assert number == 3
    assert final_first_page > first_page
    assert durable - (final_first_page - 1) <= window_pages
    progress = await handle.query("progress")
    assert progress["attempt"] == 3
    assert progress["resumed_from_page"] == final_first_page
    _assert_every_page_once(settings, document, pages)
    assert os.listdir(settings.pipeline.spool_dir) == []


async def test_killed_parser_process_costs_only_its_range(
    crash_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings, pages = crash_settings, 1200
    document = _upload(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal)
    worker = start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    _wait_for_pages(settings, document, 4 * CHUNK_PAGES)
    victim = sorted(parser_pids(worker.pid))[0]
    os.kill(victim, signal.SIGKILL)
    summary = await handle.result()
    assert summary.page_count == pages
    progress = await handle.query("progress")
    assert progress["attempt"] == 1, "the activity itself must not have failed"
    assert "parser process died on page" in worker.log_path.read_text()
    _assert_every_page_once(settings, document, pages)
    assert worker.alive


async def test_cancelled_check_stops_parsers_and_removes_its_file(
    crash_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings, pages = crash_settings, 3000
    document = _upload(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal)
    worker = start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    _wait_for_pages(settings, document, 4 * CHUNK_PAGES)
    working = parser_pids(worker.pid)
    assert len(working) == 2
    assert len(os.listdir(settings.pipeline.spool_dir)) == 1
    await handle.cancel()

    async def cancelled() -> bool:
        return (await handle.describe()).status == WorkflowExecutionStatus.CANCELED

    await async_wait_for(cancelled, 2 * HEARTBEAT_TIMEOUT_S + 10, "the workflow to be cancelled")
    # WAIT_CANCELLATION_COMPLETED: the workflow ends only after the activity did, and the
    # activity restarts the pool, so no parser process goes on with the document.
    assert not [p for p in working if pid_alive(p)]
    assert parser_pids(worker.pid) == set()
    assert os.listdir(settings.pipeline.spool_dir) == []
    assert _durable_pages(settings, document) < pages
    assert worker.alive


async def test_sigterm_exits_within_the_timeout_and_the_next_worker_resumes(
    crash_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings, pages = crash_settings, 1000
    document = _upload(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal)
    first = start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    durable = _wait_for_pages(settings, document, 6 * CHUNK_PAGES)
    parsers = parser_pids(first.pid)
    stopping = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    code = first.process.wait(timeout=GRACEFUL_SHUTDOWN_S + 20)
    assert code == 0
    assert time.monotonic() - stopping <= GRACEFUL_SHUTDOWN_S + 3
    assert not [p for p in parsers if pid_alive(p)]
    assert os.listdir(settings.pipeline.spool_dir) == []

    second = start_component(["worker"], settings)
    summary = await handle.result()
    assert summary.page_count == pages
    ((number, first_page),) = _attempts(second)
    assert number == 2
    assert first_page >= durable + 1 - 2 * CHUNK_PAGES
    _assert_every_page_once(settings, document, pages)


# What a progress signal may add to a history: the signal, the workflow task it wakes
# (scheduled, started, completed) and the upsert of DocpipePagesChecked.
_PROGRESS_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
}


async def test_history_does_not_grow_with_page_count(
    crash_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    # No time between progress signals: as many as the design allows (one per 5%).
    settings = dataclasses.replace(
        crash_settings,
        pipeline=dataclasses.replace(crash_settings.pipeline, progress_interval_s=0),
    )
    client = await temporal_client(settings.temporal)
    start_component(["worker"], settings)
    lengths, cores, signals = [], [], []
    for pages in (30, 900):
        handle = await start_check(client, settings, _upload(settings, pages, tmp_path))
        assert (await handle.result()).page_count == pages
        history = await handle.fetch_history()
        lengths.append(len(history.events))
        types = [event.event_type for event in history.events]
        cores.append([t for t in types if t not in _PROGRESS_EVENTS])
        signals.append(types.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED))
        biggest = max(len(event.SerializeToString()) for event in history.events)
        assert biggest < 256 * 1024
    # The same activities and events, whatever the page count; only progress signals
    # differ, at most 20 per attempt (one per 5% of the pages), each adding 5 events at
    # most: a history is never longer than a 30-page one's plus 100 events.
    assert cores[0] == cores[1]
    assert signals[1] <= 20, signals
    assert signals[1] > signals[0], "the 900-page check signals its progress"
    assert lengths[1] <= lengths[0] + 5 * signals[1], (lengths, signals)


async def test_page_checking_runs_on_its_own_workers(
    crash_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings = crash_settings
    client = await temporal_client(settings.temporal)
    light = start_component(["worker", "--role", "workflows"], settings)
    heavy = start_component(["worker", "--role", "pages"], settings)
    document = _upload(settings, 120, tmp_path)
    summary = await (await start_check(client, settings, document)).result()
    assert summary.page_count == 120
    assert _attempts(heavy) == [(1, 1)]
    assert _attempts(light) == []
    # finalize logs the verdict: it ran on the light worker only.
    assert "report for" in light.log_path.read_text()
    assert "report for" not in heavy.log_path.read_text()
