"""DocumentCheckWorkflow: inspect -> check pages -> finalize.

Deterministic orchestration with small state. Per-page data never enters the workflow:
activities exchange counts, and the pages themselves live in S3 chunk files.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pipeline import search_attributes as sa
    from pipeline.models import (
        WORKFLOW_NAME,
        CheckPagesInput,
        CheckPagesResult,
        CheckRequest,
        CheckSummary,
        FinalizeInput,
        InspectInput,
        InspectResult,
    )

# Infrastructure failures (S3 5xx, a lost worker) retry with capped backoff; bad documents
# are results, never retries.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=20,
)
# Reasons an activity reports when the object vanished or changed mid-check.
_GONE = ("object_missing", "object_changed")


@workflow.defn(name=WORKFLOW_NAME)
class DocumentCheckWorkflow:
    def __init__(self) -> None:
        self._step = "starting"
        self._page_count = 0
        self._pages_checked = 0

    @workflow.query
    def progress(self) -> dict[str, Any]:
        """Where the check is: step, and pages checked of the total once known."""
        return {
            "step": self._step,
            "page_count": self._page_count,
            "pages_checked": self._pages_checked,
        }

    @workflow.run
    async def run(self, request: CheckRequest) -> CheckSummary:
        document = request.document
        workflow.upsert_search_attributes(
            [
                sa.STATUS.value_set(sa.CHECKING),
                sa.BUCKET.value_set(document.bucket),
                sa.OBJECT_KEY.value_set(document.key[:2000]),
            ]
        )
        self._step = "inspect"
        inspection: InspectResult = await workflow.execute_activity(
            "inspect",
            InspectInput(document=document),
            result_type=InspectResult,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RETRY,
        )
        self._page_count = inspection.page_count
        workflow.upsert_search_attributes([sa.PAGE_COUNT.value_set(inspection.page_count)])

        pages: CheckPagesResult | None = None
        if inspection.problem is None:
            self._step = "check_pages"
            try:
                pages = await workflow.execute_activity(
                    "check_pages",
                    CheckPagesInput(
                        document=document,
                        results_bucket=request.results_bucket,
                        results_prefix=request.results_prefix,
                        page_count=inspection.page_count,
                        chunk_pages=inspection.plan.chunk_pages,
                    ),
                    result_type=CheckPagesResult,
                    task_queue=request.page_task_queue or None,
                    start_to_close_timeout=timedelta(hours=6),
                    heartbeat_timeout=timedelta(seconds=inspection.plan.heartbeat_timeout_s),
                    retry_policy=RETRY,
                )
                self._pages_checked = pages.pages_checked
            except ActivityError as err:
                cause = err.cause
                if not (isinstance(cause, ApplicationError) and cause.type in _GONE):
                    raise
                inspection = dataclasses.replace(
                    inspection, problem=cause.type, problem_detail=cause.message
                )

        self._step = "finalize"
        summary: CheckSummary = await workflow.execute_activity(
            "finalize",
            FinalizeInput(
                document=document,
                results_bucket=request.results_bucket,
                results_prefix=request.results_prefix,
                inspection=inspection,
                pages=pages,
            ),
            result_type=CheckSummary,
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RETRY,
        )
        workflow.upsert_search_attributes(
            [
                sa.STATUS.value_set(sa.STATUS_BY_VERDICT[summary.verdict]),
                sa.REASONS.value_set(summary.reasons),
            ]
        )
        self._step = "done"
        return summary
