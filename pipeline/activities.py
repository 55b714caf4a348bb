"""The activities of a document check: inspect, check pages, finalize.

Each activity takes one input dataclass and returns one result dataclass. S3 calls run in
threads and PDF parsing in the parser pool, so the event loop stays free for heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pipeline.checkpoint import Checkpoint
from pipeline.models import (
    REPORT_NAME,
    CheckPagesInput,
    CheckPagesResult,
    CheckPlan,
    CheckSummary,
    FinalizeInput,
    InspectInput,
    InspectResult,
)
from pipeline.pool import PagePool
from pipeline.report import PageSummary, build_report, decide_verdict
from pipeline.results import ResultStore, chunk_key, to_json_bytes
from pipeline.spool import ObjectChangedError, ObjectMissingError, head, spooled

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# Error types the workflow turns into a report instead of a retry.
OBJECT_MISSING = "object_missing"
OBJECT_CHANGED = "object_changed"


def _gone(exc: Exception) -> ApplicationError:
    kind = OBJECT_MISSING if isinstance(exc, ObjectMissingError) else OBJECT_CHANGED
    return ApplicationError(str(exc), type=kind, non_retryable=True)


class DocumentActivities:
    """Activities bound to one worker's S3 client, parser pool and settings.

    Args:
        s3: S3 client for documents and results.
        pool: parser processes.
        chunk_pages: pages per result chunk file (a new document's layout).
        heartbeat_timeout_s: heartbeat timeout the workflow should give page checking.
    """

    def __init__(
        self,
        *,
        s3: S3Client,
        pool: PagePool,
        chunk_pages: int,
        heartbeat_timeout_s: float,
        spool_dir: str | None = None,
    ) -> None:
        self._s3 = s3
        self._pool = pool
        self._plan = CheckPlan(chunk_pages=chunk_pages, heartbeat_timeout_s=heartbeat_timeout_s)
        self._spool_dir = spool_dir

    @contextlib.asynccontextmanager
    async def _spooled(self, input_document: Any) -> AsyncIterator[Any]:
        # Entered and left in a thread: downloads block.
        manager = spooled(self._s3, input_document, self._spool_dir)
        path = await asyncio.to_thread(manager.__enter__)
        try:
            yield path
        finally:
            await asyncio.to_thread(manager.__exit__, None, None, None)

    @activity.defn(name="inspect")
    async def inspect(self, input: InspectInput) -> InspectResult:
        """HEAD and fetch the exact object version, then run document-level checks."""
        document = input.document
        try:
            meta = await asyncio.to_thread(head, self._s3, document)
            async with self._spooled(document) as path:
                facts = await self._pool.inspect(path)
        except (ObjectMissingError, ObjectChangedError) as exc:
            problem = OBJECT_MISSING if isinstance(exc, ObjectMissingError) else OBJECT_CHANGED
            return InspectResult(
                size=0,
                pdf_version=None,
                page_count=0,
                encrypted=False,
                plan=self._plan,
                problem=problem,
                problem_detail=str(exc),
            )
        return InspectResult(
            size=int(meta.get("ContentLength", 0)),
            pdf_version=facts.pdf_version,
            page_count=facts.page_count,
            encrypted=facts.encrypted,
            plan=self._plan,
            problem=facts.problem,
            problem_detail=facts.problem_detail,
        )

    @activity.defn(name="check_pages")
    async def check_pages(self, input: CheckPagesInput) -> CheckPagesResult:
        """Check every page, chunk by chunk, resuming from the heartbeat checkpoint.

        A chunk is durable in S3 before the checkpoint moves past it, so a crash loses at
        most the chunks in flight; redoing them rewrites identical bytes.
        """
        info = activity.info()
        store = ResultStore(self._s3, input.results_bucket)
        resumed = Checkpoint.from_details(info.heartbeat_details, input.page_count)
        checkpoint = resumed or Checkpoint.start(input.chunk_pages)
        chunk_pages = checkpoint.chunk_pages
        total_chunks = math.ceil(input.page_count / chunk_pages)
        first_page = checkpoint.next_page
        log.info(
            "checking %s pages %d-%d (attempt %d%s)",
            input.document.document_id,
            first_page,
            input.page_count,
            info.attempt,
            ", resumed from checkpoint" if resumed else "",
        )
        activity.heartbeat(checkpoint.to_details())
        try:
            async with self._spooled(input.document) as path:
                checkpoint = await self._check_chunks(path, input, store, checkpoint, total_chunks)
        except (ObjectMissingError, ObjectChangedError) as exc:
            raise _gone(exc) from exc
        return CheckPagesResult(
            pages_checked=input.page_count,
            chunks=checkpoint.chunks,
            chunk_pages=chunk_pages,
            first_page_this_attempt=first_page,
            attempt=info.attempt,
        )

    async def _check_chunks(
        self,
        path: Any,
        input: CheckPagesInput,
        store: ResultStore,
        checkpoint: Checkpoint,
        total_chunks: int,
    ) -> Checkpoint:
        chunk_pages = checkpoint.chunk_pages
        done: set[int] = set()
        state = {"checkpoint": checkpoint}

        async def one_chunk(index: int) -> int:
            first = index * chunk_pages + 1
            last = min(first + chunk_pages - 1, input.page_count)
            pages = await self._pool.check_range(path, first, last)
            await asyncio.to_thread(store.write_chunk, input.results_prefix, first, pages)
            return index

        async def keep_alive() -> None:
            # A single chunk can take longer than the heartbeat timeout on a slow page.
            timeout = activity.info().heartbeat_timeout
            interval = timeout.total_seconds() / 4 if timeout else 5.0
            while True:
                await asyncio.sleep(interval)
                activity.heartbeat(state["checkpoint"].to_details())

        pending: set[asyncio.Task[int]] = set()
        next_index = checkpoint.chunks
        heartbeat = asyncio.create_task(keep_alive())
        try:
            while next_index < total_chunks or pending:
                # One chunk per parser process keeps every core busy, and no more: chunks
                # written far ahead of the checkpoint would be redone after a crash.
                while next_index < total_chunks and len(pending) < self._pool.size:
                    pending.add(asyncio.create_task(one_chunk(next_index)))
                    next_index += 1
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    done.add(task.result())
                current = state["checkpoint"]
                chunks = current.chunks
                while chunks in done:
                    done.discard(chunks)
                    chunks += 1
                if chunks != current.chunks:
                    state["checkpoint"] = Checkpoint(
                        next_page=min(chunks * chunk_pages, input.page_count) + 1,
                        chunks=chunks,
                        chunk_pages=chunk_pages,
                    )
                    activity.heartbeat(state["checkpoint"].to_details())
        finally:
            heartbeat.cancel()
            for task in pending:
                task.cancel()
            await asyncio.gather(heartbeat, *pending, return_exceptions=True)
        return state["checkpoint"]

    @activity.defn(name="finalize")
    async def finalize(self, input: FinalizeInput) -> CheckSummary:
        """Fold the chunk files into ``report.json`` and write it exactly once."""
        return await asyncio.to_thread(self._finalize, input)

    def _finalize(self, input: FinalizeInput) -> CheckSummary:
        store = ResultStore(self._s3, input.results_bucket)
        summary = PageSummary()
        keys: list[str] = []
        pages = input.pages
        if pages is not None:
            for index in range(pages.chunks):
                first = index * pages.chunk_pages + 1
                keys.append(chunk_key(input.results_prefix, first))
                for result in store.iter_chunk(input.results_prefix, first):
                    summary.add(result)
            if summary.pages != input.inspection.page_count:
                raise ApplicationError(
                    f"chunks hold {summary.pages} pages, the document has "
                    f"{input.inspection.page_count}",
                    type="incomplete_results",
                )
        report = build_report(
            document=input.document,
            inspection=input.inspection,
            summary=summary,
            chunk_keys=keys,
            chunk_pages=pages.chunk_pages if pages else input.inspection.plan.chunk_pages,
        )
        report_key = f"{input.results_prefix}/{REPORT_NAME}"
        store.write_once(report_key, to_json_bytes(report), "application/json")
        verdict, reasons = decide_verdict(input.inspection, summary)
        log.info("report for %s: %s %s", input.document.document_id, verdict, reasons)
        return CheckSummary(
            document_id=input.document.document_id,
            verdict=verdict,
            reasons=reasons,
            page_count=input.inspection.page_count,
            report_bucket=input.results_bucket,
            report_key=report_key,
        )
