"""What the crash and long-check tests look at: documents uploaded to the stack, the chunk
files stored for them, the page check the server runs, and what a worker logged.

They wait on what can be observed (chunk keys in S3, the workflow's pending activity in
``describe()``, the worker's log), never on how fast this machine checks pages.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import WorkflowHandle

from infra.processes import ManagedProcess
from infra.processes import parser_pids
from infra.processes import pid_alive
from infra.settings import Settings
from pipeline.check.results import chunk_key
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from tests.support.pdfs import make_large_pdf
from tests.support.polling import async_wait_for
from tests.support.polling import wait_for
from tests.support.s3 import shared_s3
from tests.support.scans import ScanStyle
from tests.support.scans import scan_pdf

_ATTEMPT_LINE = re.compile(r"checking \S+ pages (\d+)-(\d+) \(attempt (\d+)")


def upload(settings: Settings, body: bytes, name: str) -> DocumentRef:
    """Put ``body`` in the stack's documents bucket, as ``name`` under the results prefix."""
    bucket = settings.s3.documents_buckets[0]
    key = f"{settings.s3.results_prefix}/{name}"
    put = shared_s3(settings.s3).put_object(Bucket=bucket, Key=key, Body=body)
    return DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"])


def upload_pages(settings: Settings, pages: int, tmp_path: Path) -> DocumentRef:
    """Upload a generated document of ``pages`` pages."""
    path = tmp_path / f"doc-{pages}.pdf"
    make_large_pdf(pages, path=path)
    return upload(settings, path.read_bytes(), path.name)


def upload_scanned(settings: Settings, pages: int) -> DocumentRef:
    """Upload a scan of ``pages`` pages that OCR reads quickly: each a small picture (100
    dpi) of one short line, its page number (20 ms of OCR a page, against 38 ms for two
    lines: the crash test reads some 400 pages)."""
    texts = [f"Page {number}" for number in range(1, pages + 1)]
    return upload(settings, scan_pdf(texts, ScanStyle(dpi=100)), f"scanned-{pages}.pdf")


def stored_firsts(settings: Settings, document: DocumentRef) -> set[int]:
    """First pages of the chunk files stored for the document."""
    prefix = document.results_prefix(settings.s3.results_prefix)
    pages = (
        shared_s3(settings.s3)
        .get_paginator("list_objects_v2")
        .paginate(Bucket=settings.s3.results_bucket, Prefix=f"{prefix}/pages/")
    )
    names = [obj["Key"].rsplit("/", 1)[-1] for page in pages for obj in page.get("Contents", [])]
    return {int(name.split(".")[0]) for name in names}


def more_chunks_than(settings: Settings, document: DocumentRef, chunks: int) -> bool:
    return len(stored_firsts(settings, document)) > chunks


def attempts(worker: ManagedProcess) -> list[tuple[int, int]]:
    """(attempt, first page) of every page-checking attempt this worker started."""
    text = worker.log_path.read_text(errors="replace")
    return [(int(m[3]), int(m[1])) for m in _ATTEMPT_LINE.finditer(text)]


def assert_every_page_once(settings: Settings, document: DocumentRef, pages: int) -> None:
    """The report lists every chunk file stored, and they hold each page once, in order."""
    s3 = shared_s3(settings.s3)
    bucket = settings.s3.results_bucket
    prefix = document.results_prefix(settings.s3.results_prefix)
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/report.json")["Body"].read())
    chunk_keys = report["pages"]["chunks"]
    assert len(chunk_keys) == math.ceil(pages / settings.pipeline.chunk_pages)
    assert sorted(chunk_key(prefix, f) for f in stored_firsts(settings, document)) == sorted(
        chunk_keys
    )
    seen: list[int] = []
    for key in chunk_keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        seen.extend(json.loads(line)["page"] for line in body.splitlines())
    assert seen == list(range(1, pages + 1))
    assert report["checks"]["pages_checked"] == pages


async def pending_activity(
    handle: WorkflowHandle[Any, Any], name: str
) -> PendingActivityInfo | None:
    """The check's activity ``name`` as the server holds it (queued, running or waiting to
    be retried), if it has one."""
    for pending in (await handle.describe()).raw_description.pending_activities:
        if pending.activity_type.name == name:
            return pending
    return None


async def pending_page_check(handle: WorkflowHandle[Any, Any]) -> PendingActivityInfo | None:
    """The check's page check as the server holds it (queued or running), if it has one."""
    return await pending_activity(handle, "check_pages")


async def page_attempt(handle: WorkflowHandle[object, CheckSummary]) -> tuple[int, bool] | None:
    """(attempt, whether it has heartbeated) of the running page check, if one runs."""
    pending = await pending_page_check(handle)
    if pending is None or pending.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
        return None
    return pending.attempt, pending.HasField("heartbeat_details")


async def wait_for_retry(
    handle: WorkflowHandle[object, CheckSummary],
    attempt: int,
    timeout_s: float,
    activity: str = "check_pages",
) -> None:
    """Until the server has given the earlier attempts of the check's ``activity`` (its
    page check by default) up and attempt ``attempt`` is due (queued, waiting to be
    retried, or handed to a worker)."""

    async def due() -> bool:
        pending = await pending_activity(handle, activity)
        return pending is not None and pending.attempt >= attempt

    # Due only after a heartbeat timeout (30 s by default): half a second apart is plenty.
    await async_wait_for(due, timeout_s, f"{activity} attempt {attempt} to be due", every=0.5)


async def wait_for_attempt(
    handle: WorkflowHandle[object, CheckSummary], attempt: int, timeout_s: float
) -> None:
    """Until attempt ``attempt`` of the page check runs and has sent its first heartbeat."""

    async def started() -> bool:
        return await page_attempt(handle) == (attempt, True)

    await async_wait_for(started, timeout_s, f"page-checking attempt {attempt} to heartbeat")


def freeze_worker(worker: ManagedProcess) -> None:
    """Stop the worker and its parser processes where they are (SIGSTOP): what they have
    stored can then be looked at before they are killed, without a race against them."""
    os.kill(worker.pid, signal.SIGSTOP)
    for pid in parser_pids(worker.pid):
        os.kill(pid, signal.SIGSTOP)


def thaw_worker(worker: ManagedProcess) -> None:
    """Let a frozen worker and its parser processes go on (SIGCONT)."""
    for pid in parser_pids(worker.pid):
        os.kill(pid, signal.SIGCONT)
    os.kill(worker.pid, signal.SIGCONT)


def kill_worker(worker: ManagedProcess, how: signal.Signals = signal.SIGKILL) -> set[int]:
    """Kill a worker process (SIGKILL by default) and wait until it and its parser
    processes are gone; their PIDs."""
    parsers = parser_pids(worker.pid)
    os.kill(worker.pid, how)
    worker.process.wait(timeout=60)
    wait_for(
        lambda: not [p for p in parsers if pid_alive(p)],
        5,
        f"parser processes of the {how.name}ed worker to exit",
    )
    return parsers
