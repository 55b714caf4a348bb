"""Crash-safe page checking, proven by killing real worker and parser processes.

The crash tests run docpipe's default pipeline settings (heartbeat timeout, chunk size,
parser processes, throttle), as production does. They wait on what can be observed (chunk
keys in S3, the workflow's pending activity in ``describe()``, the process table, the
worker's log), never on how fast this machine checks pages. Workers log at debug level:
their parser processes then write a line for each page they have checked, as they go, so
the pages a killed worker had checked are known.
"""

from __future__ import annotations

import collections
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
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from infra.clients import s3_client, temporal_client
from infra.processes import ManagedProcess, parser_pids, pid_alive
from infra.settings import PipelineSettings, Settings
from pipeline.check.chunk_run import ChunkRun
from pipeline.check.results import chunk_key
from pipeline.models import CheckSummary, DocumentRef
from tests.conftest import StartComponent
from tests.support.helpers import async_wait_for, start_check, wait_for, with_pipeline
from tests.support.hostile import with_slow_page
from tests.support.pdfs import make_large_pdf

_ATTEMPT_LINE = re.compile(r"checking \S+ pages (\d+)-(\d+) \(attempt (\d+)")
_PAGE_CHECKED = re.compile(r"DEBUG parser\.pages: parser process \d+: page (\d+) checked")
DEBUG = ["--log-level", "debug"]


@pytest.fixture
def default_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The stack's settings with docpipe's default pipeline settings (own spool dir)."""
    defaults = dataclasses.asdict(PipelineSettings())
    del defaults["spool_dir"]
    return with_pipeline(settings, tmp_path, **defaults)


def _upload(settings: Settings, body: bytes, name: str) -> DocumentRef:
    bucket = settings.s3.documents_buckets[0]
    key = f"{settings.s3.results_prefix}/{name}"
    put = s3_client(settings.s3).put_object(Bucket=bucket, Key=key, Body=body)
    return DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"])


def _upload_pages(settings: Settings, pages: int, tmp_path: Path) -> DocumentRef:
    path = tmp_path / f"doc-{pages}.pdf"
    make_large_pdf(pages, path=path)
    return _upload(settings, path.read_bytes(), path.name)


def _stored_firsts(settings: Settings, document: DocumentRef) -> set[int]:
    """First pages of the chunk files stored for the document."""
    prefix = document.results_prefix(settings.s3.results_prefix)
    pages = (
        s3_client(settings.s3)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=settings.s3.results_bucket, Prefix=f"{prefix}/pages/")
    )
    names = [obj["Key"].rsplit("/", 1)[-1] for page in pages for obj in page.get("Contents", [])]
    return {int(name.split(".")[0]) for name in names}


def _more_chunks_than(settings: Settings, document: DocumentRef, chunks: int) -> bool:
    return len(_stored_firsts(settings, document)) > chunks


def _stored_pages(settings: Settings, document: DocumentRef, page_count: int) -> set[int]:
    size = settings.pipeline.chunk_pages
    return {
        page
        for first in _stored_firsts(settings, document)
        for page in range(first, min(first + size, page_count + 1))
    }


def _attempts(worker: ManagedProcess) -> list[tuple[int, int]]:
    """(attempt, first page) of every page-checking attempt this worker started."""
    text = worker.log_path.read_text(errors="replace")
    return [(int(m[3]), int(m[1])) for m in _ATTEMPT_LINE.finditer(text)]


def _pages_checked(worker: ManagedProcess) -> list[int]:
    """Every page this debug-logging worker's parser processes checked, as often as they
    checked it (written by them as they went, so a killed worker's count is complete)."""
    text = worker.log_path.read_text(errors="replace")
    return [int(m[1]) for m in _PAGE_CHECKED.finditer(text)]


def _assert_every_page_once(settings: Settings, document: DocumentRef, pages: int) -> None:
    s3 = s3_client(settings.s3)
    bucket = settings.s3.results_bucket
    prefix = document.results_prefix(settings.s3.results_prefix)
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/report.json")["Body"].read())
    chunk_keys = report["pages"]["chunks"]
    assert len(chunk_keys) == math.ceil(pages / settings.pipeline.chunk_pages)
    assert sorted(chunk_key(prefix, f) for f in _stored_firsts(settings, document)) == sorted(
        chunk_keys
    )
    seen: list[int] = []
    for key in chunk_keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        seen.extend(json.loads(line)["page"] for line in body.splitlines())
    assert seen == list(range(1, pages + 1))
    assert report["checks"]["pages_checked"] == pages


async def _page_attempt(handle: WorkflowHandle[object, CheckSummary]) -> tuple[int, bool] | None:
    """(attempt, whether it has heartbeated) of the running page check, if one runs."""
    for pending in (await handle.describe()).raw_description.pending_activities:
        if (
            pending.activity_type.name == "check_pages"
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        ):
            return pending.attempt, pending.HasField("heartbeat_details")
    return None


async def _wait_for_attempt(
    handle: WorkflowHandle[object, CheckSummary], attempt: int, timeout_s: float
) -> None:
    """Until attempt ``attempt`` of the page check runs and has sent its first heartbeat."""

    async def started() -> bool:
        return await _page_attempt(handle) == (attempt, True)

    await async_wait_for(started, timeout_s, f"page-checking attempt {attempt} to heartbeat")


async def _last_heartbeat(handle: WorkflowHandle[object, CheckSummary]) -> float | None:
    """When the server last heard a heartbeat of the running page check, if one runs."""
    for pending in (await handle.describe()).raw_description.pending_activities:
        if pending.activity_type.name == "check_pages" and pending.HasField("last_heartbeat_time"):
            return pending.last_heartbeat_time.ToDatetime().timestamp()
    return None


def _freeze_worker(worker: ManagedProcess) -> None:
    """Stop the worker and its parser processes where they are (SIGSTOP): what they have
    stored can then be looked at before they are killed, without a race against them."""
    os.kill(worker.pid, signal.SIGSTOP)
    for pid in parser_pids(worker.pid):
        os.kill(pid, signal.SIGSTOP)


def _kill_worker(worker: ManagedProcess, how: signal.Signals = signal.SIGKILL) -> set[int]:
    parsers = parser_pids(worker.pid)
    os.kill(worker.pid, how)
    worker.process.wait(timeout=60)
    wait_for(
        lambda: not [p for p in parsers if pid_alive(p)],
        5,
        f"parser processes of the {how.name}ed worker to exit",
    )
    return parsers


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_sigkilled_worker_checks_again_only_what_it_had_in_flight(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    """Three SIGKILLs at three moments of an attempt: at its first heartbeat, a third of
    the way through the document, and right after a chunk write. After each, the next
    attempt checks no page that was in a stored chunk: the pages checked twice are only
    those the killed worker had in its parser processes and not yet stored.

    Each moment is seen in S3 or in the server's state, and the worker is frozen (SIGSTOP)
    as soon as it is seen, so that it cannot get ahead of the test while the test looks:
    on a machine of any speed, two thirds of the document are left for the last attempts.
    """
    settings, pages = default_settings, 6000
    size, processes = settings.pipeline.chunk_pages, 2
    # The heartbeat timeout passes before the server retries a killed worker's attempt.
    resume_s = settings.pipeline.heartbeat_timeout_s + 90
    document = _upload_pages(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal, settings.codec)
    handle = await start_check(client, settings, document)

    workers: list[ManagedProcess] = []
    stored_at_kill: list[set[int]] = []
    for attempt, moment in enumerate(("early", "a third of the way", "after a chunk write"), 1):
        workers.append(start_component(["worker", *DEBUG], settings))
        await _wait_for_attempt(handle, attempt, resume_s)
        if moment == "a third of the way":
            wait_for(
                lambda: len(_stored_firsts(settings, document)) * size >= pages // 3,
                120,
                "a third of the document to be stored",
            )
        elif moment == "after a chunk write":
            written = len(_stored_firsts(settings, document))
            wait_for(
                functools.partial(_more_chunks_than, settings, document, written),
                120,
                "a new chunk",
            )
        _freeze_worker(workers[-1])
        stored_at_kill.append(_stored_pages(settings, document, pages))
        parsers = _kill_worker(workers[-1])
        assert len(parsers) == processes
        assert len(stored_at_kill[-1]) < pages, f"the document was done before the {moment} kill"

    workers.append(start_component(["worker", *DEBUG], settings))
    summary = await handle.result()
    assert summary.page_count == pages
    assert [number for number, _ in _attempts(workers[-1])] == [4]
    progress = await handle.query("progress")
    assert progress["attempt"] == 4

    checked = [_pages_checked(worker) for worker in workers]
    window_pages = ChunkRun.AHEAD_PER_PROCESS * processes * size
    for kill, stored in enumerate(stored_at_kill):
        killed = set(checked[kill])
        later = {page for pages_of in checked[kill + 1 :] for page in pages_of}
        assert not later & stored, f"kill {kill + 1}: pages of stored chunks checked again"
        in_flight = killed - stored
        assert later & killed <= in_flight
        assert len(in_flight) <= window_pages, (kill + 1, len(in_flight))
    counts = collections.Counter(page for pages_of in checked for page in pages_of)
    assert set(counts) == set(range(1, pages + 1))
    _assert_every_page_once(settings, document, pages)
    assert os.listdir(settings.pipeline.spool_dir) == []


@pytest.mark.slow
async def test_heartbeats_reach_the_server_within_seconds_by_default(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    """With the default 30 s heartbeat timeout, Temporal's SDK would send a heartbeat only
    every 24 s; the worker's throttle sends the moving checkpoint about once a second."""
    settings, pages = default_settings, 20_000
    document = _upload_pages(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal, settings.codec)
    start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    await _wait_for_attempt(handle, 1, 120)
    first = await _last_heartbeat(handle)
    assert first is not None

    async def a_later_heartbeat_or_the_end() -> bool:
        return await _last_heartbeat(handle) != first

    # Far less than the 24 s the SDK would wait; the check runs for seconds even on a
    # machine three times as fast as this one.
    await async_wait_for(a_later_heartbeat_or_the_end, 8, "a second heartbeat")
    assert await _page_attempt(handle) is not None, "the check ended before a second heartbeat"
    # What was asked is answered: the rest of the 20,000 pages is not waited for.
    await handle.cancel()
    await async_wait_for(functools.partial(_cancelled, handle), 60, "the check cancelled")


@pytest.mark.slow
async def test_a_timeout_stored_before_a_crash_stands_and_the_check_completes(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    """Page results can depend on load: a page that timed out on a busy worker before a
    crash may parse in time on the next. The chunk stored first stands; the crash never
    turns into a failed check (``result_conflict`` before).

    Worker A cannot run far ahead while chunk 1 waits on the slow page (at most the
    window of chunks not yet folded), and thousands of pages are left when chunk 1 is
    stored: the kill lands mid-check even on a machine three times as fast as this one,
    and worker B really resumes. Resume itself in the default configuration is the
    three-kill test's; here the server gives worker A's attempt up after 10 s, not 30."""
    settings, pages = default_settings, 6000
    settings = dataclasses.replace(
        settings, pipeline=dataclasses.replace(settings.pipeline, heartbeat_timeout_s=10)
    )
    document = _upload(settings, with_slow_page(pages, slow_page=5), "slow-page-5.pdf")
    # Worker A's page limit is far below what page 5 takes anywhere (seconds).
    busy = dataclasses.replace(
        settings, pipeline=dataclasses.replace(settings.pipeline, page_timeout_s=0.3)
    )
    client = await temporal_client(settings.temporal, settings.codec)
    worker_a = start_component(["worker", *DEBUG], busy)
    handle = await start_check(client, settings, document)
    wait_for(lambda: 1 in _stored_firsts(settings, document), 120, "the first chunk")
    _kill_worker(worker_a)
    s3 = s3_client(settings.s3)
    key = chunk_key(document.results_prefix(settings.s3.results_prefix), 1)
    first_chunk = s3.get_object(Bucket=settings.s3.results_bucket, Key=key)["Body"].read()
    page_5 = json.loads(first_chunk.splitlines()[4])
    assert page_5["page"] == 5 and page_5["error_type"] == "timeout"

    worker_b = start_component(["worker", *DEBUG], settings)
    summary = await handle.result()
    assert summary.page_count == pages
    assert "page_errors" in summary.reasons
    assert s3.get_object(Bucket=settings.s3.results_bucket, Key=key)["Body"].read() == first_chunk
    chunk_1 = set(range(1, settings.pipeline.chunk_pages + 1))
    assert not set(_pages_checked(worker_b)) & chunk_1, "chunk 1 checked again"
    report = json.loads(
        s3.get_object(Bucket=settings.s3.results_bucket, Key=summary.report_key)["Body"].read()
    )
    assert report["checks"]["page_errors"]["pages"] == [5]
    _assert_every_page_once(settings, document, pages)
    assert [number for number, _ in _attempts(worker_b)] == [2], "worker B did not resume"
    assert len(set(_pages_checked(worker_b))) >= pages // 2
    assert "result_conflict" not in worker_b.log_path.read_text()


async def test_killed_parser_process_costs_only_its_range(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings, pages = default_settings, 1200
    document = _upload_pages(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal, settings.codec)
    worker = start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    wait_for(lambda: len(_stored_firsts(settings, document)) >= 4, 90, "4 chunks")
    victim = sorted(parser_pids(worker.pid))[0]
    os.kill(victim, signal.SIGKILL)
    summary = await handle.result()
    assert summary.page_count == pages
    progress = await handle.query("progress")
    assert progress["attempt"] == 1, "the activity itself must not have failed"
    _assert_every_page_once(settings, document, pages)
    assert worker.alive


async def _cancelled(handle: WorkflowHandle[object, CheckSummary]) -> bool:
    return (await handle.describe()).status == WorkflowExecutionStatus.CANCELED


def _open_files(pids: set[int]) -> set[str]:
    """The files these processes hold open."""
    held: set[str] = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                held.add(os.readlink(fd))
            except OSError:
                continue
    return held


async def test_cancelling_one_check_stops_only_that_checks_work(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    """Two checks share one worker's parser processes; one is cancelled. The other goes on
    on the very same processes, with no page cut short (``crashed``, ``timeout``)."""
    settings = default_settings
    spool = Path(settings.pipeline.spool_dir)
    client = await temporal_client(settings.temporal, settings.codec)
    worker = start_component(["worker"], settings)
    cancelled_doc = _upload_pages(settings, 6000, tmp_path)
    other_doc = _upload_pages(settings, 3000, tmp_path)
    cancelled = await start_check(client, settings, cancelled_doc)
    other = await start_check(client, settings, other_doc)
    for document in (cancelled_doc, other_doc):
        wait_for(functools.partial(_more_chunks_than, settings, document, 0), 90, "both under way")
    parsers = parser_pids(worker.pid)
    assert len(parsers) == 2
    spooled = set(os.listdir(spool))
    assert len(spooled) == 2
    await cancelled.cancel()
    await async_wait_for(lambda: _cancelled(cancelled), 60, "the check to be cancelled")
    # The cancelled check's file is gone, and no parser process holds it open.
    (still_spooled,) = os.listdir(spool)
    gone = spool / next(iter(spooled - {still_spooled}))
    assert not [path for path in _open_files(parsers) if path.startswith(str(gone))]
    assert len(_stored_firsts(settings, cancelled_doc)) * settings.pipeline.chunk_pages < 6000
    summary = await other.result()
    assert summary.page_count == 3000
    assert "page_errors" not in summary.reasons
    assert parser_pids(worker.pid) == parsers, "the parser processes are the same ones"
    _assert_every_page_once(settings, other_doc, 3000)
    assert os.listdir(spool) == []
    assert worker.alive


@pytest.mark.slow
async def test_sigterm_exits_within_the_timeout_and_the_next_worker_goes_on(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings, pages = default_settings, 3000
    graceful_s = settings.pipeline.graceful_shutdown_s
    document = _upload_pages(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal, settings.codec)
    first = start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    wait_for(lambda: len(_stored_firsts(settings, document)) >= 6, 90, "6 chunks")
    parsers = parser_pids(first.pid)
    stopping = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    code = first.process.wait(timeout=graceful_s + 20)
    assert code == 0
    assert time.monotonic() - stopping <= graceful_s + 3
    assert not [p for p in parsers if pid_alive(p)]
    assert os.listdir(settings.pipeline.spool_dir) == []
    stored = _stored_pages(settings, document, pages)

    # WorkerShutdown is retried at once, without waiting for the heartbeat timeout.
    second = start_component(["worker", *DEBUG], settings)
    summary = await handle.result()
    assert summary.page_count == pages
    ((number, first_page),) = _attempts(second)
    assert number == 2
    assert first_page == min(set(range(1, pages + 1)) - stored)
    assert not set(_pages_checked(second)) & stored
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
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    # No time between progress signals: as many as the design allows (one per 5%).
    settings = dataclasses.replace(
        default_settings,
        pipeline=dataclasses.replace(default_settings.pipeline, progress_interval_s=0),
    )
    client = await temporal_client(settings.temporal, settings.codec)
    start_component(["worker"], settings)
    lengths, cores, signals = [], [], []
    # Both more than one chunk: a document of one chunk takes the one-activity path.
    smallest = 2 * settings.pipeline.chunk_pages
    for pages in (smallest, 900):
        handle = await start_check(client, settings, _upload_pages(settings, pages, tmp_path))
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
    # most: a history is never longer than a two-chunk one's plus 100 events.
    assert cores[0] == cores[1]
    assert signals[1] <= 20, signals
    assert signals[1] > signals[0], "the 900-page check signals its progress"
    assert lengths[1] <= lengths[0] + 5 * signals[1], (lengths, signals)


async def test_page_checking_runs_on_its_own_workers(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings = default_settings
    client: Client = await temporal_client(settings.temporal, settings.codec)
    light = start_component(["worker", "--role", "workflows"], settings)
    heavy = start_component(["worker", "--role", "pages"], settings)
    document = _upload_pages(settings, 120, tmp_path)
    summary = await (await start_check(client, settings, document)).result()
    assert summary.page_count == 120
    assert _attempts(heavy) == [(1, 1)]
    assert _attempts(light) == []
    # finalize logs the verdict: it ran on the light worker only.
    assert "report for" in light.log_path.read_text()
    assert "report for" not in heavy.log_path.read_text()
