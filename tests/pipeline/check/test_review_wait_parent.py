"""The word a check started by a bulk re-check sends its parent once it waits for review,
against stand-in activities on the time-skipping server.

A module (and so a test server) of its own: after a parent abandons its child, the test
server stops skipping time for the module's later ``env.sleep``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.workflow import ParentClosePolicy

from infra.check_requests import check_request
from infra.settings import Settings
from pipeline.check.review_wait import TELL_PARENT_PATCH
from pipeline.check.workflow import DocumentCheckWorkflow
from pipeline.models import CheckRequest
from pipeline.models import CheckSummary
from pipeline.review import AWAITS_REVIEW_SIGNAL
from pipeline.review import AwaitsReview
from pipeline.review import ReviewState
from tests.support.checks import start_check
from tests.support.polling import async_wait_for
from tests.support.review_checks import REVIEWED_DOCUMENT
from tests.support.review_checks import CheckHandle
from tests.support.review_checks import ReviewStandIns
from tests.support.review_checks import approval
from tests.support.review_checks import awaiting
from tests.support.review_checks import decide
from tests.support.review_checks import review_status
from tests.support.settings import one_queue

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass(frozen=True)
class _ParentInput:
    check: CheckRequest
    check_id: str
    # Wait for the check's word that it waits for review; else end once it has started.
    wait_for_word: bool


@workflow.defn(name="StandInBulkRecheck", sandboxed=False)
class _StandInBulkRecheck:
    """A parent as a bulk re-check is one: it starts a check that it abandons when it
    ends, and records the word the check sends."""

    def __init__(self) -> None:
        self._told: list[str] = []

    @workflow.signal(name=AWAITS_REVIEW_SIGNAL)
    def awaits_review(self, word: AwaitsReview) -> None:
        self._told.append(word.workflow_id)

    @workflow.run
    async def run(self, input: _ParentInput) -> list[str]:
        await workflow.start_child_workflow(
            DocumentCheckWorkflow.run,
            input.check,
            id=input.check_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        if input.wait_for_word:
            await workflow.wait_condition(lambda: bool(self._told))
        return self._told


def _worker(env: WorkflowEnvironment, settings: Settings, stand_ins: ReviewStandIns) -> Worker:
    return Worker(
        env.client,
        task_queue=settings.temporal.task_queue,
        workflows=[DocumentCheckWorkflow, _StandInBulkRecheck],
        activities=stand_ins.activities(),
    )


async def _events(handle: WorkflowHandle[Any, Any], kind: EventType.ValueType) -> list[Any]:
    history = await handle.fetch_history()
    return [event for event in history.events if event.event_type == kind]


async def _start_child(
    env: WorkflowEnvironment, stand_ins: ReviewStandIns, *, wait_for_word: bool
) -> tuple[WorkflowHandle[Any, list[str]], CheckHandle, Worker]:
    """A check started by the stand-in parent: the parent's handle, the check's, and the
    worker that runs both."""
    settings = one_queue(f"review-{uuid.uuid4()}")
    check_id = f"wf-{uuid.uuid4()}"
    parent = await env.client.start_workflow(
        _StandInBulkRecheck.run,
        _ParentInput(check_request(settings, REVIEWED_DOCUMENT), check_id, wait_for_word),
        id=f"parent-{uuid.uuid4()}",
        task_queue=settings.temporal.task_queue,
    )
    child = env.client.get_workflow_handle(check_id, result_type=CheckSummary)
    return parent, child, _worker(env, settings, stand_ins)


async def test_a_check_tells_the_parent_that_started_it_once_it_waits_for_review(
    env: WorkflowEnvironment,
) -> None:
    parent, check, worker = await _start_child(env, ReviewStandIns(), wait_for_word=True)
    async with worker:
        # The parent ends on the word, while the check still waits.
        assert await parent.result() == [check.id]
        assert (await review_status(check)).state is ReviewState.AWAITING
        await decide(check, approval())
        summary = await check.result()
    assert summary.final_verdict == "pass"
    markers = await _events(check, EventType.EVENT_TYPE_MARKER_RECORDED)
    assert any(TELL_PARENT_PATCH.encode() in m.SerializeToString() for m in markers)


async def test_a_check_whose_parent_has_ended_still_waits_for_its_reviewer(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = ReviewStandIns(hold_check=asyncio.Event())
    parent, check, worker = await _start_child(env, stand_ins, wait_for_word=False)
    async with worker:
        assert await parent.result() == []
        stand_ins.hold_check.set()  # type: ignore[union-attr]
        await awaiting(check)

        async def word_undelivered() -> list[Any] | None:
            kind = EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_FAILED
            return await _events(check, kind) or None

        assert len(await async_wait_for(word_undelivered, 30, "the word to fail")) == 1
        assert (await review_status(check)).state is ReviewState.AWAITING
        await decide(check, approval())
        summary = await check.result()
    assert summary.final_verdict == "pass"


async def test_a_check_without_a_parent_tells_nobody(env: WorkflowEnvironment) -> None:
    settings = one_queue(f"review-{uuid.uuid4()}")
    check = await start_check(
        env.client, settings, REVIEWED_DOCUMENT, workflow_id=f"wf-{uuid.uuid4()}"
    )
    async with _worker(env, settings, ReviewStandIns()):
        await awaiting(check)
        await decide(check, approval())
        await check.result()
    # Its history is as it was before the word: no signal, no marker.
    sent = EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED
    assert not await _events(check, sent)
    markers = await _events(check, EventType.EVENT_TYPE_MARKER_RECORDED)
    assert all(TELL_PARENT_PATCH.encode() not in m.SerializeToString() for m in markers)
