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
import math
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pipeline.checkpoint import Checkpoint
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
from pipeline.report import PageSummary, build_report
from pipeline.results import (
    ResultConflictError,
    ResultStore,
    chunk_bytes,
    chunk_key,
    to_json_bytes,
)
from pipeline.spool import ObjectChangedError, ObjectMissingError, download, head

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from temporalio.client import Client

log = logging.getLogger(__name__)
# Spans of the work inside activities; Temporal's interceptor makes the activity spans.
_tracer = trace.get_tracer("docpipe.pipeline")

# Error types the workflow turns into a report instead of a retry.
OBJECT_MISSING = "object_missing"
OBJECT_CHANGED = "object_changed"
TOO_LARGE = "too_large"
UNREADABLE = "unreadable"


@contextlib.asynccontextmanager
async def _heartbeating(every_s: float = 10.0) -> AsyncIterator[None]:
    """Heartbeat while the block runs, so that a dead worker is noticed quickly."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every_s)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _gone(exc: Exception) -> ApplicationError:
    kind = OBJECT_MISSING if isinstance(exc, ObjectMissingError) else OBJECT_CHANGED
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
            async with _heartbeating():
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
                    TOO_LARGE, f"{size} bytes; the limit is {self._max_bytes}", size=size
                )
            async with self._spooled(document) as spool:
                facts = await self.pool.inspect(spool.path)
                spool.keep = facts.problem is None and facts.page_count > 0
        except (ObjectMissingError, ObjectChangedError) as exc:
            kind = OBJECT_MISSING if isinstance(exc, ObjectMissingError) else OBJECT_CHANGED
            return problem(kind, str(exc))
        except (InspectTimeoutError, ParserCrashedError) as exc:
            return problem(UNREADABLE, str(exc), size=size)
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
        """Check every page, chunk by chunk, resuming from the heartbeat checkpoint.

        A chunk is durable in S3 before the checkpoint moves past it, so a crash loses at
        most the chunks in flight; redoing them rewrites identical bytes. Cancelling the
        attempt kills the parser processes, so nothing goes on parsing the document.
        """
        with self.metrics.in_flight.labels("check_pages").track_inprogress():
            return await self._check_pages(input)

    async def _check_pages(self, input: CheckPagesInput) -> CheckPagesResult:
        info = activity.info()
        store = ResultStore(self._s3, input.results_bucket)
        resumed = Checkpoint.from_details(info.heartbeat_details, input.page_count)
        checkpoint = resumed or Checkpoint.start(input.chunk_pages)
        total_chunks = math.ceil(input.page_count / checkpoint.chunk_pages)
        first_page = checkpoint.next_page
        log.info(
            "checking %s pages %d-%d (attempt %d%s)",
            input.document.document_id,
            first_page,
            input.page_count,
            info.attempt,
            ", resumed from its checkpoint" if resumed else "",
            extra=_ids(input.document.document_id),
        )
        if resumed:
            self.metrics.resumes.inc()
        activity.heartbeat(checkpoint.to_details())
        signals = _ProgressSignals(
            self._client,
            page_count=input.page_count,
            attempt=info.attempt,
            first_page=first_page,
            min_interval_s=self._progress_interval_s,
        )
        try:
            async with self._spooled(input.document) as spool:
                run = _ChunkRun(
                    self.pool,
                    spool.path,
                    input,
                    store,
                    checkpoint,
                    total_chunks,
                    metrics=self.metrics,
                    on_advance=signals.advanced,
                )
                try:
                    checkpoint = await run.run()
                except asyncio.CancelledError:
                    # Cancelled (or the worker gave up waiting at shutdown): no parser
                    # process may go on with this document.
                    self.pool.restart()
                    raise
        except (ObjectMissingError, ObjectChangedError) as exc:
            raise _gone(exc) from exc
        finally:
            await signals.close()
        return CheckPagesResult(
            pages_checked=input.page_count,
            chunks=checkpoint.chunks,
            chunk_pages=checkpoint.chunk_pages,
            first_page_this_attempt=first_page,
            attempt=info.attempt,
            summary=_bounded_state(run.summary),
        )

    @activity.defn(name="finalize")
    async def finalize(self, input: FinalizeInput) -> CheckSummary:
        """Fold the chunk files into ``report.json`` and write it exactly once.

        The report's bytes depend only on the input and the chunk files, so a retried or
        a racing finalize writes the same object, and ``write_once`` settles the race.
        """
        workflow_id = activity.info().workflow_id
        with self.metrics.in_flight.labels("finalize").track_inprogress():
            async with _heartbeating():
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
            # Another run wrote a different report here: retrying cannot settle that.
            raise ApplicationError(str(exc), type="result_conflict", non_retryable=True) from exc
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


class _ChunkRun:
    """One attempt's chunks: check in the pool, write to S3, advance the checkpoint."""

    # Chunks per parser process that may be checked ahead of the checkpoint (a slow
    # chunk holds the checkpoint back while the others go on, up to this many).
    AHEAD_PER_PROCESS = 4
    # Pages sent to a parser process at a time (a chunk is checked in such ranges);
    # ranges shrink to MIN_RANGE_PAGES near the end of the document (see page_ranges).
    RANGE_PAGES = 25
    MIN_RANGE_PAGES = 5

    def __init__(
        self,
        pool: PagePool,
        path: Path,
        input: CheckPagesInput,
        store: ResultStore,
        checkpoint: Checkpoint,
        total_chunks: int,
        *,
        metrics: PipelineMetrics | None = None,
        on_advance: Callable[[int], None] = lambda pages_done: None,
    ) -> None:
        self._pool = pool
        self._metrics = metrics or PipelineMetrics()
        self._on_advance = on_advance
        self._path = path
        self._input = input
        self._store = store
        self.checkpoint = checkpoint
        self._total = total_chunks
        self._done: set[int] = set()
        # An attempt from page 1 folds every page as the checkpoint passes it: finalize
        # then has the summary without reading the chunks back. Pages of chunks written
        # but not yet passed wait here (at most the window's worth).
        self.summary = PageSummary() if checkpoint.chunks == 0 else None
        self._written: dict[int, list[dict[str, Any]]] = {}

    async def _parse(self, index: int) -> tuple[int, list[dict[str, Any]]]:
        chunk_pages = self.checkpoint.chunk_pages
        first = index * chunk_pages + 1
        last = min(first + chunk_pages - 1, self._input.page_count)
        with _tracer.start_as_current_span(
            "docpipe.page_range",
            attributes={"docpipe.first_page": first, "docpipe.last_page": last},
        ):
            started = time.monotonic()
            # In ranges of a few pages, each to the next free process: the processes
            # share the last chunks of a document instead of one waiting for the other.
            try:
                async with asyncio.TaskGroup() as ranges:
                    parts = [
                        ranges.create_task(self._pool.check_range(self._path, start, end))
                        for start, end in page_ranges(
                            first,
                            last,
                            page_count=self._input.page_count,
                            processes=self._pool.size,
                            most=self.RANGE_PAGES,
                            least=self.MIN_RANGE_PAGES,
                        )
                    ]
            except BaseExceptionGroup as failed:
                # The first failure, as it was: the others are cancelled siblings' echoes.
                raise failed.exceptions[0] from None
            pages = [page for part in parts for page in part.result()]
        self._metrics.record_range(pages, time.monotonic() - started)
        return index, pages

    async def _write(self, index: int, pages: list[dict[str, Any]]) -> int:
        first = index * self.checkpoint.chunk_pages + 1
        body = chunk_bytes(pages)
        with _tracer.start_as_current_span("docpipe.write_chunk"):
            try:
                written = await asyncio.to_thread(
                    self._store.write_chunk, self._input.results_prefix, first, body
                )
            except ResultConflictError as exc:
                # Two runs disagree about the same pages: retrying cannot settle it.
                raise ApplicationError(
                    str(exc), type="result_conflict", non_retryable=True
                ) from exc
        self._metrics.chunk_writes.labels("written" if written else "already_there").inc()
        if self.summary is not None:
            # Folded once the checkpoint reaches it: pages are folded in order. These are
            # the very dicts the chunk was encoded from, and JSON gives them back equal
            # (plain str, int, float, bool, list and dict values), so the folded summary
            # is the one finalize would read from the chunk files.
            self._written[index] = pages
        return index

    async def _keep_alive(self) -> None:
        # A chunk can take longer than the heartbeat timeout on a slow page; the SDK
        # throttles, so heartbeating often costs nothing.
        timeout = activity.info().heartbeat_timeout
        interval = timeout.total_seconds() / 4 if timeout else 5.0
        while True:
            await asyncio.sleep(interval)
            activity.heartbeat(self.checkpoint.to_details())

    def _advance(self) -> None:
        chunks = self.checkpoint.chunks
        while chunks in self._done:
            self._done.discard(chunks)
            if self.summary is not None:
                for page in self._written.pop(chunks):
                    self.summary.add(page)
            chunks += 1
        if chunks != self.checkpoint.chunks:
            self.checkpoint = Checkpoint(
                next_page=min(chunks * self.checkpoint.chunk_pages, self._input.page_count) + 1,
                chunks=chunks,
                chunk_pages=self.checkpoint.chunk_pages,
            )
            activity.heartbeat(self.checkpoint.to_details())
            self._on_advance(self.checkpoint.next_page - 1)

    async def run(self) -> Checkpoint:
        """Check the remaining chunks; returns the final checkpoint.

        Raises:
            ApplicationError: the worker is shutting down (retryable: the next attempt
                resumes from the checkpoint heartbeated here).
        """
        parsing: set[asyncio.Task[tuple[int, list[dict[str, Any]]]]] = set()
        writing: set[asyncio.Task[int]] = set()
        next_index = self.checkpoint.chunks
        # Chunks checked or being checked beyond the checkpoint: what a crash can cost.
        window = self.AHEAD_PER_PROCESS * self._pool.size
        heartbeat = asyncio.create_task(self._keep_alive())
        shutdown = asyncio.create_task(activity.wait_for_worker_shutdown())
        try:
            while True:
                # One chunk per parser process keeps every core busy. A checked chunk is
                # written while its process goes on with the next one, so no process
                # waits for S3.
                while (
                    next_index < self._total
                    and len(parsing) < self._pool.size
                    and next_index - self.checkpoint.chunks < window
                    and not shutdown.done()
                ):
                    parsing.add(asyncio.create_task(self._parse(next_index)))
                    next_index += 1
                if not parsing and not writing:
                    break
                waiting: set[asyncio.Future[Any]] = {*parsing, *writing}
                if not shutdown.done():
                    waiting.add(shutdown)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for parsed in [t for t in parsing if t.done()]:
                    parsing.discard(parsed)
                    writing.add(asyncio.create_task(self._write(*parsed.result())))
                for wrote in [t for t in writing if t.done()]:
                    writing.discard(wrote)
                    self._done.add(wrote.result())
                self._advance()
            if self.checkpoint.chunks < self._total:
                raise ApplicationError(
                    f"worker shutting down at page {self.checkpoint.next_page}; the next "
                    "attempt resumes there",
                    self.checkpoint.to_details(),
                    type="WorkerShutdown",
                )
        finally:
            heartbeat.cancel()
            shutdown.cancel()
            for task in (*parsing, *writing):
                task.cancel()
            await asyncio.gather(heartbeat, shutdown, *parsing, *writing, return_exceptions=True)
        return self.checkpoint


def page_ranges(
    first: int, last: int, *, page_count: int, processes: int, most: int, least: int
) -> list[tuple[int, int]]:
    """Pages ``first``..``last`` in ranges for the parser processes, ``(start, end)``.

    Ranges hold ``most`` pages while the document has plenty left; near its end each
    holds half of what is left per process, down to ``least``. The processes then finish
    the document together, instead of one checking a last whole range while the others
    wait (half a range on average: 60 ms at 25 pages); only the last pages pay for the
    extra ranges (about a millisecond each). A remainder smaller than ``least`` joins the
    range before it.
    """
    ranges = []
    start = first
    while start <= last:
        share = math.ceil((page_count - start + 1) / (2 * max(processes, 1)))
        end = start + min(most, max(least, share)) - 1
        if last - end < least:
            end = last
        ranges.append((start, end))
        start = end + 1
    return ranges


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
