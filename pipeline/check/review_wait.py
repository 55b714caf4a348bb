"""The review wait of ``DocumentCheckWorkflow``: a reported check whose verdict is
``review`` waits, durably and for as long as it takes, for a reviewer's decision.

The decision arrives as the Update ``review_decision``; its validator refuses what cannot
be decided, and the workflow history is the audit trail of who decided what, when. The
accepted decision is written to ``decision.json`` and announced on the results topic.
A newer check of the same document ends the wait (signal ``superseded``; sent while the
check still checks, it ends the check at its report instead), and so may the review
deadline, as the review policy says. A check started by a bulk re-check tells it
that it waits (signal ``check_awaits_review``): the bulk re-check goes on without it.

Imported by the workflow sandbox through ``pipeline.check.workflow``.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pipeline import search_attributes as sa
    from pipeline.check.decision_writer import DecisionWriter
    from pipeline.check.decision_writer import decision_key
    from pipeline.check.publish import OUTLAST_OUTAGES
    from pipeline.check.publish import ResultPublisher
    from pipeline.check.takeover import TAKE_OVER_AT_REPORT
    from pipeline.check.takeover import SupersedeInput
    from pipeline.check.takeover import TakeoverActivities
    from pipeline.models import RECHECK_ID_MARK
    from pipeline.models import CheckRequest
    from pipeline.models import CheckSummary
    from pipeline.models import PublishReviewInput
    from pipeline.models import WriteDecisionInput
    from pipeline.review import AWAITS_REVIEW_SIGNAL
    from pipeline.review import ESCALATE
    from pipeline.review import POLICY_REVIEWER
    from pipeline.review import REVIEW_QUERY
    from pipeline.review import REVIEW_UPDATE
    from pipeline.review import SUPERSEDED_SIGNAL
    from pipeline.review import AwaitsReview
    from pipeline.review import RejectReason
    from pipeline.review import ReviewAction
    from pipeline.review import ReviewDecision
    from pipeline.review import ReviewOutcome
    from pipeline.review import ReviewState
    from pipeline.review import ReviewStatus
    from pipeline.review import ReviewWait
    from pipeline.review import Superseded
    from pipeline.review import decision_from_json
    from pipeline.review import final_verdict
    from pipeline.review import refusal

# Checks that wait for a review decision; checks begun before it (histories without this
# marker) end at their results event.
REVIEW_WAIT_PATCH = "review-wait"
# Checks with a parent (a bulk re-check's) tell it when they begin to wait; checks without
# one, and those begun before this marker, issue the commands they always did.
TELL_PARENT_PATCH = "review-wait-tells-parent"
# A check told it was superseded while it was still checking ends superseded once it is
# reported, instead of waiting; checks begun before this marker waited all the same.
SUPERSEDED_EARLY_PATCH = "review-superseded-early"
# A deliberate re-check (`docpipe reprocess`) takes over from the document's checks that
# wait once it is reported; those begun before this marker were let take over at their
# start, by the command that started them.
TAKEOVER_AT_REPORT_PATCH = "reprocess-takes-over-at-report"


class ReviewWaitMixin:
    """The review handlers and wait of the check workflow (mixed into it)."""

    def __init__(self) -> None:
        self._review = ReviewStatus(state=ReviewState.NOT_WAITING)
        self._review_summary: CheckSummary | None = None
        self._accepted: ReviewOutcome | None = None
        self._report_time = 0.0
        self._decision_written = False
        # The newer check that took over while this one was still checking.
        self._superseded_early_by = ""

    async def _take_over_if_reprocessed(self, request: CheckRequest) -> None:
        """A deliberate re-check, now reported, takes over from the document's checks that
        started before it and wait for review (or still check). A bulk re-check's do not:
        their parent lets them, at the same point."""
        info = workflow.info()
        if RECHECK_ID_MARK not in info.workflow_id or info.parent is not None:
            return
        if not workflow.patched(TAKEOVER_AT_REPORT_PATCH):
            return
        await workflow.execute_activity_method(
            TakeoverActivities.supersede_waiting,
            SupersedeInput(
                check_workflow_id=request.document.check_workflow_id(request.hash_object_key),
                recheck_workflow_id=info.workflow_id,
            ),
            **TAKE_OVER_AT_REPORT,
        )

    @workflow.query(name=REVIEW_QUERY)
    def review_status(self) -> ReviewStatus:
        """Whether the check waits for a decision, since when, and what was decided."""
        return self._review

    @workflow.update(name=REVIEW_UPDATE)
    async def review_decision(self, payload: dict[str, Any]) -> ReviewOutcome:
        """Take a reviewer's decision (a ``ReviewDecision``, read by the validator's rules:
        ``decision_from_json``); the same decision ID again returns the first outcome.
        Returns once ``decision.json`` is written."""
        decision = decision_from_json(payload)
        if self._accepted is None:
            if self._review.state is not ReviewState.AWAITING:
                # A newer check took over between the validator and this handler.
                raise ApplicationError(
                    f"this check was superseded by {self._review.superseded_by}",
                    type="review_superseded",
                )
            self._accept(decision)
        await workflow.wait_condition(lambda: self._decision_written)
        assert self._accepted is not None
        return self._accepted

    @review_decision.validator
    def _validate_decision(self, payload: dict[str, Any]) -> None:
        decision = decision_from_json(payload)
        problem = refusal(
            decision,
            waiting=self._review.state is ReviewState.AWAITING,
            accepted=self._accepted,
            page_count=self._review.page_count,
        )
        if problem is not None:
            raise ValueError(problem)

    @workflow.signal(name=SUPERSEDED_SIGNAL)
    def superseded(self, by: Superseded) -> None:
        """A newer check of the same document took over: a waiting check ends, and one
        still checking ends once it is reported instead of waiting. Ignored by a check
        that waits no more."""
        if self._review.state is ReviewState.AWAITING and self._accepted is None:
            self._review = dataclasses.replace(
                self._review, state=ReviewState.SUPERSEDED, superseded_by=by.workflow_id
            )
        elif self._review.state is ReviewState.NOT_WAITING:
            self._superseded_early_by = by.workflow_id

    def _accept(self, decision: ReviewDecision, *, by_policy: bool = False) -> None:
        summary = self._review_summary
        assert summary is not None
        now = workflow.now()
        self._accepted = ReviewOutcome(
            document_id=summary.document_id,
            decision=decision,
            final_verdict=final_verdict(decision.action),
            report_verdict=summary.verdict,
            report_reasons=list(summary.reasons),
            decided_at=now.isoformat(),
            waited_s=round(max(0.0, now.timestamp() - self._report_time), 3),
            decision_bucket=summary.report_bucket,
            decision_key=decision_key(summary.report_key),
            by_policy=by_policy,
        )
        self._review = dataclasses.replace(
            self._review, state=ReviewState.DECIDED, outcome=self._accepted
        )

    async def _await_review(self, request: CheckRequest, summary: CheckSummary) -> CheckSummary:
        """Wait for the decision (or a newer check, or the deadline's policy), then record
        and announce it; the check's result carries it."""
        wait = summary.review_wait
        assert wait is not None
        now = workflow.now()
        self._report_time = now.timestamp()
        deadline = now + timedelta(seconds=wait.deadline_s)
        self._review_summary = summary
        self._review = ReviewStatus(
            state=ReviewState.AWAITING,
            reasons=list(wait.reasons),
            waiting_since=now.isoformat(),
            deadline=deadline.isoformat(),
            document_id=summary.document_id,
            report_bucket=summary.report_bucket,
            report_key=summary.report_key,
            verdict=summary.verdict,
            page_count=summary.page_count,
        )
        if self._superseded_early_by and workflow.patched(SUPERSEDED_EARLY_PATCH):
            # Told while still checking: the newer check is the one to review.
            self._review = dataclasses.replace(
                self._review,
                state=ReviewState.SUPERSEDED,
                superseded_by=self._superseded_early_by,
            )
        else:
            workflow.upsert_search_attributes(
                [
                    sa.STATUS.value_set(sa.AWAITING_REVIEW),
                    sa.REVIEW_SINCE.value_set(now),
                    sa.REVIEW_DEADLINE.value_set(deadline),
                    sa.REVIEW_OVERDUE.value_set(False),
                ]
            )
            workflow.set_current_details(
                f"**Awaiting review** ({', '.join(wait.reasons)}) since {now:%Y-%m-%d %H:%M} UTC"
            )
            await self._tell_parent_it_waits()
            if not await self._decided_within(wait.deadline_s):
                await self._overdue(request, summary, wait)
        if self._review.state is ReviewState.SUPERSEDED:
            workflow.upsert_search_attributes([sa.STATUS.value_set(sa.SUPERSEDED)])
            await self._announce(request, summary)
            return dataclasses.replace(
                summary,
                review_state=ReviewState.SUPERSEDED.value,
                superseded_by=self._review.superseded_by,
            )
        outcome = self._accepted
        assert outcome is not None
        await workflow.execute_activity_method(
            DecisionWriter.write_decision, WriteDecisionInput(outcome=outcome), **OUTLAST_OUTAGES
        )
        self._decision_written = True
        workflow.upsert_search_attributes(
            [sa.STATUS.value_set(sa.STATUS_BY_DECISION[outcome.final_verdict])]
        )
        await self._announce(request, summary)
        # A retried Update of the same decision is answered before the workflow ends.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return dataclasses.replace(
            summary, decision=outcome, review_state=ReviewState.DECIDED.value
        )

    async def _tell_parent_it_waits(self) -> None:
        """Tell the bulk re-check that started this check (if one did) that it is reported
        and waits: the bulk re-check compares its report and goes on without it."""
        parent = workflow.info().parent
        if parent is None or not workflow.patched(TELL_PARENT_PATCH):
            return
        handle = workflow.get_external_workflow_handle(parent.workflow_id, run_id=parent.run_id)
        try:
            await handle.signal(
                AWAITS_REVIEW_SIGNAL, AwaitsReview(workflow_id=workflow.info().workflow_id)
            )
        except ApplicationError:
            # The bulk re-check ended meanwhile (cancelled, terminated): nobody waits for
            # the word, and the check waits for its reviewer all the same.
            workflow.logger.info("the bulk re-check that started this check has ended")

    def _review_line(self) -> str:
        """How the review ended, for the check's details in the UI."""
        outcome = self._review.outcome
        if outcome is not None:
            decision = outcome.decision
            by = f"{decision.action} by {decision.reviewer}"
            return f"**{outcome.final_verdict}** after review: {by}"
        return f"**superseded** by `{self._review.superseded_by}`"

    def _settled(self) -> bool:
        return self._accepted is not None or self._review.state is ReviewState.SUPERSEDED

    async def _decided_within(self, seconds: float | None) -> bool:
        """Whether a decision came (or a newer check took over) within ``seconds``."""
        try:
            await workflow.wait_condition(
                self._settled, timeout=None if seconds is None else timedelta(seconds=seconds)
            )
        except TimeoutError:
            return False
        return True

    async def _overdue(
        self, request: CheckRequest, summary: CheckSummary, wait: ReviewWait
    ) -> None:
        """The deadline passed: mark the check overdue and announce it, then keep waiting
        (``escalate``) or let the policy decide."""
        self._review = dataclasses.replace(self._review, overdue=True)
        workflow.upsert_search_attributes([sa.REVIEW_OVERDUE.value_set(True)])
        workflow.set_current_details(
            f"**Awaiting review, overdue** ({', '.join(wait.reasons)}) since "
            f"{self._review.waiting_since}"
        )
        await self._announce(request, summary)
        if self._settled():
            return
        if wait.on_deadline == ESCALATE:
            await self._decided_within(None)
            return
        action = ReviewAction(wait.on_deadline)
        self._accept(
            ReviewDecision(
                decision_id=f"deadline:{workflow.info().workflow_id}",
                action=action,
                reviewer=POLICY_REVIEWER,
                note=f"the review deadline passed; the policy decides {action}",
                reject_reason=RejectReason.OTHER.value if action is ReviewAction.REJECT else "",
            ),
            by_policy=True,
        )

    async def _announce(self, request: CheckRequest, summary: CheckSummary) -> None:
        """The results event of the check's review state, keyed as its result."""
        await workflow.execute_activity_method(
            ResultPublisher.publish_review,
            PublishReviewInput(document=request.document, summary=summary, review=self._review),
            **OUTLAST_OUTAGES,
        )
