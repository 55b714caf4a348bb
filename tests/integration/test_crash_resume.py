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
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from infra.clients import s3_client
from infra.clients import temporal_client
from infra.processes import ManagedProcess
from infra.processes import parser_pids
from infra.processes import pid_alive
from infra.settings import Settings
from pipeline.check.chunk_run import ChunkRun
from pipeline.check.pool import pool_size
from pipeline.check.results import chunk_key
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.crashes import assert_every_page_once
from tests.support.crashes import attempts
from tests.support.crashes import freeze_worker
from tests.support.crashes import kill_worker
from tests.support.crashes import more_chunks_than
from tests.support.crashes import stored_firsts
from tests.support.crashes import thaw_worker
from tests.support.crashes import upload
from tests.support.crashes import upload_pages
from tests.support.crashes import upload_scanned
from tests.support.crashes import wait_for_attempt
from tests.support.crashes import wait_for_retry
from tests.support.hostile import with_slow_page
from tests.support.polling import wait_for

_PAGE_CHECKED = re.compile(r"DEBUG parser\.pages: parser process \d+: page (\d+) checked")
# Written by a parser process for each page it read by OCR, as it goes.
_PAGE_OCRED = re.compile(r"DEBUG parser\.pages: parser process \d+: page (\d+) read by OCR")
DEBUG = ["--log-level", "debug"]


def _stored_pages(settings: Settings, document: DocumentRef, page_count: int) -> set[int]:
    size = settings.pipeline.chunk_pages
    return {
        page
        for first in stored_firsts(settings, document)
        for page in range(first, min(first + size, page_count + 1))
    }


def _pages_checked(worker: ManagedProcess) -> list[int]:
    """Every page this debug-logging worker's parser processes checked, as often as they
    checked it (written by them as they went, so a killed worker's count is complete)."""
    text = worker.log_path.read_text(errors="replace")
    return [int(m[1]) for m in _PAGE_CHECKED.finditer(text)]


def _pages_ocred(worker: ManagedProcess) -> list[int]:
    """Every page this debug-logging worker's parser processes read by OCR, as often as
    they did (written as they went, so a killed worker's count is complete)."""
    text = worker.log_path.read_text(errors="replace")
    return [int(m[1]) for m in _PAGE_OCRED.finditer(text)]


def _stored_results(settings: Settings, document: DocumentRef) -> list[dict[str, Any]]:
    """Every page result in the document's chunk files."""
    s3 = s3_client(settings.s3)
    prefix = document.results_prefix(settings.s3.results_prefix)
    return [
        json.loads(line)
        for first in sorted(stored_firsts(settings, document))
        for line in s3.get_object(Bucket=settings.s3.results_bucket, Key=chunk_key(prefix, first))[
            "Body"
        ]
        .read()
        .splitlines()
    ]


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
    on a machine of any speed, two thirds of the document are left for the last attempts
    (each kill leaves at most a window of 400 pages in flight: 3,000 pages are plenty).
    A worker that takes over is frozen from its start until the server hands its attempt
    out, so that the test counts the stored chunks the attempt starts from before it
    checks a page (counted late, under load, a whole attempt once ran in between).
    """
    settings, pages = default_settings, 3000
    size, processes = settings.pipeline.chunk_pages, pool_size(settings.pipeline.pool_size)
    # The heartbeat timeout passes before the server retries a killed worker's attempt.
    resume_s = settings.pipeline.heartbeat_timeout_s + 90
    document = upload_pages(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal, settings.codec)
    handle = await start_check(client, settings, document)

    workers: list[ManagedProcess] = []
    stored_at_kill: list[set[int]] = []
    for attempt, moment in enumerate(("early", "a third of the way", "after a chunk write"), 1):
        workers.append(start_component(["worker", *DEBUG], settings))
        if attempt > 1:
            freeze_worker(workers[-1])
            await wait_for_retry(handle, attempt, resume_s)
            written = len(stored_firsts(settings, document))
            thaw_worker(workers[-1])
        await wait_for_attempt(handle, attempt, resume_s)
        if moment == "a third of the way":
            wait_for(
                lambda: len(stored_firsts(settings, document)) * size >= pages // 3,
                120,
                "a third of the document to be stored",
            )
        elif moment == "after a chunk write":
            wait_for(
                functools.partial(more_chunks_than, settings, document, written),
                120,
                "a new chunk",
            )
        freeze_worker(workers[-1])
        stored_at_kill.append(_stored_pages(settings, document, pages))
        parsers = kill_worker(workers[-1])
        assert len(parsers) == processes
        assert len(stored_at_kill[-1]) < pages, f"the document was done before the {moment} kill"

    workers.append(start_component(["worker", *DEBUG], settings))
    summary = await handle.result()
    assert summary.page_count == pages
    assert [number for number, _ in attempts(workers[-1])] == [4]
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
    assert_every_page_once(settings, document, pages)
    assert os.listdir(settings.pipeline.spool_dir) == []


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_sigkilled_worker_has_pages_read_by_ocr_again_only_in_chunks_not_stored(
    default_settings: Settings, start_component: StartComponent
) -> None:
    """A scanned document, every page of it read by OCR, in six chunks. The worker is
    frozen once a chunk is stored (and before the last is), then SIGKILLed, and the next
    worker resumes in the default configuration. No page of a stored chunk is read again;
    the pages read twice are only those of chunks the killed worker had in flight; and
    each worker reads a page at most once."""
    settings = default_settings
    size, processes = settings.pipeline.chunk_pages, pool_size(settings.pipeline.pool_size)
    pages = 6 * size
    document = upload_scanned(settings, pages)
    client = await temporal_client(settings.temporal, settings.codec)
    handle = await start_check(client, settings, document)
    killed = start_component(["worker", *DEBUG], settings)
    wait_for(lambda: stored_firsts(settings, document), 300, "a chunk read by OCR stored")
    freeze_worker(killed)
    stored = _stored_pages(settings, document, pages)
    kill_worker(killed)
    assert 0 < len(stored) < pages, "the kill did not land mid-way"

    resumed = start_component(["worker", *DEBUG], settings)
    summary = await handle.result()
    assert summary.page_count == pages
    assert [number for number, _ in attempts(resumed)] == [2], "the next worker did not resume"
    first, second = _pages_ocred(killed), _pages_ocred(resumed)
    for read in (first, second):
        assert max(collections.Counter(read).values()) == 1, "a page read twice by one worker"
    assert not set(second) & stored, "pages of stored chunks read by OCR again"
    in_flight = set(first) - stored
    assert set(first) & set(second) <= in_flight
    assert len(in_flight) <= ChunkRun.AHEAD_PER_PROCESS * processes * size
    assert set(first) | set(second) == set(range(1, pages + 1))
    assert_every_page_once(settings, document, pages)
    assert {page["text_source"] for page in _stored_results(settings, document)} == {"ocr"}


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
    settings, pages = default_settings, 3000
    settings = dataclasses.replace(
        settings, pipeline=dataclasses.replace(settings.pipeline, heartbeat_timeout_s=10)
    )
    document = upload(settings, with_slow_page(pages, slow_page=5), "slow-page-5.pdf")
    # Worker A's page limit is far below what page 5 takes anywhere (seconds).
    busy = dataclasses.replace(
        settings, pipeline=dataclasses.replace(settings.pipeline, page_timeout_s=0.3)
    )
    client = await temporal_client(settings.temporal, settings.codec)
    worker_a = start_component(["worker", *DEBUG], busy)
    handle = await start_check(client, settings, document)
    wait_for(lambda: 1 in stored_firsts(settings, document), 120, "the first chunk")
    kill_worker(worker_a)
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
    assert_every_page_once(settings, document, pages)
    assert [number for number, _ in attempts(worker_b)] == [2], "worker B did not resume"
    assert len(set(_pages_checked(worker_b))) >= pages // 2
    assert "result_conflict" not in worker_b.log_path.read_text()


async def test_killed_parser_process_costs_only_its_range(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings, pages = default_settings, 1200
    document = upload_pages(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal, settings.codec)
    worker = start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    wait_for(lambda: len(stored_firsts(settings, document)) >= 4, 90, "4 chunks")
    victim = sorted(parser_pids(worker.pid))[0]
    os.kill(victim, signal.SIGKILL)
    summary = await handle.result()
    assert summary.page_count == pages
    progress = await handle.query("progress")
    assert progress["attempt"] == 1, "the activity itself must not have failed"
    assert_every_page_once(settings, document, pages)
    assert worker.alive


@pytest.mark.slow
async def test_sigterm_exits_within_the_timeout_and_the_next_worker_goes_on(
    default_settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings, pages = default_settings, 3000
    graceful_s = settings.pipeline.graceful_shutdown_s
    document = upload_pages(settings, pages, tmp_path)
    client = await temporal_client(settings.temporal, settings.codec)
    first = start_component(["worker"], settings)
    handle = await start_check(client, settings, document)
    wait_for(lambda: len(stored_firsts(settings, document)) >= 6, 90, "6 chunks")
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
    ((number, first_page),) = attempts(second)
    assert number == 2
    assert first_page == min(set(range(1, pages + 1)) - stored)
    assert not set(_pages_checked(second)) & stored
    assert_every_page_once(settings, document, pages)
