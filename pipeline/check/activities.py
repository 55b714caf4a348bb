"""The activities of a document check: inspect, check pages, finalize.

Each activity takes one input dataclass and returns one result dataclass. S3 calls run in
threads and PDF parsing in the parser pool, so the event loop stays free for heartbeats.
Writing the report is ``report_writer``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pipeline.check.checkpoint import Checkpoint
from pipeline.check.chunk_run import ChunkLayout
from pipeline.check.chunk_run import ChunkRun
from pipeline.check.chunk_run import stored_chunks
from pipeline.check.heartbeat import Heartbeater
from pipeline.check.metrics import PipelineMetrics
from pipeline.check.page_summary import PageSummary
from pipeline.check.pool import InspectTimeoutError
from pipeline.check.pool import PagePool
from pipeline.check.pool import ParserCrashedError
from pipeline.check.progress import ProgressReporter
from pipeline.check.progress import ProgressSignals
from pipeline.check.publish import ResultPublisher
from pipeline.check.report_writer import write_report
from pipeline.check.results import ResultStore
from pipeline.check.results import to_json_bytes
from pipeline.check.spool import ObjectUnavailableError
from pipeline.check.spool import SpooledFile
from pipeline.check.spool import Spooler
from pipeline.check.spool import head
from pipeline.models import CheckDocumentInput
from pipeline.models import CheckPagesInput
from pipeline.models import CheckPagesResult
from pipeline.models import CheckPlan
from pipeline.models import CheckSummary
from pipeline.models import DocumentOutcome
from pipeline.models import DocumentRef
from pipeline.models import FinalizeInput
from pipeline.models import InspectInput
from pipeline.models import InspectResult
from pipeline.reasons import Reason

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from pipeline.pdf.document_checks import DocumentFacts

log = logging.getLogger(__name__)


def inspection_of(facts: DocumentFacts, *, size: int, plan: CheckPlan) -> InspectResult:
    """What ``inspect`` returns for a document of ``size`` bytes, given the facts a parser
    process found in it and the plan it is to be checked by."""
    return InspectResult(
        size=size,
        pdf_version=facts.pdf_version,
        page_count=facts.page_count,
        encrypted=facts.encrypted,
        plan=plan,
        problem=facts.problem,
        problem_detail=facts.problem_detail,
        features=facts.features,
    )


def _unavailable(exc: ObjectUnavailableError) -> ApplicationError:
    """The object went away (or out of reach) mid-check: the workflow reports it."""
    return ApplicationError(str(exc), type=exc.reason, non_retryable=True)


class DocumentActivities:
    """The activities of a document check, bound to one worker's collaborators.

    Args:
        s3: S3 client for documents (HEAD) and results.
        pool: the worker's parser processes (started on first use).
        spooler: where documents are spooled, and inspected ones kept for their pages.
        plan: how this worker wants the documents it inspects checked and judged (chunk
            layout, heartbeat timeout, verdict policy): fixed per check at inspection.
        max_document_bytes: larger objects are rejected from their HEAD, never downloaded.
        progress: where page checks signal their progress (default: nowhere).
        metrics: where the worker's own metrics are recorded (default: not exported).
        publisher: sends the results event of a document ``check_document`` reports
            (default: none; the workflow's ``publish_result`` sends them all).
    """

    # How long check_document waits for the broker to take a results event; past it, or
    # on an error, the workflow sends it with publish_result, which waits out an outage.
    PUBLISH_AT_ONCE_S = 10.0

    def __init__(
        self,
        *,
        s3: S3Client,
        pool: PagePool,
        spooler: Spooler,
        plan: CheckPlan,
        max_document_bytes: int = 512 * 1024 * 1024,
        progress: ProgressReporter | None = None,
        metrics: PipelineMetrics | None = None,
        publisher: ResultPublisher | None = None,
    ) -> None:
        self.s3 = s3
        self.pool = pool
        self._spooler = spooler
        self._plan = plan
        self._max_bytes = max_document_bytes
        self._progress = progress or ProgressReporter(None)
        self.metrics = metrics or PipelineMetrics()
        self._publisher = publisher

    def close(self) -> None:
        """Stop the parser processes and remove the documents kept for page checks."""
        self.pool.shutdown()
        self._spooler.close()

    @activity.defn(name="inspect")
    async def inspect(self, input: InspectInput) -> InspectResult:
        """HEAD and fetch the exact object version, then run document-level checks."""
        with self.metrics.in_flight.labels("inspect").track_inprogress():
            async with Heartbeater():
                result = await self._inspect(input)
        _log_inspection(input.document, result)
        return result

    async def _inspect(self, input: InspectInput) -> InspectResult:
        async with self._inspected(input.document) as (result, spool):
            if spool is not None:
                # Shelved for the page check, which then neither downloads nor indexes it.
                spool.keep = result.problem is None and result.page_count > 0
            return result

    @contextlib.asynccontextmanager
    async def _inspected(
        self, document: DocumentRef
    ) -> AsyncIterator[tuple[InspectResult, SpooledFile | None]]:
        """HEAD, spool and inspect the document; the spooled file (None when the document
        was never downloaded) lasts as long as the block."""

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

        async with contextlib.AsyncExitStack() as stack:
            spool: SpooledFile | None = None
            size = 0
            try:
                meta = await asyncio.to_thread(head, self.s3, document)
                size = int(meta.get("ContentLength", 0))
                if size > self._max_bytes:
                    result = problem(
                        Reason.TOO_LARGE, f"{size} bytes; the limit is {self._max_bytes}", size
                    )
                else:
                    spool = await stack.enter_async_context(self._spooler.spooled(document))
                    facts = await self.pool.inspect(
                        spool.path, log_extra=_ids(document.document_id)
                    )
                    result = inspection_of(facts, size=size, plan=self._plan)
            except ObjectUnavailableError as exc:
                result = problem(exc.reason, str(exc))
            except (InspectTimeoutError, ParserCrashedError) as exc:
                result = problem(Reason.UNREADABLE, str(exc), size=size)
            yield result, spool

    @activity.defn(name="check_document")
    async def check_document(self, input: CheckDocumentInput) -> DocumentOutcome:
        """Inspect the document, and see a small one through to its report.

        A document that fits in one chunk, or that has a document-level problem, is
        checked and reported in this one activity: one download, no listing of chunk files
        on a first attempt, no progress signals, no further workflow steps; its results
        event is sent at once too, once the report is written (else ``publish_result``
        sends it). A larger document comes back inspected, for ``check_pages`` and
        ``finalize``, with the heartbeat and resume contract of those.
        """
        document = input.document
        with self.metrics.in_flight.labels("check_document").track_inprogress():
            async with Heartbeater() as heartbeater, self._inspected(document) as found:
                inspection, spool = found
                _log_inspection(document, inspection)
                pages = None
                if spool is not None and inspection.problem is None:
                    if inspection.page_count > inspection.plan.chunk_pages:
                        spool.keep = True
                        return DocumentOutcome(inspection=inspection)
                    pages = await self._check_one_chunk(input, inspection, spool.path, heartbeater)
                    if pages.chunks_for_ocr:
                        # Its pages are read on the OCR queue's workers, from S3.
                        return DocumentOutcome(inspection=inspection, chunks_for_ocr=1)
                summary = await asyncio.to_thread(
                    write_report,
                    self.s3,
                    input.finalize_input(inspection, pages),
                    activity.info().workflow_id,
                    metrics=self.metrics,
                    own_report_stands=True,
                )
        self.metrics.record_verdict(summary.verdict, summary.reasons)
        return DocumentOutcome(
            summary=summary,
            pages_checked=pages.pages_checked if pages else 0,
            published=await self._publish_at_once(document, summary),
        )

    async def _publish_at_once(self, document: DocumentRef, summary: CheckSummary) -> bool:
        """Send the results event now; False leaves it to the workflow's publish_result
        (a slow or unreachable broker; the event is sent at least once either way)."""
        if self._publisher is None:
            return False
        workflow_id = activity.info().workflow_id
        try:
            await asyncio.wait_for(
                self._publisher.send(document, summary, workflow_id), self.PUBLISH_AT_ONCE_S
            )
        except Exception as exc:  # publish_result retries it for as long as it takes
            log.warning(
                "the results event of %s is left to publish_result: %r",
                document.document_id,
                exc,
                extra=_ids(document.document_id),
            )
            return False
        return True

    async def _check_one_chunk(
        self,
        input: CheckDocumentInput,
        inspection: InspectResult,
        path: Path,
        heartbeater: Heartbeater,
    ) -> CheckPagesResult:
        """The pages of a document that fits in one chunk. A first attempt lists nothing:
        writing the chunk keeps whatever an earlier check stored there first."""
        layout = ChunkLayout(
            document=input.document,
            results_bucket=input.results_bucket,
            results_prefix=input.results_prefix,
            page_count=inspection.page_count,
            chunk_pages=inspection.plan.chunk_pages,
        )
        checkpoint = Checkpoint.start(layout.chunk_pages)
        attempt = activity.info().attempt
        stored = (
            await stored_chunks(self._store(layout), layout, checkpoint) if attempt > 1 else set()
        )
        run = self._chunk_run(
            layout, path, checkpoint, stored, heartbeater, ocr_elsewhere=input.ocr_elsewhere
        )
        return _pages_result(run, await run.run(), attempt)

    def _store(self, layout: ChunkLayout) -> ResultStore:
        return ResultStore(self.s3, layout.results_bucket)

    def _chunk_run(
        self,
        layout: ChunkLayout,
        path: Path,
        checkpoint: Checkpoint,
        stored: set[int],
        heartbeater: Heartbeater,
        *,
        ocr_elsewhere: bool,
    ) -> ChunkRun:
        """A page-checking run of this worker's parser processes, in ``layout``
        (``ocr_elsewhere``: leaving the chunks that need OCR to the OCR queue)."""
        return ChunkRun(
            self.pool,
            path,
            layout,
            self._store(layout),
            checkpoint,
            stored,
            heartbeater=heartbeater,
            metrics=self.metrics,
            log_extra=_ids(layout.document.document_id),
            ocr_elsewhere=ocr_elsewhere,
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
        resumed = Checkpoint.from_details(info.heartbeat_details, input.page_count)
        checkpoint = resumed or Checkpoint.start(input.chunk_pages)
        # The layout the check began with, whatever this worker is configured with.
        layout = ChunkLayout(
            document=input.document,
            results_bucket=input.results_bucket,
            results_prefix=input.results_prefix,
            page_count=input.page_count,
            chunk_pages=checkpoint.chunk_pages,
        )
        async with Heartbeater(checkpoint.to_details()) as heartbeater:
            stored = await stored_chunks(self._store(layout), layout, checkpoint)
            signals: ProgressSignals | None = None
            try:
                async with self._spooler.spooled(input.document) as spool:
                    run = self._chunk_run(
                        layout,
                        spool.path,
                        checkpoint,
                        stored,
                        heartbeater,
                        ocr_elsewhere=input.ocr_elsewhere,
                    )
                    log.info(
                        "checking %s pages %d-%d (attempt %d%s)",
                        input.document.document_id,
                        run.first_page,
                        input.page_count,
                        info.attempt,
                        f"; {len(stored)} of {layout.chunks} chunks already stored"
                        if stored
                        else "",
                        extra=_ids(input.document.document_id),
                    )
                    if stored:
                        self.metrics.resumes.inc()
                    signals = self._progress.for_attempt(
                        page_count=input.page_count,
                        attempt=info.attempt,
                        first_page=run.first_page,
                    )
                    run.on_advance = signals.advanced
                    checkpoint = await run.run()
            except ObjectUnavailableError as exc:
                raise _unavailable(exc) from exc
            finally:
                if signals is not None:
                    await signals.close()
        return _pages_result(run, checkpoint, info.attempt)

    @activity.defn(name="finalize")
    async def finalize(self, input: FinalizeInput) -> CheckSummary:
        """Fold the chunk files into ``report.json`` and write it exactly once.

        The report's bytes depend only on the input and the chunk files, so a retried or
        a racing finalize writes the same object, and ``write_once`` settles the race.
        """
        workflow_id = activity.info().workflow_id
        with self.metrics.in_flight.labels("finalize").track_inprogress():
            async with Heartbeater():
                summary = await asyncio.to_thread(
                    write_report, self.s3, input, workflow_id, metrics=self.metrics
                )
        self.metrics.record_verdict(summary.verdict, summary.reasons)
        return summary


# Larger folded summaries (many listed pages, hosts, samples) stay out of the history:
# finalize reads the chunks instead.
MAX_SUMMARY_BYTES = 64 * 1024


def _bounded_state(summary: PageSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    state = summary.to_state()
    return state if len(to_json_bytes(state)) <= MAX_SUMMARY_BYTES else None


def _pages_result(run: ChunkRun, checkpoint: Checkpoint, attempt: int) -> CheckPagesResult:
    """What a finished page-checking run hands on: counts and its bounded summary (none
    when it left chunks for the OCR queue: that queue's run folds every page)."""
    layout = run.layout
    left = sum(last - first + 1 for first, last in map(layout.pages_of, run.chunks_for_ocr))
    return CheckPagesResult(
        pages_checked=layout.page_count - left,
        chunks=checkpoint.chunks,
        chunk_pages=checkpoint.chunk_pages,
        first_page_this_attempt=run.first_page,
        attempt=attempt,
        summary=None if run.chunks_for_ocr else _bounded_state(run.summary),
        pages_parsed=run.pages_parsed,
        chunks_for_ocr=len(run.chunks_for_ocr),
    )


def _log_inspection(document: DocumentRef, result: InspectResult) -> None:
    log.info(
        "inspected %s: %d pages%s",
        document.document_id,
        result.page_count,
        f", {result.problem}" if result.problem else "",
        extra=_ids(document.document_id),
    )


def _ids(document_id: str) -> dict[str, Any]:
    """Log fields of the activity's check: its document and workflow IDs."""
    return {"document_id": document_id, "workflow_id": activity.info().workflow_id}
