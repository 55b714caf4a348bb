"""Checks that wait for review: stand-in activities whose report says ``review`` (on the
time-skipping server), the queries and decisions tests send a waiting check, and the start
of a real check that waits.

Shared by the tests of the review wait (``tests/pipeline/check/test_review_wait*.py``), of
the bulk re-check whose checks wait (``tests/pipeline/recheck``), and the full-stack tests
of review and re-checks (``tests/integration``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError

from infra.settings import Settings
from pipeline.check.takeover import SupersededChecks
from pipeline.check.takeover import SupersedeInput
from pipeline.models import CheckDocumentInput
from pipeline.models import CheckSummary
from pipeline.models import DocumentOutcome
from pipeline.models import DocumentRef
from pipeline.models import PublishResultInput
from pipeline.models import PublishReviewInput
from pipeline.models import WriteDecisionInput
from pipeline.review import REVIEW_QUERY
from pipeline.review import REVIEW_UPDATE
from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision
from pipeline.review import ReviewOutcome
from pipeline.review import ReviewState
from pipeline.review import ReviewStatus
from pipeline.review import ReviewWait
from tests.support.checks import start_check
from tests.support.polling import async_wait_for

CheckHandle = WorkflowHandle[Any, CheckSummary]
# The document whose check waits for review, in the tests that start one check alone.
REVIEWED_DOCUMENT = DocumentRef(bucket="documents", key="in/review.pdf", version_id="v1")


@dataclass
class ReviewStandIns:
    """A small document whose report says ``review`` (blank pages) and waits as
    ``wait`` says; every call recorded.

    Attributes:
        hold_check: when set, ``check_document`` waits for it (a check still checking).
        held: the documents (IDs) ``hold_check`` holds (None: every document).
        cancelled: the documents (IDs) whose ``check_document`` was cancelled.
        hold_announcement: when set, ``publish_review`` waits for it (a decided check
            that has not ended yet).
        failing: the documents (IDs) whose ``check_document`` fails for good.
    """

    wait: ReviewWait | None = field(default_factory=lambda: ReviewWait(reasons=["blank_pages"]))
    hold_check: asyncio.Event | None = None
    held: set[str] | None = None
    calls: dict[str, list[Any]] = field(default_factory=dict)
    cancelled: list[str] = field(default_factory=list)
    hold_announcement: asyncio.Event | None = None
    failing: set[str] = field(default_factory=set)

    def _holds(self, document_id: str) -> bool:
        if self.hold_check is None or self.hold_check.is_set():
            return False
        return self.held is None or document_id in self.held

    def activities(self, *, takeover: bool = True) -> list[Callable[..., Any]]:
        """The check's activities; with ``takeover``, ``supersede_waiting`` too (a worker
        that also runs bulk re-checks has its own stand-in of it)."""

        @activity.defn(name="check_document")
        async def check_document(input: CheckDocumentInput) -> DocumentOutcome:
            self.calls.setdefault("check_document", []).append(input)
            try:
                while self._holds(input.document.document_id):
                    activity.heartbeat()
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                self.cancelled.append(input.document.document_id)
                raise
            if input.document.document_id in self.failing:
                raise ApplicationError("the stand-in check fails", non_retryable=True)
            summary = CheckSummary(
                document_id=input.document.document_id,
                verdict="review",
                reasons=["blank_pages"],
                page_count=2,
                report_bucket="results",
                report_key=f"r/{input.document.document_id}/report.json",
                review_wait=self.wait,
            )
            return DocumentOutcome(summary=summary, pages_checked=2, published=True)

        @activity.defn(name="publish_result")
        async def publish_result(input: PublishResultInput) -> None:
            self.calls.setdefault("publish_result", []).append(input)

        @activity.defn(name="publish_review")
        async def publish_review(input: PublishReviewInput) -> None:
            self.calls.setdefault("publish_review", []).append(input)
            while self.hold_announcement is not None and not self.hold_announcement.is_set():
                activity.heartbeat()
                await asyncio.sleep(0.05)

        @activity.defn(name="write_decision")
        async def write_decision(input: WriteDecisionInput) -> bool:
            self.calls.setdefault("write_decision", []).append(input)
            return True

        @activity.defn(name="supersede_waiting")
        async def supersede_waiting(input: SupersedeInput) -> SupersededChecks:
            self.calls.setdefault("supersede_waiting", []).append(input)
            return SupersededChecks(workflow_ids=[input.check_workflow_id])

        found: list[Callable[..., Any]] = [
            check_document,
            publish_result,
            publish_review,
            write_decision,
        ]
        return [*found, supersede_waiting] if takeover else found


async def review_status(handle: CheckHandle) -> ReviewStatus:
    """The check's ``review`` query answer."""
    status: ReviewStatus = await handle.query(REVIEW_QUERY, result_type=ReviewStatus)
    return status


async def awaiting(handle: CheckHandle, seconds: float = 60) -> ReviewStatus:
    """The check's ``review`` answer once it waits for a decision (within ``seconds``)."""

    async def waiting() -> ReviewStatus | None:
        status = await review_status(handle)
        return status if status.state is ReviewState.AWAITING else None

    return await async_wait_for(waiting, seconds, what=f"{handle.id} to await review")


async def start_waiting_check(
    client: Client, settings: Settings, document: DocumentRef, seconds: float = 60, **start: Any
) -> CheckHandle:
    """Start the check of ``document`` (``tests.support.checks.start_check``, with ``start``)
    and return its handle once it waits for review (within ``seconds``)."""
    handle = await start_check(client, settings, document, **start)
    await awaiting(handle, seconds)
    return handle


def approval(decision_id: str = "d-1", reviewer: str = "ana") -> ReviewDecision:
    """A reviewer's approval, having viewed page 1 (every document has one)."""
    return ReviewDecision(
        decision_id=decision_id,
        action=ReviewAction.APPROVE,
        reviewer=reviewer,
        note="looked fine",
        pages_viewed=[1],
    )


async def decide(handle: CheckHandle, decision: Any) -> ReviewOutcome:
    """Send ``decision`` as the check's Update (its decision ID as the Update ID)."""
    outcome: ReviewOutcome = await handle.execute_update(
        REVIEW_UPDATE,
        decision,
        id=getattr(decision, "decision_id", None),
        result_type=ReviewOutcome,
    )
    return outcome
