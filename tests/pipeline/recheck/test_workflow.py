"""RecheckWorkflow with re-checks that wait for review, against stand-in activities on the
dev server (no time needs skipping here, and the time-skipping server once hung on a
cancelled child that waited for review: ``tests/support/workflow_servers.py``): the bulk
re-check supersedes the document's waiting checks, counts a re-check done at its report,
leaves it waiting when it ends, and when cancelled stops the re-checks that are still
checking, and only those."""

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
from temporalio.client import WorkflowExecutionStatus
from temporalio.client import WorkflowFailureError
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pipeline.check.takeover import SupersededChecks
from pipeline.check.takeover import SupersedeInput
from pipeline.check.workflow import DocumentCheckWorkflow
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.recheck.models import ComparePageInput
from pipeline.recheck.models import ListMatchesInput
from pipeline.recheck.models import Match
from pipeline.recheck.models import MatchPage
from pipeline.recheck.models import PageComparison
from pipeline.recheck.models import RecheckOutcome
from pipeline.recheck.models import RecheckRequest
from pipeline.recheck.models import RecheckResult
from pipeline.recheck.models import RecheckSelection
from pipeline.recheck.models import WriteDiffInput
from pipeline.recheck.workflow import RecheckWorkflow
from pipeline.review import ReviewState
from tests.support.polling import async_wait_for
from tests.support.review_checks import CheckHandle
from tests.support.review_checks import ReviewStandIns
from tests.support.review_checks import approval
from tests.support.review_checks import awaiting
from tests.support.review_checks import decide
from tests.support.review_checks import review_status

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def env(dev_server: WorkflowEnvironment) -> WorkflowEnvironment:
    """The dev server, not the time-skipping one (``local_environment`` says why)."""
    return dev_server


def _match(key: str) -> Match:
    document = DocumentRef(bucket="documents", key=key, version_id="v1")
    return Match(
        document=document, results_bucket="results", results_prefix=f"r/{document.document_id}"
    )


@dataclass
class RecheckStandIns:
    """The bulk re-check's activities: ``matches`` is the one page; every call recorded."""

    matches: list[Match]
    calls: dict[str, list[Any]] = field(default_factory=dict)
    # Raised by the first ``supersede_waiting`` calls in turn.
    supersede_errors: list[Exception] = field(default_factory=list)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="list_matches")
        async def list_matches(input: ListMatchesInput) -> MatchPage:
            return MatchPage(matches=self.matches, next_cursor=None)

        @activity.defn(name="supersede_waiting")
        async def supersede_waiting(input: SupersedeInput) -> SupersededChecks:
            self.calls.setdefault("supersede_waiting", []).append(input)
            if self.supersede_errors:
                raise self.supersede_errors.pop(0)
            return SupersededChecks(workflow_ids=[input.check_workflow_id])

        @activity.defn(name="compare_page")
        async def compare_page(input: ComparePageInput) -> PageComparison:
            self.calls.setdefault("compare_page", []).append(input)
            return PageComparison(documents=len(input.outcomes), changed=0)

        @activity.defn(name="write_diff")
        async def write_diff(input: WriteDiffInput) -> str:
            return "r/_rechecks/diff.json"

        return [list_matches, supersede_waiting, compare_page, write_diff]


@dataclass
class BulkRecheck:
    recheck_id: str
    queue: str
    checks: ReviewStandIns
    rechecks: RecheckStandIns
    rate_per_s: float = 5.0
    ocr_task_queue: str = ""

    def worker(self, env: WorkflowEnvironment) -> Worker:
        return Worker(
            env.client,
            task_queue=self.queue,
            workflows=[RecheckWorkflow, DocumentCheckWorkflow],
            activities=[*self.checks.activities(takeover=False), *self.rechecks.activities()],
            # A cancel reaches an activity with its next heartbeat sent: soon.
            max_heartbeat_throttle_interval=timedelta(seconds=0.2),
        )

    async def start(self, env: WorkflowEnvironment) -> WorkflowHandle[Any, RecheckResult]:
        request = RecheckRequest(
            recheck_id=self.recheck_id,
            selection=RecheckSelection(bucket="documents", prefix="in/"),
            results_bucket="results",
            results_root="r",
            page_task_queue=self.queue,
            ocr_task_queue=self.ocr_task_queue,
            rate_per_s=self.rate_per_s,
        )
        return await env.client.start_workflow(
            RecheckWorkflow.run,
            request,
            id=f"docpipe-recheck/{self.recheck_id}-{uuid.uuid4().hex[:6]}",
            task_queue=self.queue,
        )

    def recheck_of(self, env: WorkflowEnvironment, match: Match) -> CheckHandle:
        workflow_id = match.recheck_workflow_id(self.recheck_id, hashed=False)
        return env.client.get_workflow_handle(workflow_id, result_type=CheckSummary)


def _bulk(
    matches: list[Match], checks: ReviewStandIns | None = None, rate_per_s: float = 5.0
) -> BulkRecheck:
    run = uuid.uuid4().hex[:8]
    return BulkRecheck(
        recheck_id=f"rc-{run}",
        queue=f"recheck-{run}",
        checks=checks or ReviewStandIns(),
        rechecks=RecheckStandIns(matches),
        rate_per_s=rate_per_s,
    )


async def test_a_bulk_recheck_ends_while_its_recheck_waits_for_review(
    env: WorkflowEnvironment,
) -> None:
    match = _match("in/letter.pdf")
    bulk = _bulk([match])
    async with bulk.worker(env):
        result = await (await bulk.start(env)).result()
        recheck = bulk.recheck_of(env, match)
        # The bulk re-check is done; its re-check still waits for a reviewer.
        assert result.totals.rechecked == 1 and result.totals.failed == 0
        assert (await review_status(recheck)).state is ReviewState.AWAITING
        (superseding,) = bulk.rechecks.calls["supersede_waiting"]
        assert superseding == SupersedeInput(
            check_workflow_id=match.document.check_workflow_id(False),
            recheck_workflow_id=recheck.id,
        )
        (compared,) = bulk.rechecks.calls["compare_page"]
        assert [o.outcome for o in compared.outcomes] == [RecheckOutcome.RECHECKED]

        await decide(recheck, approval())
        summary = await recheck.result()
        # The same recheck ID again re-checks nothing and supersedes nothing.
        again = await (await bulk.start(env)).result()
        assert again.totals.already == 1 and again.totals.rechecked == 0
        assert len(bulk.rechecks.calls["supersede_waiting"]) == 1
    assert summary.final_verdict == "pass" and summary.review_state == ReviewState.DECIDED


async def test_its_rechecks_read_scans_on_the_ocr_queue_as_any_check_does(
    env: WorkflowEnvironment,
) -> None:
    match = _match("in/scan.pdf")
    bulk = dataclasses.replace(_bulk([match]), ocr_task_queue="nobody-reads-here")
    async with bulk.worker(env):
        await (await bulk.start(env)).result()
    (checked,) = bulk.checks.calls["check_document"]
    # Scanned pages are left to the OCR queue's workers.
    assert checked.ocr_elsewhere


async def test_cancelling_a_bulk_recheck_stops_the_rechecks_still_checking_only(
    env: WorkflowEnvironment,
) -> None:
    waiting, checking = _match("in/waits.pdf"), _match("in/checks.pdf")
    hold = asyncio.Event()
    checks = ReviewStandIns(hold_check=hold, held={checking.document.document_id})
    bulk = _bulk([waiting, checking], checks)
    async with bulk.worker(env):
        handle = await bulk.start(env)
        waits, still_checking = bulk.recheck_of(env, waiting), bulk.recheck_of(env, checking)

        async def both_checking() -> bool | None:
            started = {c.document for c in checks.calls.get("check_document", [])}
            return True if started == {waiting.document, checking.document} else None

        await async_wait_for(both_checking, 30, "both re-checks to check their documents")
        await awaiting(waits)

        async def superseded_for_the_reported() -> bool | None:
            return True if bulk.rechecks.calls.get("supersede_waiting") else None

        await async_wait_for(superseded_for_the_reported, 30, "the waiting re-check to take over")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as ended:
            await handle.result()
        assert isinstance(ended.value.cause, CancelledError)

        stopped = await still_checking.describe()
        assert stopped.status == WorkflowExecutionStatus.CANCELED
        assert checks.cancelled == [checking.document.document_id]
        # Only the re-check that was reported took over: the checks of the document
        # whose re-check was cancelled still wait for their reviewer.
        told = [call.check_workflow_id for call in bulk.rechecks.calls["supersede_waiting"]]
        assert told == [waiting.document.check_workflow_id(False)]
        # The bulk re-check ended once the re-check it cancelled had stopped.
        parent = await handle.describe()
        assert stopped.close_time and parent.close_time
        assert stopped.close_time <= parent.close_time
        # The one that waits for a reviewer stays waiting.
        assert (await waits.describe()).status == WorkflowExecutionStatus.RUNNING
        assert (await review_status(waits)).state is ReviewState.AWAITING
        await decide(waits, approval())
        assert (await waits.result()).final_verdict == "pass"

        # The same recheck ID again finishes what the cancel left: the re-check it
        # cancelled runs again, the one that completed does not.
        hold.set()
        again = await (await bulk.start(env)).result()
        assert (again.totals.rechecked, again.totals.already) == (1, 1)
        rerun = await still_checking.describe()
        assert rerun.run_id != stopped.run_id
        assert [c.document for c in checks.calls["check_document"]].count(checking.document) == 2
        await decide(still_checking, approval())
        assert (await still_checking.result()).final_verdict == "pass"


async def test_a_supersede_that_fails_for_good_fails_the_bulk_recheck_and_a_rerun_finishes_it(
    env: WorkflowEnvironment,
) -> None:
    match = _match("in/refused.pdf")
    bulk = _bulk([match])
    bulk.rechecks.supersede_errors.append(
        ApplicationError("visibility refused", type="RPCError", non_retryable=True)
    )
    async with bulk.worker(env):
        with pytest.raises(WorkflowFailureError) as failed:
            await (await bulk.start(env)).result()
        assert "visibility refused" in str(failed.value.cause.__cause__)
        recheck = bulk.recheck_of(env, match)
        # The re-check was reported and waited, but could not take over: it stepped back
        # (cancelled), and the document's checks that wait go on waiting.
        cancelled = await recheck.describe()
        assert cancelled.status == WorkflowExecutionStatus.CANCELED

        again = await (await bulk.start(env)).result()
        assert (again.totals.rechecked, again.totals.already, again.totals.failed) == (1, 0, 0)
        assert len(bulk.rechecks.calls["supersede_waiting"]) == 2
        assert (await review_status(recheck)).state is ReviewState.AWAITING
        await decide(recheck, approval())
        assert (await recheck.result()).final_verdict == "pass"


async def test_a_bulk_recheck_cancelled_between_two_starts_stops_the_recheck_it_started(
    env: WorkflowEnvironment,
) -> None:
    checking, later = _match("in/first.pdf"), _match("in/later.pdf")
    checks = ReviewStandIns(hold_check=asyncio.Event())
    # One start an hour: the second waits for its turn when the cancel comes.
    bulk = _bulk([checking, later], checks, rate_per_s=1 / 3600)
    async with bulk.worker(env):
        handle = await bulk.start(env)

        async def first_checking() -> bool | None:
            return True if checks.calls.get("check_document") else None

        await async_wait_for(first_checking, 30, "the first re-check to check its document")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        stopped = await bulk.recheck_of(env, checking).describe()
    assert stopped.status == WorkflowExecutionStatus.CANCELED
    assert checks.cancelled == [checking.document.document_id]
    assert [c.document for c in checks.calls["check_document"]] == [checking.document]


async def test_a_recheck_that_fails_takes_over_from_no_waiting_check(
    env: WorkflowEnvironment,
) -> None:
    fails, waits = _match("in/fails.pdf"), _match("in/waits.pdf")
    bulk = _bulk([fails, waits], ReviewStandIns(failing={fails.document.document_id}))
    async with bulk.worker(env):
        result = await (await bulk.start(env)).result()
        assert (result.totals.failed, result.totals.rechecked) == (1, 1)
        told = [call.check_workflow_id for call in bulk.rechecks.calls["supersede_waiting"]]
        assert told == [waits.document.check_workflow_id(False)]
        await decide(bulk.recheck_of(env, waits), approval())
