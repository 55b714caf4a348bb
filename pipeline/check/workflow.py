"""DocumentCheckWorkflow: check_document, then, for larger documents, check pages, finalize
and publish.

Deterministic orchestration with small state. Per-page data never enters the workflow:
activities exchange counts, and the pages themselves live in S3 chunk files.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError
from temporalio.exceptions import ApplicationError
from temporalio.exceptions import CancelledError
from temporalio.exceptions import RetryState
from temporalio.workflow import ActivityCancellationType
from temporalio.workflow import ActivityConfig

with workflow.unsafe.imports_passed_through():
    # The document facts are resolved by name when activity results are decoded in the
    # sandbox: their module must be there, not only the models that refer to it.
    import pipeline.facts  # noqa: F401
    from pipeline import search_attributes as sa
    from pipeline.check.activities import DocumentActivities
    from pipeline.check.publish import OUTLAST_OUTAGES
    from pipeline.check.publish import ResultPublisher
    from pipeline.models import WORKFLOW_NAME
    from pipeline.models import CheckDocumentInput
    from pipeline.models import CheckPagesInput
    from pipeline.models import CheckPagesResult
    from pipeline.models import CheckRequest
    from pipeline.models import CheckSummary
    from pipeline.models import InspectInput
    from pipeline.models import InspectResult
    from pipeline.models import PagesProgress
    from pipeline.models import PublishResultInput
    from pipeline.models import page_queue_for
    from pipeline.progress import PROGRESS_QUERY
    from pipeline.progress import CheckProgress
    from pipeline.progress import CheckStep
    from pipeline.reasons import Reason

from pipeline.check.review_wait import REVIEW_WAIT_PATCH
from pipeline.check.review_wait import ReviewWaitMixin

# Checks started by this code begin with ``check_document``, which sees a small document
# through to its report alone; checks that began before it (histories without this marker)
# replay the steps they began with: ``inspect`` first, and a search-attribute upsert at start.
CHECK_DOCUMENT_PATCH = "check-document"
# Checks started with an OCR queue (``CheckRequest.ocr_task_queue``) by this code leave
# the chunks that need OCR to a page check on that queue; checks without one (and those
# begun before this marker) issue the commands they always did.
OCR_QUEUE_PATCH = "ocr-queue"

# Reasons an activity reports when the object vanished, changed or went out of reach
# mid-check: the check ends with a report saying so.
_GONE = (Reason.OBJECT_MISSING, Reason.OBJECT_CHANGED, Reason.OBJECT_FORBIDDEN)


def retry_policy(max_attempts: int) -> RetryPolicy:
    """Infrastructure failures (S3 5xx, throttling, a lost worker) retry with capped
    exponential backoff: 1 s, 2 s, 4 s ... at most 1 min apart. Bad documents are results,
    never failures, so they never retry."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=max_attempts,
    )


# How long each activity may take; docs/FAILURES.md explains each value. Each is spread
# into its call with the check's own retry policy (its ``max_attempts``), but
# publish_result, which has its own.

# Download (up to the size limit) plus the document-level checks' own limit; the activity
# heartbeats while it works (its event loop never parses), so a dead worker is noticed
# within 30 s, as for page checks by default.
INSPECT = ActivityConfig(
    start_to_close_timeout=timedelta(minutes=15),
    schedule_to_close_timeout=timedelta(hours=2),
    heartbeat_timeout=timedelta(seconds=30),
)
# The same as inspect: the pages of a small document (one chunk) are a small part of it.
CHECK_DOCUMENT = ActivityConfig(
    **INSPECT,
    # A cancelled check ends only once its parser work has stopped.
    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
# Tens of thousands of pages at ~100 pages/s and core, with room for slow pages; the
# heartbeat timeout is the worker's setting (CheckPlan).
CHECK_PAGES = ActivityConfig(
    start_to_close_timeout=timedelta(hours=6),
    schedule_to_close_timeout=timedelta(hours=24),
    # A cancelled check ends only once the activity has stopped its parser processes and
    # removed its temp file.
    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
# Streams every chunk file once: minutes even for the largest documents.
FINALIZE = ActivityConfig(
    start_to_close_timeout=timedelta(minutes=30),
    schedule_to_close_timeout=timedelta(hours=2),
    heartbeat_timeout=timedelta(minutes=1),
)
# The report is written; only the announcement waits for the broker (publish.py).
PUBLISH_RESULT = OUTLAST_OUTAGES


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    message = getattr(error, "message", None) or str(error)
    # An exception raised in an activity arrives as an ApplicationError of its type's name.
    kind = error.type if isinstance(error, ApplicationError) and error.type else None
    return f"{kind or type(error).__name__}: {message}"[:500]


# Failures whose message already says what to do: results that are not this check's.
_SELF_EXPLAINED = ("result_conflict", "result_unusable")


def failure_message(
    step: CheckStep, document_id: str, error: ActivityError, max_attempts: int
) -> str:
    """What failed, how often it was tried, its root cause and what to do: the message of
    ``CheckFailed``, for an operator who reads nothing else."""
    cause = error.cause
    if error.retry_state == RetryState.NON_RETRYABLE_FAILURE:
        details = cause.details if isinstance(cause, ApplicationError) else ()
        attempt = details[0].get("attempt") if details and isinstance(details[0], dict) else None
        tried = "failed with an error that retrying cannot fix" + (
            f" (on attempt {attempt})" if attempt else ""
        )
    elif error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED:
        tried = f"failed {max_attempts} times, all the attempts it may make"
    elif error.retry_state == RetryState.TIMEOUT:
        tried = "ran out of time while retrying (its schedule-to-close timeout)"
    else:
        tried = "failed"
    if isinstance(cause, ApplicationError) and cause.type in _SELF_EXPLAINED:
        todo = "The document was not checked."
    else:
        todo = (
            "The document was not checked. Fix the cause (S3 access or availability, "
            f"worker logs), then run `docpipe reprocess {document_id}`."
        )
    return f"{step} of {document_id} {tried}: {_root_cause(error)}. {todo}"


def _object_gone(error: ActivityError) -> ApplicationError | None:
    """The activity's report that the object vanished, changed or went out of reach."""
    cause = error.cause
    return cause if isinstance(cause, ApplicationError) and cause.type in _GONE else None


@workflow.defn(name=WORKFLOW_NAME)
class DocumentCheckWorkflow(ReviewWaitMixin):
    """One document check, from upload to results event: check the document (a small one
    to its report), check pages, finalize, publish, and for a review verdict the policy
    waits for, a reviewer's decision. Deterministic and small: pages live in S3, never in
    its history."""

    def __init__(self) -> None:
        super().__init__()
        self._progress = CheckProgress(step=CheckStep.STARTING)
        # The verdict line shown once the report is written.
        self._outcome = ""

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> CheckProgress:
        """Where the check is: step, pages checked of the total, the page-checking attempt
        and the page it started at."""
        return self._progress

    @workflow.signal(name="pages_progress")
    def pages_progress(self, update: PagesProgress) -> None:
        """Progress sent by the running ``check_pages`` attempt. Late signals (the step is
        over) and stale ones (an older attempt, fewer pages) are ignored."""
        now = self._progress
        if now.step is not CheckStep.CHECK_PAGES:
            return
        if update.attempt < now.attempt or (
            update.attempt == now.attempt and update.pages_checked < now.pages_checked
        ):
            return
        self._progress = dataclasses.replace(
            now,
            pages_checked=max(0, min(update.pages_checked, now.page_count)),
            attempt=update.attempt,
            resumed_from_page=update.resumed_from_page,
        )
        workflow.upsert_search_attributes(
            [sa.PAGES_CHECKED.value_set(self._progress.pages_checked)]
        )
        self._show()

    def _enter(self, step: CheckStep) -> None:
        self._progress = dataclasses.replace(self._progress, step=step)
        self._show()

    def _show(self) -> None:
        # Current details are served by a query, not stored in history: free to update.
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        progress = self._progress
        pages = f"{progress.pages_checked} of {progress.page_count} pages"
        match progress.step:
            case CheckStep.CHECK_DOCUMENT:
                return "**Checking the document**: download, checks, and a small one's pages"
            case CheckStep.INSPECT:
                return "**Inspecting**: download and document-level checks"
            case CheckStep.CHECK_PAGES:
                percent = 100 * progress.pages_checked // max(progress.page_count, 1)
                text = f"**Checking pages**: {pages} ({percent}%)"
                if progress.attempt > 1 or progress.resumed_from_page > 1:
                    text += (
                        f", attempt {progress.attempt} resumed from page "
                        f"{progress.resumed_from_page}"
                    )
                return text
            case CheckStep.FINALIZE:
                return f"**Writing the report**: {pages} checked"
            case CheckStep.PUBLISH_RESULT | CheckStep.DONE:
                return self._outcome
        return f"**{progress.step}**"

    @workflow.run
    async def run(self, request: CheckRequest) -> CheckSummary:
        """Check the document; a bad document is a report, only infrastructure failing for
        good (or a cancel) ends the workflow otherwise (``CheckFailed``)."""
        retry = ActivityConfig(retry_policy=retry_policy(request.max_attempts))
        try:
            if workflow.patched(CHECK_DOCUMENT_PATCH):
                return await self._check_document_first(request, retry)
            return await self._inspect_first(request, retry)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                # Cancelled on purpose: the workflow ends cancelled, not failed.
                raise
            # Retries are exhausted: say what failed and what to do, not just "failed".
            step = self._progress.step
            workflow.upsert_search_attributes([sa.STATUS.value_set(sa.FAILED)])
            workflow.set_current_details(
                f"**Failed** during {step}: {_root_cause(err)}. Fix the cause, then "
                "`docpipe reprocess` it."
            )
            raise ApplicationError(
                failure_message(step, request.document.document_id, err, request.max_attempts),
                type="CheckFailed",
                non_retryable=True,
            ) from err

    async def _check_document_first(
        self, request: CheckRequest, retry: ActivityConfig
    ) -> CheckSummary:
        """Checks started by this code: ``check_document`` reports a small document (or
        one with a document-level problem) alone; a larger one goes on to its pages."""
        # Started with its search attributes (by `start_check`), the check need not set them.
        if workflow.info().typed_search_attributes.get(sa.STATUS) is None:
            workflow.upsert_search_attributes(sa.starting(request))
        self._enter(CheckStep.CHECK_DOCUMENT)
        # Asked only of checks that have an OCR queue: the others' histories stay as they
        # were, marker-free.
        ocr_elsewhere = bool(request.ocr_task_queue) and workflow.patched(OCR_QUEUE_PATCH)
        document_input = request.check_document_input(ocr_elsewhere=ocr_elsewhere)
        outcome = await workflow.execute_activity_method(
            DocumentActivities.check_document, document_input, **(CHECK_DOCUMENT | retry)
        )
        if outcome.summary is None:
            assert outcome.inspection is not None
            return await self._check_pages_and_report(
                request,
                outcome.inspection,
                retry,
                document_input=document_input,
                ocr_first=outcome.chunks_for_ocr > 0,
            )
        summary = outcome.summary
        self._progress = dataclasses.replace(
            self._progress, page_count=summary.page_count, pages_checked=outcome.pages_checked
        )
        # The page count is not in the search attributes yet: it goes with the verdict.
        self._record_outcome(request, summary, sa.PAGE_COUNT.value_set(summary.page_count))
        if outcome.published:
            return await self._after_results_event(request, summary)
        return await self._publish_result(request, summary)

    async def _inspect_first(self, request: CheckRequest, retry: ActivityConfig) -> CheckSummary:
        """Checks begun before ``check_document`` (their histories hold no patch marker):
        search attributes set at start, then inspect, check pages, finalize, publish."""
        workflow.upsert_search_attributes(sa.starting(request))
        self._enter(CheckStep.INSPECT)
        inspection = await workflow.execute_activity_method(
            DocumentActivities.inspect,
            InspectInput(document=request.document),
            **(INSPECT | retry),
        )
        return await self._check_pages_and_report(request, inspection, retry)

    async def _check_pages_and_report(
        self,
        request: CheckRequest,
        inspection: InspectResult,
        retry: ActivityConfig,
        *,
        document_input: CheckDocumentInput | None = None,
        ocr_first: bool = False,
    ) -> CheckSummary:
        """An inspected document's pages (unless a document-level problem leaves none to
        check), then its report and results event.

        Args:
            document_input: what ``check_document`` was given (default: the request's).
            ocr_first: ``check_document`` found pages to OCR in its one chunk: they go
                straight to the OCR queue.
        """
        self._progress = dataclasses.replace(self._progress, page_count=inspection.page_count)
        workflow.upsert_search_attributes([sa.PAGE_COUNT.value_set(inspection.page_count)])
        document_input = document_input or request.check_document_input()
        pages: CheckPagesResult | None = None
        if inspection.problem is None:
            self._enter(CheckStep.CHECK_PAGES)
            try:
                pages = await self._check_pages(
                    request, document_input.pages_input(inspection), inspection, retry, ocr_first
                )
            except ActivityError as err:
                gone = _object_gone(err)
                if gone is None:
                    raise
                inspection = dataclasses.replace(
                    inspection, problem=gone.type, problem_detail=gone.message
                )
            else:
                self._progress = dataclasses.replace(
                    self._progress,
                    pages_checked=pages.pages_checked,
                    attempt=pages.attempt,
                    resumed_from_page=pages.first_page_this_attempt,
                )

        self._enter(CheckStep.FINALIZE)
        summary = await workflow.execute_activity_method(
            DocumentActivities.finalize,
            document_input.finalize_input(inspection, pages),
            **(FINALIZE | retry),
        )
        self._record_outcome(request, summary)
        return await self._publish_result(request, summary)

    async def _check_pages(
        self,
        request: CheckRequest,
        pages_input: CheckPagesInput,
        inspection: InspectResult,
        retry: ActivityConfig,
        ocr_first: bool,
    ) -> CheckPagesResult:
        """Every page, on the page queue; the chunks it leaves for OCR (an input with
        ``ocr_elsewhere``) then on the OCR queue, which reads the other chunks back."""
        placement = ActivityConfig(
            task_queue=request.page_task_queue or page_queue_for(workflow.info().task_queue),
            # The worker that inspected the document fixed it (CheckPlan).
            heartbeat_timeout=timedelta(seconds=inspection.plan.heartbeat_timeout_s),
        )
        if not ocr_first:
            pages = await workflow.execute_activity_method(
                DocumentActivities.check_pages, pages_input, **(CHECK_PAGES | retry | placement)
            )
            if not pages.chunks_for_ocr:
                return pages
        # Its attempts count from 1 again: its progress must not look stale.
        self._progress = dataclasses.replace(self._progress, attempt=0)
        return await workflow.execute_activity_method(
            DocumentActivities.check_pages,
            dataclasses.replace(pages_input, ocr_elsewhere=False),
            **(CHECK_PAGES | retry | placement | ActivityConfig(task_queue=request.ocr_task_queue)),
        )

    def _record_outcome(
        self, request: CheckRequest, summary: CheckSummary, *also: SearchAttributeUpdate[Any]
    ) -> None:
        """The verdict in the search attributes (with ``also``, in the same upsert) and
        in the UI."""
        workflow.upsert_search_attributes(
            [
                sa.STATUS.value_set(sa.STATUS_BY_VERDICT[summary.verdict]),
                sa.REASONS.value_set(summary.reasons),
                sa.PAGES_CHECKED.value_set(self._progress.pages_checked),
                *also,
            ]
        )
        self._outcome = (
            f"**{summary.verdict}**"
            + (f" ({', '.join(summary.reasons)})" if summary.reasons else "")
            + f", {summary.page_count} pages"
            # The report's key holds the object key.
            + (
                ""
                if request.hash_object_key
                else f"; report `s3://{summary.report_bucket}/{summary.report_key}`"
            )
        )

    async def _publish_result(self, request: CheckRequest, summary: CheckSummary) -> CheckSummary:
        """The results event, sent by the workflow (check_document did not send it)."""
        self._enter(CheckStep.PUBLISH_RESULT)
        await workflow.execute_activity_method(
            ResultPublisher.publish_result,
            PublishResultInput(document=request.document, summary=summary),
            **PUBLISH_RESULT,
        )
        return await self._after_results_event(request, summary)

    async def _after_results_event(
        self, request: CheckRequest, summary: CheckSummary
    ) -> CheckSummary:
        """The check is reported and announced: done, unless its verdict waits for a
        reviewer (only summaries written by code that knows review ask for that). A
        deliberate re-check takes over from the document's waiting checks first."""
        await self._take_over_if_reprocessed(request)
        if summary.review_wait is not None and workflow.patched(REVIEW_WAIT_PATCH):
            self._enter(CheckStep.AWAIT_REVIEW)
            summary = await self._await_review(request, summary)
            self._outcome += f"; {self._review_line()}"
        self._enter(CheckStep.DONE)
        return summary
