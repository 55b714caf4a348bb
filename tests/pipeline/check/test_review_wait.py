"""The review wait of DocumentCheckWorkflow, against stand-in activities on the
time-skipping server: the decision Update and its validator, the deadline, supersede."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.client import WorkflowHandle
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pipeline import search_attributes as sa
from pipeline.check.takeover import SupersedeInput
from pipeline.check.workflow import DocumentCheckWorkflow
from pipeline.models import CheckSummary
from pipeline.models import recheck_workflow_id
from pipeline.review import SUPERSEDED_SIGNAL
from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision
from pipeline.review import ReviewState
from pipeline.review import ReviewStatus
from pipeline.review import ReviewWait
from pipeline.review import Superseded
from tests.support.checks import start_check
from tests.support.polling import async_wait_for
from tests.support.review_checks import REVIEWED_DOCUMENT
from tests.support.review_checks import ReviewStandIns
from tests.support.review_checks import approval
from tests.support.review_checks import awaiting
from tests.support.review_checks import decide
from tests.support.review_checks import review_status
from tests.support.settings import one_queue

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Check:
    handle: WorkflowHandle[Any, CheckSummary]
    worker: Worker


async def _start(
    env: WorkflowEnvironment, stand_ins: ReviewStandIns, workflow_id: str | None = None
) -> Check:
    queue = f"review-{uuid.uuid4()}"
    handle = await start_check(
        env.client,
        one_queue(queue),
        REVIEWED_DOCUMENT,
        workflow_id=workflow_id or f"wf-{uuid.uuid4()}",
    )
    worker = Worker(
        env.client,
        task_queue=queue,
        workflows=[DocumentCheckWorkflow],
        activities=stand_ins.activities(),
    )
    return Check(handle, worker)


async def _refused(handle: WorkflowHandle[Any, CheckSummary], decision: Any) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await decide(handle, decision)
    return str(refused.value.cause)


async def test_an_approved_check_ends_pass_with_its_decision_recorded_once(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = ReviewStandIns()
    check = await _start(env, stand_ins)
    async with check.worker:
        status = await awaiting(check.handle)
        assert status.reasons == ["blank_pages"] and status.deadline > status.waiting_since
        assert status.report_key.endswith("/report.json")
        described = (await check.handle.describe()).typed_search_attributes
        assert described.get(sa.STATUS) == sa.AWAITING_REVIEW
        outcome = await decide(check.handle, approval())
        # The same decision again is the same outcome, not a second decision.
        assert await decide(check.handle, approval()) == outcome
        summary = await check.handle.result()
    assert outcome.final_verdict == "pass" and outcome.decision.reviewer == "ana"
    assert outcome.decision_key == "r/documents/in/review.pdf@v1/decision.json"
    assert summary.decision == outcome and summary.final_verdict == "pass"
    assert len(stand_ins.calls["write_decision"]) == 1
    (announced,) = stand_ins.calls["publish_review"]
    assert announced.review.outcome == outcome
    described = (await check.handle.describe()).typed_search_attributes
    assert described.get(sa.STATUS) == sa.APPROVED


async def test_the_validator_refuses_what_cannot_be_decided(env: WorkflowEnvironment) -> None:
    # The decided check is held before it ends, so that a second decision reaches a
    # running check: sent to one that has ended, it would find no check to refuse it.
    stand_ins = ReviewStandIns(hold_check=asyncio.Event(), hold_announcement=asyncio.Event())
    check = await _start(env, stand_ins)
    async with check.worker:

        async def checking() -> bool | None:
            return True if stand_ins.calls.get("check_document") else None

        await async_wait_for(checking, 30, what="check_document")
        assert "does not wait" in await _refused(check.handle, approval())
        stand_ins.hold_check.set()  # type: ignore[union-attr]
        await awaiting(check.handle)
        unknown = {"decision_id": "d-x", "action": "maybe", "reviewer": "ana"}
        assert "unknown action 'maybe'" in await _refused(check.handle, unknown)
        assert (await review_status(check.handle)).state is ReviewState.AWAITING
        no_reason = ReviewDecision(decision_id="d-2", action=ReviewAction.REJECT, reviewer="ana")
        assert "needs a reason" in await _refused(check.handle, no_reason)
        other = ReviewDecision(
            decision_id="d-3", action=ReviewAction.REJECT, reviewer="ana", reject_reason="other"
        )
        assert "needs a note" in await _refused(check.handle, other)
        # The stand-in document has 2 pages.
        beyond = dataclasses.replace(approval("d-6"), pages_viewed=[1, 2, 3])
        assert "names page 3; the document has 2 pages" in await _refused(check.handle, beyond)
        await decide(check.handle, approval("d-4"))
        second = await _refused(check.handle, approval("d-5", reviewer="bo"))
        assert "already decided: approve by ana" in second
        stand_ins.hold_announcement.set()  # type: ignore[union-attr]
        summary = await check.handle.result()
    assert summary.decision is not None and summary.decision.decision.decision_id == "d-4"


async def test_an_overdue_check_escalates_and_keeps_waiting(env: WorkflowEnvironment) -> None:
    stand_ins = ReviewStandIns(wait=ReviewWait(reasons=["blank_pages"], deadline_s=3600))
    check = await _start(env, stand_ins)
    async with check.worker:
        await awaiting(check.handle)
        await env.sleep(3700)

        async def overdue() -> ReviewStatus | None:
            status = await review_status(check.handle)
            return status if status.overdue else None

        status = await async_wait_for(overdue, 30, what="the check to be overdue")
        assert status.state is ReviewState.AWAITING
        described = (await check.handle.describe()).typed_search_attributes
        assert described.get(sa.REVIEW_OVERDUE) is True
        announced = [call.review for call in stand_ins.calls["publish_review"]]
        assert [(r.state, r.overdue) for r in announced] == [(ReviewState.AWAITING, True)]
        await decide(check.handle, approval())
        summary = await check.handle.result()
    assert summary.final_verdict == "pass"


async def test_an_overdue_check_is_rejected_by_policy_when_it_says_so(
    env: WorkflowEnvironment,
) -> None:
    wait = ReviewWait(reasons=["blank_pages"], deadline_s=60, on_deadline="reject")
    stand_ins = ReviewStandIns(wait=wait)
    check = await _start(env, stand_ins)
    async with check.worker:
        await awaiting(check.handle)
        await env.sleep(120)
        summary = await check.handle.result()
    assert summary.decision is not None and summary.decision.by_policy
    assert summary.decision.decision.reviewer == "policy"
    assert summary.final_verdict == "reject"
    assert len(stand_ins.calls["write_decision"]) == 1


async def test_a_superseded_check_ends_pointing_to_the_new_one(env: WorkflowEnvironment) -> None:
    stand_ins = ReviewStandIns()
    check = await _start(env, stand_ins)
    async with check.worker:
        await awaiting(check.handle)
        await check.handle.signal(SUPERSEDED_SIGNAL, Superseded(workflow_id="wf-new"))
        summary = await check.handle.result()
        status = await review_status(check.handle)
    assert summary.review_state == "superseded" and summary.superseded_by == "wf-new"
    assert status.state is ReviewState.SUPERSEDED and status.superseded_by == "wf-new"
    assert "write_decision" not in stand_ins.calls
    described = (await check.handle.describe()).typed_search_attributes
    assert described.get(sa.STATUS) == sa.SUPERSEDED


async def test_a_check_superseded_while_it_still_checks_ends_superseded_at_its_report(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = ReviewStandIns()
    check = await _start(env, stand_ins)
    # Told before its worker has checked anything: the signal is the history's first.
    await check.handle.signal(SUPERSEDED_SIGNAL, Superseded(workflow_id="wf-newer"))
    async with check.worker:

        async def reported() -> ReviewStatus | None:
            status = await review_status(check.handle)
            return None if status.state is ReviewState.NOT_WAITING else status

        status = await async_wait_for(reported, 30, "the check to be reported")
        assert status.state is ReviewState.SUPERSEDED, "it waits for a reviewer"
        summary = await check.handle.result()
    assert summary.verdict == "review" and summary.decision is None
    assert summary.review_state == "superseded" and summary.superseded_by == "wf-newer"
    assert "write_decision" not in stand_ins.calls
    (announced,) = stand_ins.calls["publish_review"]
    assert announced.review.state is ReviewState.SUPERSEDED
    described = (await check.handle.describe()).typed_search_attributes
    assert described.get(sa.STATUS) == sa.SUPERSEDED


async def test_a_check_whose_reasons_are_off_ends_at_its_report(env: WorkflowEnvironment) -> None:
    stand_ins = ReviewStandIns(wait=None)
    check = await _start(env, stand_ins)
    async with check.worker:
        summary = await check.handle.result()
    assert summary.verdict == "review" and summary.decision is None
    assert "publish_review" not in stand_ins.calls


async def test_a_check_takes_over_from_nothing_at_its_report(env: WorkflowEnvironment) -> None:
    stand_ins = ReviewStandIns()
    check = await _start(env, stand_ins)
    async with check.worker:
        await awaiting(check.handle)
    assert "supersede_waiting" not in stand_ins.calls


async def test_a_deliberate_recheck_takes_over_once_reported_before_it_waits(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = ReviewStandIns()
    original = f"wf-{uuid.uuid4()}"
    check = await _start(env, stand_ins, workflow_id=recheck_workflow_id(original, 1))
    async with check.worker:
        await awaiting(check.handle)
    (told,) = stand_ins.calls["supersede_waiting"]
    assert told == SupersedeInput(
        check_workflow_id=REVIEWED_DOCUMENT.check_workflow_id(hashed=False),
        recheck_workflow_id=check.handle.id,
    )


async def test_a_deliberate_recheck_that_fails_takes_over_from_nothing(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = ReviewStandIns(failing={REVIEWED_DOCUMENT.document_id})
    check = await _start(env, stand_ins, workflow_id=recheck_workflow_id(f"wf-{uuid.uuid4()}", 1))
    async with check.worker:
        with pytest.raises(WorkflowFailureError):
            await check.handle.result()
    assert "supersede_waiting" not in stand_ins.calls
