"""The activities of a document check: inspect, check pages, finalize.

Each activity takes one input dataclass and returns one result dataclass. S3 calls run in
threads and PDF parsing in the parser pool, so the event loop stays free for heartbeats.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pipeline.checkpoint import Checkpoint
from pipeline.chunk_run import ChunkRun, stored_chunks
from pipeline.heartbeat import Heartbeater
from pipeline.metrics import PipelineMetrics
from pipeline.models import (
    REPORT_NAME,
    CheckPagesInput,
    CheckPagesResult,
    CheckPlan,
    CheckSummary,
    DocumentRef,
    FinalizeInput,
    InspectInput,
    InspectResult,
    PagesProgress,
)
from pipeline.policy import VerdictPolicy
from pipeline.pool import InspectTimeoutError, PagePool, ParserCrashedError, ParserLimits
from pipeline.reasons import Reason
from pipeline.report import PageSummary, build_report
from pipeline.results import ResultConflictError, ResultStore, chunk_key, to_json_bytes
from pipeline.spool import ObjectChangedError, ObjectMissingError, download, head

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from temporalio.client import Client

log = logging.getLogger(__name__)
# Spans of the work inside activities; Temporal's interceptor makes the activity spans.
_tracer = trace.get_tracer("docpipe.pipeline")


def _gone(exc: Exception) -> ApplicationError:
    kind = Reason.OBJECT_MISSING if isinstance(exc, ObjectMissingError) else Reason.OBJECT_CHANGED
    return ApplicationError(str(exc), type=kind, non_retryable=True)


class DocumentActivities:
    """Activities bound to one worker's S3 client, parser pool and settings.

    Args:
        s3: S3 client for documents and results.
        pool_size: parser processes of this worker; 0 means one per CPU core. They are
            started on first use; :meth:`close` stops them.
        chunk_pages: pages per result chunk file (a new document's layout).
        heartbeat_timeout_s: heartbeat timeout the workflow should give page checking.
        policy: the verdict policy of the checks this worker inspects (default: defaults).
        limits: time, memory and parser limits of the parser processes.
        max_document_bytes: larger objects are rejected from their HEAD, never downloaded.
        client: the worker's Temporal client: page checking signals its progress to the
            workflow with it (none: no progress signals).
        metrics: where the worker's own metrics are recorded (default: not exported).
        progress_interval_s: least time between two progress signals of one attempt.
        shelve_spools: keep an inspected document's file for its page check (only useful
            when this worker also checks pages).
    """

    # Inspected documents whose files wait for their page check, at most.
    SHELVED_DOCUMENTS = 4

    def __init__(
        self,
        *,
        s3: S3Client,
        pool_size: int = 0,
        chunk_pages: int,
        heartbeat_timeout_s: float,
        spool_dir: str | None = None,
        policy: VerdictPolicy | None = None,
        limits: ParserLimits | None = None,
        max_document_bytes: int = 512 * 1024 * 1024,
        client: Client | None = None,
        metrics: PipelineMetrics | None = None,
        progress_interval_s: float = 3.0,
        shelve_spools: bool = True,
    ) -> None:
        self._client = client
        self.metrics = metrics or PipelineMetrics()
        self._progress_interval_s = progress_interval_s
        self._s3 = self.s3 = s3
        self.pool = PagePool(pool_size, limits)
        self._max_bytes = max_document_bytes
        self._plan = CheckPlan(
            chunk_pages=chunk_pages,
            heartbeat_timeout_s=heartbeat_timeout_s,
            policy=policy or VerdictPolicy(),
        )
        self._spool_dir = spool_dir
        self._shelf = _Shelf(size=self.SHELVED_DOCUMENTS if shelve_spools else 0)

    def close(self) -> None:
        """Stop the parser processes and remove the documents kept for page checks."""
        self.pool.shutdown()
        for path in self._shelf.expired(everything=True):
            path.unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def _spooled(self, document: DocumentRef) -> AsyncIterator[_Spool]:
        """The document spooled to a local file: kept from its inspection, or downloaded.

        The file is removed on exit unless the block sets ``keep`` (and this worker checks
        pages): then it waits on the shelf for the document's page check, so that the
        check neither downloads it again nor indexes its pages again.
        """
        await self._remove(*self._shelf.expired())
        path = self._shelf.take(document)
        if path is None:
            with _tracer.start_as_current_span(
                "docpipe.download", attributes={"docpipe.bucket": document.bucket}
            ):
                path = await asyncio.to_thread(download, self._s3, document, self._spool_dir)
        spool = _Spool(path)
        try:
            yield spool
        finally:
            if spool.keep and self._shelf.size:
                await self._remove(*self._shelf.put(document, path))
            else:
                await self._remove(path)

    async def _remove(self, *paths: Path) -> None:
        for path in paths:
            # Parser processes close it first, so that its space is really freed.
            await self.pool.forget(path)
            await asyncio.to_thread(path.unlink, missing_ok=True)

    @activity.defn(name="inspect")
    async def inspect(self, input: InspectInput) -> InspectResult:
        """HEAD and fetch the exact object version, then run document-level checks."""
        with self.metrics.in_flight.labels("inspect").track_inprogress():
            async with Heartbeater():
                result = await self._inspect(input)
        log.info(
            "inspected %s: %d pages%s",
            input.document.document_id,
            result.page_count,
            f", {result.problem}" if result.problem else "",
            extra=_ids(input.document.document_id),
        )
        return result

    async def _inspect(self, input: InspectInput) -> InspectResult:
        document = input.document

        def problem(kind: str, detail: str, size: int = 0) -> InspectResult:
            return InspectResult(
                size=size,
                pdf_version=None,
                page_count=0,
                encrypted=False,
                plan=self._plan,
                problem=kind,
                problem_detail=detail,
            )

        try:
            meta = await asyncio.to_thread(head, self._s3, document)
            size = int(meta.get("ContentLength", 0))
            if size > self._max_bytes:
                return problem(
                    Reason.TOO_LARGE, f"{size} bytes; the limit is {self._max_bytes}", size=size
                )
            async with self._spooled(document) as spool:
                facts = await self.pool.inspect(spool.path)
                spool.keep = facts.problem is None and facts.page_count > 0
        except (ObjectMissingError, ObjectChangedError) as exc:
            kind = (
                Reason.OBJECT_MISSING
                if isinstance(exc, ObjectMissingError)
                else Reason.OBJECT_CHANGED
            )
            return problem(kind, str(exc))
        except (InspectTimeoutError, ParserCrashedError) as exc:
            return problem(Reason.UNREADABLE, str(exc), size=size)
        return InspectResult(
            size=int(meta.get("ContentLength", 0)),
            pdf_version=facts.pdf_version,
            page_count=facts.page_count,
            encrypted=facts.encrypted,
            plan=self._plan,
            problem=facts.problem,
            problem_detail=facts.problem_detail,
            features=facts.features,
        )

    @activity.defn(name="check_pages")
    async def check_pages(self, input: CheckPagesInput) -> CheckPagesResult:
        """Check every page not yet in a stored chunk, and fold all of them.

        The chunk files in S3 are the record of progress: an attempt takes the stored
        ones as they are (the heartbeat checkpoint only saves listing the first ones) and
        checks the rest, so a crash costs only the chunks being checked or written.
        Cancelling the attempt stops its page ranges in the parser processes, and only
        those.
        """
        with self.metrics.in_flight.labels("check_pages").track_inprogress():
            return await self._check_pages(input)

    async def _check_pages(self, input: CheckPagesInput) -> CheckPagesResult:
        info = activity.info()
        ids = _ids(input.document.document_id)
        store = ResultStore(self._s3, input.results_bucket)
        resumed = Checkpoint.from_details(info.heartbeat_details, input.page_count)
        checkpoint = resumed or Checkpoint.start(input.chunk_pages)
        async with Heartbeater(checkpoint.to_details()) as heartbeater:
            stored = await stored_chunks(store, input.results_prefix, checkpoint, input.page_count)
            signals: _ProgressSignals | None = None
            try:
                async with self._spooled(input.document) as spool:
                    run = ChunkRun(
                        self.pool,
                        spool.path,
                        input,
                        store,
                        checkpoint,
                        stored,
                        heartbeater=heartbeater,
                        metrics=self.metrics,
                        log_extra=ids,
                    )
                    log.info(
                        "checking %s pages %d-%d (attempt %d%s)",
                        input.document.document_id,
                        run.first_page,
                        input.page_count,
                        info.attempt,
                        f"; {len(stored)} of {run.total} chunks already stored" if stored else "",
                        extra=ids,
                    )
                    if stored:
                        self.metrics.resumes.inc()
                    signals = _ProgressSignals(
                        self._client,
                        page_count=input.page_count,
                        attempt=info.attempt,
                        first_page=run.first_page,
                        min_interval_s=self._progress_interval_s,
                    )
                    run.on_advance = signals.advanced
                    checkpoint = await run.run()
            except (ObjectMissingError, ObjectChangedError) as exc:
                raise _gone(exc) from exc
            finally:
                if signals is not None:
                    await signals.close()
        return CheckPagesResult(
            pages_checked=input.page_count,
            chunks=checkpoint.chunks,
            chunk_pages=checkpoint.chunk_pages,
            first_page_this_attempt=run.first_page,
            attempt=info.attempt,
            summary=_bounded_state(run.summary),
            pages_parsed=run.pages_parsed,
        )

    @activity.defn(name="finalize")
    async def finalize(self, input: FinalizeInput) -> CheckSummary:
        """Fold the chunk files into ``report.json`` and write it exactly once.

        The report's bytes depend only on the input and the chunk files, so a retried or
        a racing finalize writes the same object, and ``write_once`` settles the race.
        """
        workflow_id = activity.info().workflow_id
        with self.metrics.in_flight.labels("finalize").track_inprogress():
            async with Heartbeater():
                summary = await asyncio.to_thread(self._finalize, input, workflow_id)
        self.metrics.record_verdict(summary.verdict, summary.reasons)
        return summary

    def _finalize(self, input: FinalizeInput, workflow_id: str | None = None) -> CheckSummary:
        store = ResultStore(self._s3, input.results_bucket)
        summary = PageSummary()
        keys: list[str] = []
        pages = input.pages
        if pages is not None:
            firsts = [index * pages.chunk_pages + 1 for index in range(pages.chunks)]
            keys = [chunk_key(input.results_prefix, first) for first in firsts]
            folded = _summary_from_state(pages.summary)
            if folded is not None:
                summary = folded
            else:
                for result in store.iter_chunks(input.results_prefix, firsts):
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
            results_prefix=input.results_prefix,
            workflow_id=workflow_id,
        )
        report_key = f"{input.results_prefix}/{REPORT_NAME}"
        try:
            with _tracer.start_as_current_span("docpipe.write_report"):
                store.write_once(report_key, to_json_bytes(report), "application/json")
        except ResultConflictError as exc:
            # Something other than this check wrote a report here (the report's bytes
            # follow from the chunk files and the check's inputs): retrying cannot help.
            raise ApplicationError(
                f"{exc}: it was not written by this check. Move it away, or check the "
                "document again with `docpipe reprocess`, which writes under a new prefix.",
                {"attempt": activity.info().attempt},
                type="result_conflict",
                non_retryable=True,
            ) from exc
        verdict = report["verdict"]
        log.info(
            "report for %s: %s %s",
            input.document.document_id,
            verdict["verdict"],
            verdict["reasons"],
            extra={"document_id": input.document.document_id, "workflow_id": workflow_id},
        )
        return CheckSummary(
            document_id=input.document.document_id,
            verdict=verdict["verdict"],
            reasons=list(verdict["reasons"]),
            page_count=input.inspection.page_count,
            report_bucket=input.results_bucket,
            report_key=report_key,
        )


@dataclasses.dataclass
class _Spool:
    path: Path
    keep: bool = False


class _Shelf:
    """Spooled files of inspected documents, waiting for their page check on this worker.

    Page checks usually follow their inspection on the same worker within a second; a
    check that runs elsewhere (or never) leaves its file here until it is pushed out by
    newer ones or waited ``linger_s``.
    """

    def __init__(self, size: int, linger_s: float = 120.0) -> None:
        self.size = size
        self._linger_s = linger_s
        self._files: collections.OrderedDict[DocumentRef, tuple[Path, float]] = (
            collections.OrderedDict()
        )

    def take(self, document: DocumentRef) -> Path | None:
        """The document's file, now the caller's to remove; None if not kept here."""
        kept = self._files.pop(document, None)
        return kept[0] if kept else None

    def put(self, document: DocumentRef, path: Path) -> list[Path]:
        """Keep ``path`` for the document; returns the files pushed out, to remove."""
        previous = self._files.pop(document, None)
        self._files[document] = (path, time.monotonic())
        pushed = [previous[0]] if previous else []
        while len(self._files) > self.size:
            pushed.append(self._files.popitem(last=False)[1][0])
        return pushed

    def expired(self, *, everything: bool = False) -> list[Path]:
        """Forget the files kept longer than the linger time; returns them, to remove."""
        now = time.monotonic()
        old = [
            key
            for key, (_, since) in self._files.items()
            if everything or now - since >= self._linger_s
        ]
        return [self._files.pop(key)[0] for key in old]


# Larger folded summaries (many listed pages, hosts, samples) stay out of the history:
# finalize reads the chunks instead.
MAX_SUMMARY_BYTES = 64 * 1024


def _bounded_state(summary: PageSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    state = summary.to_state()
    return state if len(to_json_bytes(state)) <= MAX_SUMMARY_BYTES else None


def _summary_from_state(state: dict[str, Any] | None) -> PageSummary | None:
    if state is None:
        return None
    try:
        return PageSummary.from_state(state)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("unusable page summary (%r): reading the chunks instead", exc)
        return None


def _ids(document_id: str) -> dict[str, Any]:
    """Log fields of the activity's check: its document and workflow IDs."""
    return {"document_id": document_id, "workflow_id": activity.info().workflow_id}


class _ProgressSignals:
    """Signals ``pages_progress`` to the workflow while pages are checked.

    At most once per 5% of the pages and per ``min_interval_s`` (plus once when a retried
    attempt starts), so at most 20 signals per attempt, whatever the page count: the
    workflow history stays bounded. Fast documents send none. One signal is in flight at
    a time, and a failed signal is only logged: progress never fails a check.
    """

    STEPS = 20

    def __init__(
        self,
        client: Client | None,
        *,
        page_count: int,
        attempt: int,
        first_page: int,
        min_interval_s: float,
    ) -> None:
        info = activity.info()
        self._handle = (
            client.get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
            if client is not None and info.workflow_id
            else None
        )
        self._page_count = max(page_count, 1)
        self._attempt = attempt
        self._first_page = first_page
        self._min_interval_s = min_interval_s
        self._step = (first_page - 1) * self.STEPS // self._page_count
        self._last = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        if attempt > 1:
            # A retried attempt says at once where it resumed.
            self._send(first_page - 1)

    def advanced(self, pages_done: int) -> None:
        """The checkpoint moved: ``pages_done`` pages from page 1 are durable."""
        if self._handle is None or pages_done >= self._page_count:
            return  # the activity's result reports the last pages
        step = pages_done * self.STEPS // self._page_count
        now = time.monotonic()
        if step <= self._step or now - self._last < self._min_interval_s:
            return
        if self._task is not None and not self._task.done():
            return
        self._step, self._last = step, now
        self._send(pages_done)

    def _send(self, pages_done: int) -> None:
        if self._handle is None:
            return
        update = PagesProgress(
            pages_checked=pages_done, attempt=self._attempt, resumed_from_page=self._first_page
        )
        self._task = asyncio.create_task(self._signal(update))

    async def _signal(self, update: PagesProgress) -> None:
        assert self._handle is not None
        try:
            await self._handle.signal("pages_progress", update)
        except Exception as exc:
            log.debug("progress signal to %s failed: %r", self._handle.id, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
