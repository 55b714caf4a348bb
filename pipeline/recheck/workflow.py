"""RecheckWorkflow: re-check every document a selection matches, then say what changed.

One page of matches per run: list the page, start each document's re-check (a
``DocumentCheckWorkflow`` child, as ``docpipe reprocess`` would start it, at a low
priority) at most ``rate_per_s`` a second and ``max_concurrent`` at once, wait until they
are reported, compare their reports with the originals, and continue as new with the next
page, so that history stays small whatever the number of documents. After the last page
the diff report is written to S3.

Like a reprocess, a re-check takes over from the checks of its document that wait for
review (they end as superseded), once it is reported: a re-check cancelled with its bulk
re-check, or one that failed, leaves them waiting. It waits for a reviewer in turn if its
verdict asks for one. The bulk re-check does not wait for that: a re-check is reported
once it ends or tells its parent that it waits (signal ``check_awaits_review``), and
outlives the bulk re-check (``ParentClosePolicy.ABANDON``). Runs begun before this
(histories without the ``recheck-review`` marker) wait for their re-checks' ends, which
never wait for review; runs begun before ``recheck-supersede-at-report`` supersede the
waiting checks at the re-check's start.

Re-check IDs are deterministic (``<check ID>#recheck-<recheck ID>``), and an ID whose
re-check completed or still runs is not started again, so a crash, a retry or a second
run of the same recheck ID re-checks no document twice. Cancelling the workflow cancels
the re-checks that are still checking; those that wait for review stay waiting. A
re-check that ended without a report (cancelled with its bulk re-check, failed, timed
out) is started again by the next run of the same recheck ID, which so finishes what a
cancelled or failed run left.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError
from temporalio.exceptions import ChildWorkflowError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ActivityConfig
from temporalio.workflow import ChildWorkflowHandle
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pipeline.check.takeover import SupersedeInput
    from pipeline.check.takeover import TakeoverActivities
    from pipeline.check.workflow import DocumentCheckWorkflow
    from pipeline.check.workflow import retry_policy
    from pipeline.labels import static_details
    from pipeline.lanes import fairness_key
    from pipeline.lanes import lane
    from pipeline.models import MAX_ATTEMPTS
    from pipeline.models import CheckRequest
    from pipeline.models import CheckSummary
    from pipeline.progress import PROGRESS_QUERY
    from pipeline.recheck.activities import RecheckActivities
    from pipeline.recheck.models import RECHECK_WORKFLOW_NAME
    from pipeline.recheck.models import Match
    from pipeline.recheck.models import Outcome
    from pipeline.recheck.models import RecheckOutcome
    from pipeline.recheck.models import RecheckPhase
    from pipeline.recheck.models import RecheckProgress
    from pipeline.recheck.models import RecheckRequest
    from pipeline.recheck.models import RecheckResult
    from pipeline.recheck.models import RecheckTotals
    from pipeline.review import AWAITS_REVIEW_SIGNAL
    from pipeline.review import AwaitsReview
    from pipeline.starts import check_summary

# Runs begun by this code start re-checks that may wait for review and outlive the bulk
# re-check, supersede the document's waiting checks, and stop only at a re-check's report;
# runs begun before (histories without this marker) start and wait as they always did.
RECHECK_REVIEW_PATCH = "recheck-review"
# Runs begun by this code supersede a document's waiting checks once its re-check is
# reported, and not when it failed: a re-check cancelled or failed before its report
# leaves them waiting. Runs begun before supersede right after the re-check's start.
SUPERSEDE_AT_REPORT_PATCH = "recheck-supersede-at-report"

# The activities heartbeat while they work: a killed worker's is retried within 30 s, as
# a document check's are (it was a minute: a crash stalled a bulk re-check twice as long).
# S3 or Temporal failing: retried as the document check's activities are.
_RECHECK_ACTIVITY = ActivityConfig(
    heartbeat_timeout=timedelta(seconds=30),
    retry_policy=retry_policy(MAX_ATTEMPTS),
)
# Listing a page reads one history event per match: minutes at most.
LIST_MATCHES = _RECHECK_ACTIVITY | ActivityConfig(start_to_close_timeout=timedelta(minutes=10))
# One visibility query and a signal per waiting check of the document: seconds.
SUPERSEDE_WAITING = _RECHECK_ACTIVITY | ActivityConfig(start_to_close_timeout=timedelta(minutes=2))
# Reads the reports of one page of matches.
COMPARE_PAGE = _RECHECK_ACTIVITY | ActivityConfig(start_to_close_timeout=timedelta(minutes=10))
# Reads every page's rows once.
WRITE_DIFF = _RECHECK_ACTIVITY | ActivityConfig(start_to_close_timeout=timedelta(hours=1))


# How a run starts one document's re-check and waits for it: its outcome.
_RunChild = Callable[[RecheckRequest, Match], Awaitable[RecheckOutcome]]


@workflow.defn(name=RECHECK_WORKFLOW_NAME)
class RecheckWorkflow:
    """A bulk re-check: pages of matches, each re-checked, then the diff."""

    def __init__(self) -> None:
        self._phase = RecheckPhase.STARTING
        self._running = 0
        self._totals = RecheckTotals()
        self._page_done = 0
        self._page_size = 0
        # The rate's token bucket: starts allowed now, and when it was last filled.
        self._tokens = 0.0
        self._last_refill: float | None = None
        # Re-checks that told this run they are reported and wait for review.
        self._awaiting_review: set[str] = set()

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> RecheckProgress:
        """How far it is: pages listed, documents matched, re-checked (started by this run
        and reported), already re-checked under this ID before, failed, running now."""
        return RecheckProgress.of(
            self._totals,
            phase=self._phase,
            running=self._running,
            page_done=self._page_done,
            page_size=self._page_size,
        )

    @workflow.signal(name=AWAITS_REVIEW_SIGNAL)
    def check_awaits_review(self, word: AwaitsReview) -> None:
        """A re-check this run started is reported and waits for a reviewer."""
        self._awaiting_review.add(word.workflow_id)

    def _enter(self, phase: RecheckPhase) -> None:
        self._phase = phase
        self._show()

    def _show(self) -> None:
        totals = self._totals
        workflow.set_current_details(
            f"**{self._phase}**: page {totals.pages}, {totals.matched} matched, "
            f"{totals.rechecked} re-checked, {totals.already} done before, "
            f"{totals.failed} failed, {self._running} running"
        )

    @workflow.run
    async def run(self, request: RecheckRequest) -> RecheckResult:
        """Re-check one page of matches, then continue with the next or write the diff."""
        self._totals = request.totals
        chain = workflow.info().first_execution_run_id
        self._enter(RecheckPhase.LISTING)
        page = await workflow.execute_activity_method(
            RecheckActivities.list_matches,
            request.list_matches_input(),
            **LIST_MATCHES,
        )
        self._page_size = len(page.matches)
        self._totals = dataclasses.replace(
            self._totals,
            pages=self._totals.pages + 1,
            matched=self._totals.matched + len(page.matches),
        )
        self._enter(RecheckPhase.RECHECKING)
        if workflow.patched(RECHECK_REVIEW_PATCH):
            outcomes = await self._recheck_all_to_report(request, page.matches)
        else:
            outcomes = await self._recheck_all(request, page.matches, self._run_child, [])

        self._enter(RecheckPhase.COMPARING)
        compared = await workflow.execute_activity_method(
            RecheckActivities.compare_page,
            request.compare_page_input(chain=chain, page=self._totals.pages, outcomes=outcomes),
            **COMPARE_PAGE,
        )
        self._totals = dataclasses.replace(
            self._totals, changed=self._totals.changed + compared.changed
        )
        if page.next_cursor:
            workflow.continue_as_new(
                dataclasses.replace(request, cursor=page.next_cursor, totals=self._totals)
            )

        self._enter(RecheckPhase.WRITING_DIFF)
        key = await workflow.execute_activity_method(
            RecheckActivities.write_diff,
            request.write_diff_input(chain=chain, totals=self._totals),
            **WRITE_DIFF,
        )
        self._enter(RecheckPhase.DONE)
        return RecheckResult(
            recheck_id=request.recheck_id,
            totals=self._totals,
            diff_bucket=request.results_bucket,
            diff_key=key,
        )

    async def _recheck_all_to_report(
        self, request: RecheckRequest, matches: list[Match]
    ) -> list[Outcome]:
        """Every match re-checked to its report. Cancelled, the bulk re-check cancels
        the re-checks still checking (the server leaves them to run: ABANDON) and ends
        once they have stopped."""
        rechecks: list[asyncio.Task[Outcome]] = []
        try:
            return await self._recheck_all(request, matches, self._run_child_to_report, rechecks)
        except (asyncio.CancelledError, ActivityError):
            # Cancelled, or failing for good: no re-check goes on checking unwatched.
            for recheck in rechecks:
                recheck.cancel()
            await asyncio.gather(*rechecks, return_exceptions=True)
            raise

    async def _recheck_all(
        self,
        request: RecheckRequest,
        matches: list[Match],
        run_child: _RunChild,
        rechecks: list[asyncio.Task[Outcome]],
    ) -> list[Outcome]:
        """Every match re-checked by ``run_child``, in their order, paced and bounded;
        ``rechecks`` holds the re-checks started so far."""
        for match in matches:
            await self._pace(request.rate_per_s)
            await workflow.wait_condition(lambda: self._running < request.max_concurrent)
            rechecks.append(asyncio.create_task(self._recheck(request, match, run_child)))
            # Let the task start its child before the next one is counted.
            await asyncio.sleep(0)
        return list(await asyncio.gather(*rechecks))

    async def _pace(self, rate_per_s: float) -> None:
        """At most ``rate_per_s`` starts a second, a token bucket holding one second's
        worth: a second's starts go at once, and a timer waits only for the next second's.
        (A timer per start would cost a workflow task per start, each about a second on
        a dev server, whatever the rate.)"""
        self._refill(rate_per_s)
        if self._tokens < 1.0:
            await workflow.sleep(timedelta(seconds=(1.0 - self._tokens) / rate_per_s))
            self._refill(rate_per_s)
        self._tokens -= 1.0

    def _refill(self, rate_per_s: float) -> None:
        """Add the tokens earned since the last refill (a full bucket the first time)."""
        capacity = max(1.0, rate_per_s)
        now = workflow.time()
        if self._last_refill is None:
            self._tokens = capacity
        else:
            self._tokens = min(capacity, self._tokens + (now - self._last_refill) * rate_per_s)
        self._last_refill = now

    async def _recheck(
        self, request: RecheckRequest, match: Match, run_child: _RunChild
    ) -> Outcome:
        """One document's re-check, as a child workflow, to its end or its report."""
        self._running += 1
        try:
            outcome = await run_child(request, match)
        finally:
            self._running -= 1
            self._page_done += 1
        self._totals = self._totals.counting(outcome)
        self._show()
        return Outcome(match=match, outcome=outcome)

    async def _run_child(self, request: RecheckRequest, match: Match) -> RecheckOutcome:
        """Start the document's re-check under its ID and wait for its end
        (runs begun before ``recheck-review``)."""
        child = await self._start_child(
            request,
            match,
            # The bulk re-check waits for its checks' ends to compare their reports.
            await_review=False,
            # Cancelling the bulk re-check cancels the re-checks it started.
            parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
        )
        if child is None:
            return RecheckOutcome.ALREADY
        return await _outcome_at_end(child)

    async def _run_child_to_report(self, request: RecheckRequest, match: Match) -> RecheckOutcome:
        """Start the document's re-check, wait until it is reported (ended, or waiting
        for a reviewer, which may take days and outlives the bulk re-check), and let it
        take over from the document's checks that wait for review (runs begun before
        ``recheck-supersede-at-report`` let it take over at its start)."""
        child = await self._start_child(
            request, match, await_review=True, parent_close_policy=ParentClosePolicy.ABANDON
        )
        if child is None:
            return RecheckOutcome.ALREADY

        def reported() -> bool:
            return child.done() or child.id in self._awaiting_review

        if workflow.patched(SUPERSEDE_AT_REPORT_PATCH):
            return await self._report_then_supersede(request, match, child, reported)
        try:
            await self._supersede(request, match, child)
            await workflow.wait_condition(reported)
        except (asyncio.CancelledError, ActivityError):
            # Cancelled (or the supersede failed for good): a re-check still checking
            # stops, and the bulk re-check ends once it has; one that waits stays.
            if not reported():
                await _stopped(child)
            raise
        return await _outcome_at_report(child)

    async def _report_then_supersede(
        self,
        request: RecheckRequest,
        match: Match,
        child: ChildWorkflowHandle[Any, CheckSummary],
        reported: Callable[[], bool],
    ) -> RecheckOutcome:
        """Wait until the re-check is reported, then let it take over from the document's
        checks that wait for review. Until then they keep waiting: a re-check cancelled
        with the bulk re-check, or one that fails, takes nothing from them."""
        try:
            await workflow.wait_condition(reported)
        except asyncio.CancelledError:
            # Still checking: it stops, and the bulk re-check ends once it has.
            await _stopped(child)
            raise
        if child.done() and await _outcome_at_end(child) is RecheckOutcome.FAILED:
            return RecheckOutcome.FAILED
        try:
            await self._supersede(request, match, child)
        except ActivityError:
            # The waiting checks were not told: the re-check steps back (a re-check that
            # waits is cancelled), so that one check of the document waits, and running
            # the same recheck ID again re-checks the document. Cancelled instead, the
            # bulk re-check leaves a reported re-check as it is.
            await _stopped(child)
            raise
        return await _outcome_at_report(child)

    async def _supersede(
        self, request: RecheckRequest, match: Match, child: ChildWorkflowHandle[Any, CheckSummary]
    ) -> None:
        """End the document's checks that started before ``child`` and wait for review
        (or still check) as superseded by ``child``."""
        await workflow.execute_activity_method(
            TakeoverActivities.supersede_waiting,
            SupersedeInput(
                check_workflow_id=match.document.check_workflow_id(request.hash_object_key),
                recheck_workflow_id=child.id,
            ),
            **SUPERSEDE_WAITING,
        )

    async def _start_child(
        self,
        request: RecheckRequest,
        match: Match,
        *,
        await_review: bool,
        parent_close_policy: ParentClosePolicy,
    ) -> ChildWorkflowHandle[Any, CheckSummary] | None:
        """Start the document's re-check under its ID; None: a re-check under that ID
        completed or still runs."""
        check = CheckRequest(
            document=match.document,
            results_bucket=match.results_bucket,
            results_prefix=match.recheck_prefix(request.recheck_id),
            page_task_queue=request.page_task_queue,
            ocr_task_queue=request.ocr_task_queue,
            hash_object_key=request.hash_object_key,
            await_review=await_review,
        )
        priority = lane(
            request.priority_key,
            fairness_key(match.document, request.fairness_mode, hashed=request.hash_object_key),
        )
        try:
            return await workflow.start_child_workflow(
                DocumentCheckWorkflow.run,
                check,
                id=match.recheck_workflow_id(request.recheck_id, request.hash_object_key),
                task_queue=workflow.info().task_queue,
                # An ID that completed or still runs is not run again: this is what makes
                # a second run of the same recheck ID, or a replayed start, re-check
                # nothing twice. One that ended without its report (cancelled with the
                # bulk re-check that started it, failed, timed out) runs again.
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
                static_summary=check_summary(check, f" (re-check {request.recheck_id})", priority),
                static_details=static_details(check),
                priority=priority,
                parent_close_policy=parent_close_policy,
            )
        except WorkflowAlreadyStartedError:
            return None


async def _stopped(child: ChildWorkflowHandle[Any, CheckSummary]) -> None:
    """Cancel a re-check and wait until it has stopped."""
    child.cancel()
    await asyncio.gather(child, return_exceptions=True)


async def _outcome_at_report(child: ChildWorkflowHandle[Any, CheckSummary]) -> RecheckOutcome:
    """A reported re-check's outcome: re-checked while it waits for review, else as it
    ended."""
    if not child.done():
        return RecheckOutcome.RECHECKED
    return await _outcome_at_end(child)


async def _outcome_at_end(child: ChildWorkflowHandle[Any, CheckSummary]) -> RecheckOutcome:
    """A re-check's outcome once it ends: failed, or re-checked to its report."""
    try:
        await child
    except ChildWorkflowError:
        return RecheckOutcome.FAILED
    return RecheckOutcome.RECHECKED
