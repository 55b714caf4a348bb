"""A long check on the full stack: heartbeats that reach the server within seconds, a
cancellation that stops only its own check's work, a history that does not grow with the
page count, and page checking on workers of its own.

The tests run docpipe's default pipeline settings, as production does, and wait on what
can be observed (chunk keys in S3, the workflow's state in ``describe()``, the worker's
log), never on how fast this machine checks pages.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus
from temporalio.client import WorkflowHandle

from infra.clients import temporal_client
from infra.processes import parser_pids
from infra.settings import Settings
from pipeline.check.pool import pool_size
from pipeline.models import CheckSummary
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.crashes import assert_every_page_once
from tests.support.crashes import attempts
from tests.support.crashes import more_chunks_than
from tests.support.crashes import page_attempt
from tests.support.crashes import pending_page_check
from tests.support.crashes import stored_firsts
from tests.support.crashes import upload_pages
from tests.support.crashes import wait_for_attempt
from tests.support.polling import async_wait_for
from tests.support.polling import wait_for


async def _last_heartbeat(handle: WorkflowHandle[object, CheckSummary]) -> float | None:
    """When the server last heard a heartbeat of the running page check, if one runs."""
    pending = await pending_page_check(handle)
    if pending is None or not pending.HasField("last_heartbeat_time"):
        return None
    return pending.last_heartbeat_time.ToDatetime().timestamp()


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


@pytest.mark.slow
async def test_heartbeats_reach_the_server_within_seconds_by_default(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    """With the default 30 s heartbeat timeout, Temporal's SDK would send a heartbeat only
    every 24 s; the worker's throttle sends the moving checkpoint about once a second."""
    settings, pages = default_settings, 20_000
    document = upload_pages(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal, settings.codec)
    start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    await wait_for_attempt(handle, 1, 120)
    first = await _last_heartbeat(handle)
    assert first is not None

    async def a_later_heartbeat_or_the_end() -> bool:
        return await _last_heartbeat(handle) != first

    # Far less than the 24 s the SDK would wait; the check runs for seconds even on a
    # machine three times as fast as this one.
    await async_wait_for(a_later_heartbeat_or_the_end, 8, "a second heartbeat")
    assert await page_attempt(handle) is not None, "the check ended before a second heartbeat"
    # What was asked is answered: the rest of the 20,000 pages is not waited for.
    await handle.cancel()
    await async_wait_for(functools.partial(_cancelled, handle), 60, "the check cancelled")


async def test_cancelling_one_check_stops_only_that_checks_work(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    """Two checks share one worker's parser processes; one is cancelled. The other goes on
    on the very same processes, with no page cut short (``crashed``, ``timeout``)."""
    settings = default_settings
    spool = Path(settings.pipeline.spool_dir)
    client = await temporal_client(settings.temporal, settings.codec)
    worker = start_component(["worker"], settings)
    cancelled_doc = upload_pages(settings, 6000, tmp_path)
    other_doc = upload_pages(settings, 3000, tmp_path)
    cancelled = await start_check(client, settings, cancelled_doc)
    other = await start_check(client, settings, other_doc)
    for document in (cancelled_doc, other_doc):
        wait_for(functools.partial(more_chunks_than, settings, document, 0), 90, "both under way")
    parsers = parser_pids(worker.pid)
    assert len(parsers) == pool_size(settings.pipeline.pool_size)
    spooled = set(os.listdir(spool))
    assert len(spooled) == 2
    await cancelled.cancel()
    await async_wait_for(lambda: _cancelled(cancelled), 60, "the check to be cancelled")
    # The cancelled check's file is gone, and no parser process holds it open.
    (still_spooled,) = os.listdir(spool)
    gone = spool / next(iter(spooled - {still_spooled}))
    assert not [path for path in _open_files(parsers) if path.startswith(str(gone))]
    assert len(stored_firsts(settings, cancelled_doc)) * settings.pipeline.chunk_pages < 6000
    summary = await other.result()
    assert summary.page_count == 3000
    assert "page_errors" not in summary.reasons
    assert parser_pids(worker.pid) == parsers, "the parser processes are the same ones"
    assert_every_page_once(settings, other_doc, 3000)
    assert os.listdir(spool) == []
    assert worker.alive


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
        handle = await start_check(client, settings, upload_pages(settings, pages, tmp_path))
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
    document = upload_pages(settings, 120, tmp_path)
    summary = await (await start_check(client, settings, document)).result()
    assert summary.page_count == 120
    assert attempts(heavy) == [(1, 1)]
    assert attempts(light) == []
    # finalize logs the verdict: it ran on the light worker only.
    assert "report for" in light.log_path.read_text()
    assert "report for" not in heavy.log_path.read_text()
