"""DocumentCheckWorkflow's branches, against stand-in activities on the time-skipping server.

The activities are replaced by ones that record their inputs and do what each test needs
(fail, wait, succeed); retries and backoff take no real time here. One test per branch:
a plain check, the object gone mid-check, retries used up, a non-retryable failure, a
cancel, stale and late progress signals, the results event retried.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.check_requests import check_request
from infra.settings import PipelineSettings
from pipeline import search_attributes as sa
from pipeline.check.workflow import DocumentCheckWorkflow
from pipeline.models import CheckDocumentInput
from pipeline.models import CheckPagesInput
from pipeline.models import CheckPagesResult
from pipeline.models import CheckSummary
from pipeline.models import DocumentOutcome
from pipeline.models import DocumentRef
from pipeline.models import FinalizeInput
from pipeline.models import InspectInput
from pipeline.models import InspectResult
from pipeline.models import PagesProgress
from pipeline.models import PublishResultInput
from pipeline.progress import PROGRESS_QUERY
from pipeline.progress import CheckProgress
from pipeline.progress import CheckStep
from tests.support.checks import start_check
from tests.support.inspections import readable_inspection
from tests.support.polling import async_wait_for
from tests.support.settings import one_queue

DOCUMENT = DocumentRef(bucket="documents", key="in/a.pdf", version_id="v1")
PAGES = 300
# One server for the module: the tests share its event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class StandIns:
    """Stand-ins for the activities: each records its inputs; the ``*_errors`` are raised
    by the first calls in turn; the events, when set, hold the activity until they are
    set. ``page_count`` small enough for one chunk makes ``check_document`` write the
    report itself."""

    page_count: int = PAGES
    # check_document sent the results event itself.
    published: bool = False
    inspect_errors: list[Exception] = field(default_factory=list)
    pages_errors: list[Exception] = field(default_factory=list)
    publish_errors: list[Exception] = field(default_factory=list)
    hold_pages: asyncio.Event | None = None
    hold_finalize: asyncio.Event | None = None
    calls: dict[str, list[Any]] = field(default_factory=dict)
    pages_cancelled: bool = False

    def _call(self, name: str, input: Any, errors: list[Exception]) -> None:
        self.calls.setdefault(name, []).append(input)
        if errors:
            raise errors.pop(0)

    def _inspection(self) -> InspectResult:
        return readable_inspection(self.page_count, chunk_pages=25)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="inspect")
        async def inspect(input: InspectInput) -> InspectResult:
            self._call("inspect", input, self.inspect_errors)
            return self._inspection()

        @activity.defn(name="check_document")
        async def check_document(input: CheckDocumentInput) -> DocumentOutcome:
            self._call("check_document", input, self.inspect_errors)
            inspection = self._inspection()
            if inspection.page_count > inspection.plan.chunk_pages:
                return DocumentOutcome(inspection=inspection)
            summary = CheckSummary(
                document_id=input.document.document_id,
                verdict="pass",
                page_count=inspection.page_count,
            )
            return DocumentOutcome(
                summary=summary, pages_checked=inspection.page_count, published=self.published
            )

        @activity.defn(name="check_pages")
        async def check_pages(input: CheckPagesInput) -> CheckPagesResult:
            self._call("check_pages", input, self.pages_errors)
            try:
                while self.hold_pages is not None and not self.hold_pages.is_set():
                    activity.heartbeat()
                    await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                self.pages_cancelled = True
                raise
            return CheckPagesResult(
                pages_checked=PAGES, chunks=12, chunk_pages=25, first_page_this_attempt=1, attempt=2
            )

        @activity.defn(name="finalize")
        async def finalize(input: FinalizeInput) -> CheckSummary:
            self._call("finalize", input, [])
            if self.hold_finalize is not None:
                await self.hold_finalize.wait()
            problem = input.inspection.problem
            return CheckSummary(
                document_id=input.document.document_id,
                verdict="reject" if problem else "pass",
                reasons=[problem] if problem else [],
                page_count=input.inspection.page_count,
            )

        @activity.defn(name="publish_result")
        async def publish_result(input: PublishResultInput) -> None:
            self._call("publish_result", input, self.publish_errors)

        return [inspect, check_document, check_pages, finalize, publish_result]


@dataclass
class Check:
    handle: WorkflowHandle[Any, CheckSummary]
    worker: Worker


def _worker(env: WorkflowEnvironment, stand_ins: StandIns, queue: str) -> Worker:
    return Worker(
        env.client,
        task_queue=queue,
        workflows=[DocumentCheckWorkflow],
        activities=stand_ins.activities(),
        # As docpipe's workers do: a cancel arrives with the next heartbeat sent.
        max_heartbeat_throttle_interval=timedelta(seconds=PipelineSettings().heartbeat_throttle_s),
    )


async def _start(env: WorkflowEnvironment, stand_ins: StandIns) -> Check:
    """A check started as the intake starts one (search attributes and all), on a queue
    of its own, allowed two attempts per activity; its worker not yet running."""
    queue = f"workflow-{uuid.uuid4()}"
    handle = await start_check(
        env.client, one_queue(queue), DOCUMENT, workflow_id=f"wf-{uuid.uuid4()}", max_attempts=2
    )
    return Check(handle, _worker(env, stand_ins, queue))


async def _run(env: WorkflowEnvironment, stand_ins: StandIns) -> CheckSummary:
    check = await _start(env, stand_ins)
    async with check.worker:
        return await check.handle.result()


async def _failure(env: WorkflowEnvironment, stand_ins: StandIns) -> str:
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(env, stand_ins)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CheckFailed"
    return cause.message


async def test_a_check_that_works_runs_every_step_once(env: WorkflowEnvironment) -> None:
    stand_ins = StandIns()
    summary = await _run(env, stand_ins)
    assert summary.verdict == "pass"
    assert {name: len(inputs) for name, inputs in stand_ins.calls.items()} == {
        "check_document": 1,
        "check_pages": 1,
        "finalize": 1,
        "publish_result": 1,
    }
    (finalized,) = stand_ins.calls["finalize"]
    assert finalized.pages is not None and finalized.pages.pages_checked == PAGES


async def test_an_object_gone_mid_check_is_finalized_as_a_report(env: WorkflowEnvironment) -> None:
    gone = ApplicationError(
        "documents/in/a.pdf@v1: NoSuchVersion", type="object_missing", non_retryable=True
    )
    stand_ins = StandIns(pages_errors=[gone])
    summary = await _run(env, stand_ins)
    assert summary.verdict == "reject" and summary.reasons == ["object_missing"]
    (finalized,) = stand_ins.calls["finalize"]
    assert finalized.pages is None
    assert finalized.inspection.problem == "object_missing"
    assert finalized.inspection.problem_detail == "documents/in/a.pdf@v1: NoSuchVersion"
    assert len(stand_ins.calls["publish_result"]) == 1


async def test_retries_used_up_fail_the_check_counting_them(env: WorkflowEnvironment) -> None:
    down: list[Exception] = [RuntimeError("S3 is down")] * 2
    stand_ins = StandIns(inspect_errors=down)
    message = await _failure(env, stand_ins)
    # The step that failed is named as it is: check_document (checks begun before it
    # named inspect, which they ran).
    assert message.startswith(f"check_document of {DOCUMENT.document_id} failed 2 times")
    assert "RuntimeError: S3 is down" in message
    assert f"`docpipe reprocess {DOCUMENT.document_id}`" in message
    assert len(stand_ins.calls["check_document"]) == 2 and "finalize" not in stand_ins.calls


async def test_a_non_retryable_failure_says_so_and_names_its_attempt(
    env: WorkflowEnvironment,
) -> None:
    unusable = ApplicationError(
        "s3://results/r/a/pages/0000001.jsonl holds pages 1-100, not pages 1-25: it was not "
        "written by this check",
        {"attempt": 2},
        type="result_unusable",
        non_retryable=True,
    )
    stand_ins = StandIns(pages_errors=[RuntimeError("a worker was lost"), unusable])
    message = await _failure(env, stand_ins)
    assert message.startswith(
        f"check_pages of {DOCUMENT.document_id} failed with an error that retrying cannot "
        "fix (on attempt 2)"
    )
    assert "holds pages 1-100, not pages 1-25" in message
    # Not the advice for infrastructure failures, nor a count of retries never made.
    assert "S3 access" not in message and "attempts" not in message


async def _progress(handle: WorkflowHandle[Any, CheckSummary]) -> CheckProgress:
    return await handle.query(DocumentCheckWorkflow.progress)


async def _step(check: Check, step: CheckStep) -> bool:
    return (await _progress(check.handle)).step is step


async def test_a_cancelled_check_ends_cancelled_after_its_page_check_stopped(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns(hold_pages=asyncio.Event())
    check = await _start(env, stand_ins)
    async with check.worker:
        await async_wait_for(lambda: _step(check, CheckStep.CHECK_PAGES), 30, "the page check")
        await check.handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await check.handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    # The workflow waited for the activity to stop (WAIT_CANCELLATION_COMPLETED).
    assert stand_ins.pages_cancelled
    assert "finalize" not in stand_ins.calls and "publish_result" not in stand_ins.calls


async def test_stale_and_late_progress_signals_change_nothing(env: WorkflowEnvironment) -> None:
    pages_done, report_done = asyncio.Event(), asyncio.Event()
    stand_ins = StandIns(hold_pages=pages_done, hold_finalize=report_done)
    check = await _start(env, stand_ins)
    handle = check.handle
    async with check.worker:
        await async_wait_for(lambda: _step(check, CheckStep.CHECK_PAGES), 30, "the page check")
        for pages, attempt, first in (
            (100, 1, 1),
            (50, 1, 1),  # stale: fewer pages than already reported
            (150, 2, 126),  # a newer attempt, resumed further on
            (250, 1, 1),  # stale: an older attempt
            (200, 2, 126),
        ):
            await handle.signal(
                DocumentCheckWorkflow.pages_progress,
                PagesProgress(pages_checked=pages, attempt=attempt, resumed_from_page=first),
            )

        async def reported() -> bool:
            return (await _progress(handle)).pages_checked == 200

        await async_wait_for(reported, 30, "the last progress signal")
        progress = await _progress(handle)
        assert (progress.attempt, progress.resumed_from_page) == (2, 126)
        pages_done.set()
        await async_wait_for(lambda: _step(check, CheckStep.FINALIZE), 30, "the report")
        # Late: page checking is over; the count is the activity's result now.
        await handle.signal(
            DocumentCheckWorkflow.pages_progress,
            PagesProgress(pages_checked=9999, attempt=3, resumed_from_page=1),
        )
        report_done.set()
        await handle.result()
        assert (await _progress(handle)).pages_checked == PAGES
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    # The start carried 0, as the intake's starts do; each count that moved on followed.
    pages_checked = [int(started.search_attributes.indexed_fields[sa.PAGES_CHECKED.name].data)]
    pages_checked += [
        int(fields[sa.PAGES_CHECKED.name])
        for fields in _upserts(history)
        if sa.PAGES_CHECKED.name in fields
    ]
    assert pages_checked == [0, 100, 150, 200, PAGES]


async def test_the_results_event_is_retried_until_it_is_sent(env: WorkflowEnvironment) -> None:
    broker_down: list[Exception] = [RuntimeError("no broker")] * 3
    stand_ins = StandIns(publish_errors=broker_down)
    summary = await _run(env, stand_ins)
    assert summary.verdict == "pass"
    # Retried past the check's own attempt limit (2): the report is written, only the
    # announcement waits for the broker.
    assert len(stand_ins.calls["publish_result"]) == 4
    assert len(stand_ins.calls["finalize"]) == 1


def _upserts(history: Any) -> list[dict[str, bytes]]:
    upserts = [
        event.upsert_workflow_search_attributes_event_attributes.search_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    return [{name: value.data for name, value in u.indexed_fields.items()} for u in upserts]


async def test_a_small_document_is_one_activity_and_the_results_event(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns(page_count=3)
    check = await _start(env, stand_ins)
    handle = check.handle
    async with check.worker:
        summary = await handle.result()
        # A client reads the query as the value it is, by reference or by name; readers of
        # its JSON see the same field names as ever.
        done = CheckProgress(step=CheckStep.DONE, page_count=3, pages_checked=3)
        assert await handle.query(DocumentCheckWorkflow.progress) == done
        assert await handle.query(PROGRESS_QUERY, result_type=CheckProgress) == done
        assert await handle.query(PROGRESS_QUERY) == {
            "step": "done",
            "page_count": 3,
            "pages_checked": 3,
            "attempt": 0,
            "resumed_from_page": 0,
        }
    assert summary.verdict == "pass" and summary.page_count == 3
    assert {name: len(inputs) for name, inputs in stand_ins.calls.items()} == {
        "check_document": 1,
        "publish_result": 1,
    }
    history = await handle.fetch_history()
    # A lost worker's check_document is given up as soon as a page check's by default.
    (scheduled,) = [
        event.activity_task_scheduled_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "check_document"
    ]
    assert scheduled.heartbeat_timeout.ToTimedelta() == timedelta(seconds=30)
    # One upsert, at the end, with the page count: the start carried the others.
    # (The version marker upserts Temporal's own TemporalChangeVersion.)
    (upsert,) = [u for u in _upserts(history) if sa.STATUS.name in u]
    assert int(upsert[sa.PAGE_COUNT.name]) == 3 and int(upsert[sa.PAGES_CHECKED.name]) == 3
    assert sa.BUCKET.name not in upsert
    described = (await handle.describe()).typed_search_attributes
    assert described.get(sa.STATUS) == sa.PASSED
    assert described.get(sa.BUCKET) == DOCUMENT.bucket


async def test_a_small_document_whose_event_is_sent_is_one_activity(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns(page_count=3, published=True)
    summary = await _run(env, stand_ins)
    assert summary.page_count == 3
    assert {name: len(inputs) for name, inputs in stand_ins.calls.items()} == {"check_document": 1}


async def test_a_check_started_without_search_attributes_sets_them(
    env: WorkflowEnvironment,
) -> None:
    stand_ins = StandIns(page_count=3)
    queue = f"workflow-{uuid.uuid4()}"
    # Started bare, as checks were before their start carried search attributes: no
    # check is started this way now, so not through the one way tests start checks.
    request = dataclasses.replace(check_request(one_queue(queue), DOCUMENT), max_attempts=2)
    handle = await env.client.start_workflow(
        DocumentCheckWorkflow.run, request, id=f"wf-{uuid.uuid4()}", task_queue=queue
    )
    async with _worker(env, stand_ins, queue):
        await handle.result()
    first, last = [u for u in _upserts(await handle.fetch_history()) if sa.STATUS.name in u]
    assert sa.BUCKET.name in first and sa.PAGE_COUNT.name in last
