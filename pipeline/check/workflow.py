"""DocumentCheckWorkflow: inspect -> check pages -> finalize.

Deterministic orchestration with small state. Per-page data never enters the workflow:
activities exchange counts, and the pages themselves live in S3 chunk files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, RetryState
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from pipeline import search_attributes as sa
    from pipeline.check.activities import DocumentActivities
    from pipeline.check.publish import ResultPublisher
    from pipeline.models import (
        WORKFLOW_NAME,
        CheckDocumentInput,
        CheckPagesInput,
        CheckPagesResult,
        CheckRequest,
        CheckSummary,
        FinalizeInput,
        InspectInput,
        InspectResult,
        PagesProgress,
        PublishResultInput,
        page_queue_for,
    )
    from pipeline.reasons import Reason

# Checks started by this code begin with ``check_document``, which sees a small document
# through to its report alone; checks that began before it (histories without this marker)
# replay the steps they began with: ``inspect`` first, and a search-attribute upsert at start.
CHECK_DOCUMENT_PATCH = "check-document"

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


@dataclass(frozen=True)
class Timeouts:
    """One activity's timeouts; docs/FAILURES.md explains each value."""

    start_to_close: timedelta
    schedule_to_close: timedelta
    heartbeat: timedelta | None = None


# Download (up to the size limit) plus the document-level checks' own limit; the activity
# heartbeats while it works (its event loop never parses), so a dead worker is noticed
# within 30 s, as for page checks by default. The same for ``check_document``: the pages
# of a small document (one chunk) are a small part of it.
INSPECT_TIMEOUTS = Timeouts(timedelta(minutes=15), timedelta(hours=2), timedelta(seconds=30))
# Tens of thousands of pages at ~100 pages/s and core, with room for slow pages; the
# heartbeat timeout is the worker's setting (CheckPlan).
CHECK_PAGES_TIMEOUTS = Timeouts(timedelta(hours=6), timedelta(hours=24))
# Streams every chunk file once: minutes even for the largest documents.
FINALIZE_TIMEOUTS = Timeouts(timedelta(minutes=30), timedelta(hours=2), timedelta(minutes=1))
# The report is written; the announcement waits out a broker outage of up to a week.
PUBLISH_TIMEOUTS = Timeouts(timedelta(minutes=2), timedelta(days=7))
PUBLISH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)


def _root_cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    message = getattr(error, "message", None) or str(error)
    # An exception raised in an activity arrives as an ApplicationError of its type's name.
    kind = error.type if isinstance(error, ApplicationError) and error.type else None
    return f"{kind or type(error).__name__}: {message}"[:500]


# Failures whose message already says what to do: results that are not this check's.
_SELF_EXPLAINED = ("result_conflict", "result_unusable")


def failure_message(step: str, document_id: str, error: ActivityError, max_attempts: int) -> str:
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


@workflow.defn(name=WORKFLOW_NAME)
class DocumentCheckWorkflow:
    """One document check, from upload to results event: inspect, check pages, finalize,
    publish. Deterministic and small: pages live in S3, never in its history."""

    def __init__(self) -> None:
        self._one_step = False
        self._step = "starting"
        self._page_count = 0
        self._pages_checked = 0
        self._pages_attempt = 0
        self._resumed_from_page = 0
        self._outcome = ""

    @workflow.query(name="progress")
    def progress(self) -> dict[str, Any]:
        """Where the check is: step, pages checked of the total, the page-checking attempt
        and the page it started at. While pages are checked, ``pages_checked`` moves with
        the attempt's ``pages_progress`` signals (every 5% of the pages at most)."""
        return {
            "step": self._step,
            "page_count": self._page_count,
            "pages_checked": self._pages_checked,
            "attempt": self._pages_attempt,
            "resumed_from_page": self._resumed_from_page,
        }

    @workflow.signal(name="pages_progress")
    def pages_progress(self, update: PagesProgress) -> None:
        """Progress sent by the running ``check_pages`` attempt. Late signals (the step is
        over) and stale ones (an older attempt, fewer pages) are ignored."""
        if self._step != "check_pages":
            return
        if update.attempt < self._pages_attempt or (
            update.attempt == self._pages_attempt and update.pages_checked < self._pages_checked
        ):
            return
        self._pages_checked = max(0, min(update.pages_checked, self._page_count))
        self._pages_attempt = update.attempt
        self._resumed_from_page = update.resumed_from_page
        workflow.upsert_search_attributes([sa.PAGES_CHECKED.value_set(self._pages_checked)])
        self._show()

    def _enter(self, step: str) -> None:
        self._step = step
        self._show()

    def _show(self) -> None:
        # Current details are served by a query, not stored in history: free to update.
        workflow.set_current_details(self._details())

    def _details(self) -> str:
        pages = f"{self._pages_checked} of {self._page_count} pages"
        if self._step == "inspect":
            return "**Inspecting**: download and document-level checks"
        if self._step == "check_pages":
            percent = 100 * self._pages_checked // max(self._page_count, 1)
            text = f"**Checking pages**: {pages} ({percent}%)"
            if self._pages_attempt > 1 or self._resumed_from_page > 1:
                text += (
                    f", attempt {self._pages_attempt} resumed from page {self._resumed_from_page}"
                )
            return text
        if self._step == "finalize":
            return f"**Writing the report**: {pages} checked"
        if self._step in ("publish_result", "done"):
            return self._outcome
        return f"**{self._step}**"

    @workflow.run
    async def run(self, request: CheckRequest) -> CheckSummary:
        """Check the document; a bad document is a report, only infrastructure failing for
        good (or a cancel) ends the workflow otherwise (``CheckFailed``)."""
        document = request.document
        self._one_step = workflow.patched(CHECK_DOCUMENT_PATCH)
        # Started with its search attributes (by `start_check`), the check need not set them.
        started_with = workflow.info().typed_search_attributes.get(sa.STATUS)
        if not (self._one_step and started_with is not None):
            workflow.upsert_search_attributes(sa.starting(request))
        retry = retry_policy(request.max_attempts)
        try:
            return await self._check(request, retry)
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                # Cancelled on purpose: the workflow ends cancelled, not failed.
                raise
            # Retries are exhausted: say what failed and what to do, not just "failed".
            workflow.upsert_search_attributes([sa.STATUS.value_set(sa.FAILED)])
            workflow.set_current_details(
                f"**Failed** during {self._step}: {_root_cause(err)}. Fix the cause, then "
                "`docpipe reprocess` it."
            )
            raise ApplicationError(
                failure_message(self._step, document.document_id, err, request.max_attempts),
                type="CheckFailed",
                non_retryable=True,
            ) from err

    async def _inspect(self, request: CheckRequest, retry: RetryPolicy) -> InspectResult:
        return await workflow.execute_activity_method(
            DocumentActivities.inspect,
            InspectInput(document=request.document),
            retry_policy=retry,
            start_to_close_timeout=INSPECT_TIMEOUTS.start_to_close,
            schedule_to_close_timeout=INSPECT_TIMEOUTS.schedule_to_close,
            heartbeat_timeout=INSPECT_TIMEOUTS.heartbeat,
        )

    async def _check(self, request: CheckRequest, retry: RetryPolicy) -> CheckSummary:
        document = request.document
        self._enter("inspect")
        if not self._one_step:
            inspection = await self._inspect(request, retry)
        else:
            outcome = await workflow.execute_activity_method(
                DocumentActivities.check_document,
                CheckDocumentInput(
                    document=document,
                    results_bucket=request.results_bucket,
                    results_prefix=request.results_prefix,
                    uploaded_at=request.uploaded_at,
                ),
                retry_policy=retry,
                # A cancelled check ends only once its parser work has stopped.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                start_to_close_timeout=INSPECT_TIMEOUTS.start_to_close,
                schedule_to_close_timeout=INSPECT_TIMEOUTS.schedule_to_close,
                heartbeat_timeout=INSPECT_TIMEOUTS.heartbeat,
            )
            if outcome.summary is not None:
                # Small, or a document-level problem: the report is written.
                self._page_count = outcome.summary.page_count
                self._pages_checked = outcome.pages_checked
                return await self._conclude(
                    request, outcome.summary, page_count=True, published=outcome.published
                )
            assert outcome.inspection is not None
            inspection = outcome.inspection
        self._page_count = inspection.page_count
        workflow.upsert_search_attributes([sa.PAGE_COUNT.value_set(inspection.page_count)])

        pages: CheckPagesResult | None = None
        if inspection.problem is None:
            self._enter("check_pages")
            try:
                pages = await workflow.execute_activity_method(
                    DocumentActivities.check_pages,
                    CheckPagesInput(
                        document=document,
                        results_bucket=request.results_bucket,
                        results_prefix=request.results_prefix,
                        page_count=inspection.page_count,
                        chunk_pages=inspection.plan.chunk_pages,
                    ),
                    task_queue=request.page_task_queue
                    or page_queue_for(workflow.info().task_queue),
                    heartbeat_timeout=timedelta(seconds=inspection.plan.heartbeat_timeout_s),
                    # A cancelled check ends only once the activity has stopped its parser
                    # processes and removed its temp file.
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                    retry_policy=retry,
                    start_to_close_timeout=CHECK_PAGES_TIMEOUTS.start_to_close,
                    schedule_to_close_timeout=CHECK_PAGES_TIMEOUTS.schedule_to_close,
                )
                self._pages_checked = pages.pages_checked
                self._pages_attempt = pages.attempt
                self._resumed_from_page = pages.first_page_this_attempt
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type in _GONE):
                    raise
                inspection = dataclasses.replace(
                    inspection, problem=cause.type, problem_detail=cause.message
                )

        self._enter("finalize")
        summary = await workflow.execute_activity_method(
            DocumentActivities.finalize,
            FinalizeInput(
                document=document,
                results_bucket=request.results_bucket,
                results_prefix=request.results_prefix,
                inspection=inspection,
                pages=pages,
                uploaded_at=request.uploaded_at,
            ),
            retry_policy=retry,
            start_to_close_timeout=FINALIZE_TIMEOUTS.start_to_close,
            schedule_to_close_timeout=FINALIZE_TIMEOUTS.schedule_to_close,
            heartbeat_timeout=FINALIZE_TIMEOUTS.heartbeat,
        )
        return await self._conclude(request, summary)

    async def _conclude(
        self,
        request: CheckRequest,
        summary: CheckSummary,
        *,
        page_count: bool = False,
        published: bool = False,
    ) -> CheckSummary:
        """The outcome in search attributes and the UI, then the results event unless
        ``published`` (sent by check_document). ``page_count``: the page count is not in
        the search attributes yet."""
        outcome: list[SearchAttributeUpdate[Any]] = [
            sa.STATUS.value_set(sa.STATUS_BY_VERDICT[summary.verdict]),
            sa.REASONS.value_set(summary.reasons),
            sa.PAGES_CHECKED.value_set(self._pages_checked),
        ]
        if page_count:
            outcome.append(sa.PAGE_COUNT.value_set(summary.page_count))
        workflow.upsert_search_attributes(outcome)
        document = request.document
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
        if published:
            self._enter("done")
            return summary
        self._enter("publish_result")
        await workflow.execute_activity_method(
            ResultPublisher.publish_result,
            PublishResultInput(document=document, summary=summary),
            # The report is written; only the announcement waits for the broker, as long
            # as a broker outage lasts.
            retry_policy=PUBLISH_RETRY,
            start_to_close_timeout=PUBLISH_TIMEOUTS.start_to_close,
            schedule_to_close_timeout=PUBLISH_TIMEOUTS.schedule_to_close,
            heartbeat_timeout=PUBLISH_TIMEOUTS.heartbeat,
        )
        self._enter("done")
        return summary
