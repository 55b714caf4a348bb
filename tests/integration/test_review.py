"""Human review on the real stack: a check waits for a decision, durably; the queue lists
it; a decision is recorded once in the history and in decision.json."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.client import WorkflowHandle
from temporalio.client import WorkflowUpdateFailedError

from app.review import decide_matching
from app.review_queue import ReviewRefusedError
from app.review_queue import decide
from app.review_queue import reported_awaiting_review
from app.review_queue import review_item
from app.review_queue import waiting_reviews
from infra.check_requests import check_request
from infra.check_requests import intake_lane
from infra.clients import s3_client
from infra.ports import free_ports
from infra.settings import Settings
from pipeline import search_attributes as sa
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.models import recheck_results_prefix
from pipeline.models import recheck_workflow_id
from pipeline.review import REVIEW_UPDATE
from pipeline.review import SUPERSEDED_SIGNAL
from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision
from pipeline.review import ReviewOutcome
from pipeline.review import ReviewState
from pipeline.review_visibility import supersede_waiting
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.commands import docpipe_cli
from tests.support.crashes import freeze_worker
from tests.support.crashes import kill_worker
from tests.support.crashes import thaw_worker
from tests.support.intake import upload
from tests.support.metrics import metric_samples
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.reports import read_topic
from tests.support.review_checks import approval
from tests.support.review_checks import awaiting
from tests.support.review_checks import review_status
from tests.support.review_checks import start_waiting_check
from tests.support.settings import with_review

Handle = WorkflowHandle[Any, CheckSummary]
pytestmark = pytest.mark.slow


def _put(settings: Settings, key: str, pages: list[str]) -> DocumentRef:
    return upload(settings, key, make_pdf(pages))


def _decision_file(settings: Settings, outcome: ReviewOutcome) -> dict[str, Any]:
    body = (
        s3_client(settings.s3)
        .get_object(Bucket=outcome.decision_bucket, Key=outcome.decision_key)["Body"]
        .read()
    )
    stored: dict[str, Any] = json.loads(body)
    return stored


def _completed_activities(history: Any, name: str) -> int:
    scheduled = {
        event.event_id: event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and scheduled[event.activity_task_completed_event_attributes.scheduled_event_id] == name
    )


async def _refused(client: Client, handle: Handle, decision: ReviewDecision) -> str:
    with pytest.raises(ReviewRefusedError) as refused:
        await decide(client, handle.id, decision)
    return str(refused.value)


async def test_a_waiting_check_is_listed_shown_and_decided_once(
    reviewing: Settings, client: Client
) -> None:
    run = uuid.uuid4().hex[:8]
    document = _put(reviewing, f"review-{run}/letter.pdf", ["text", "blank"])
    # Started as the intake starts it: in its tenant's fair share.
    lane = intake_lane(reviewing, document)
    handle = await start_check(client, reviewing, document, priority=lane)
    status = await awaiting(handle)
    assert status.reasons == ["blank_pages"] and status.verdict == "review"

    async def listed() -> list[Any] | None:
        rows = await waiting_reviews(client, reviewing, prefix=f"review-{run}/")
        return rows or None

    (row,) = await async_wait_for(listed, 30, "the queue to list the check")
    assert row.workflow_id == handle.id and row.reasons == ["blank_pages"]
    assert row.page_count == 2 and not row.overdue
    prefix = f"review-{run}/"
    assert await waiting_reviews(client, reviewing, prefix=prefix, reason="needs_ocr") == []
    assert await waiting_reviews(client, reviewing, prefix=prefix, min_age=timedelta(days=1)) == []
    (aged,) = await waiting_reviews(client, reviewing, prefix=prefix, min_age=timedelta(0))
    assert aged.workflow_id == handle.id
    assert await waiting_reviews(client, reviewing, prefix=prefix, tenant="nobody") == []
    assert lane.fairness_key == f"{document.bucket}/review-{run}"
    (tenants,) = await waiting_reviews(client, reviewing, prefix=prefix, tenant=lane.fairness_key)
    assert tenants.workflow_id == handle.id
    waiting = docpipe_cli(reviewing, "status", handle.id)
    assert "verdict   review  blank_pages" in waiting
    assert "review    awaiting a decision since" in waiting
    assert "verdict   REVIEW" in docpipe_cli(reviewing, "report", handle.id)
    assert handle.id in docpipe_cli(reviewing, "review", "list", "--prefix", f"review-{run}/")
    item = await review_item(client, reviewing, handle.id)
    assert [(p.page, p.reasons) for p in item.pages] == [(2, ["blank_pages"])]
    assert item.document == document

    outcome = await decide(client, handle.id, approval("d-first"))
    # The same decision again, running and ended, is the first outcome.
    assert await decide(client, handle.id, approval("d-first")) == outcome
    summary = await handle.result()
    assert summary.decision == outcome and summary.final_verdict == "pass"
    assert await decide(client, handle.id, approval("d-first")) == outcome
    second = await _refused(client, handle, approval("d-second", reviewer="bo"))
    assert "already decided: approve by ana" in second

    stored = _decision_file(reviewing, outcome)
    assert stored["schema_version"] == 1 and stored["decision"]["decision_id"] == "d-first"
    assert stored["final_verdict"] == "pass" and stored["report_verdict"] == "review"
    assert outcome.decision_key == summary.report_key.replace("report.json", "decision.json")
    described = (await handle.describe()).typed_search_attributes
    assert described.get(sa.STATUS) == sa.APPROVED
    assert _completed_activities(await handle.fetch_history(), "write_decision") == 1
    # The result, then the decision, under the document's key; the note stays out.
    records = await read_topic(reviewing, reviewing.kafka.results_topic, count=2)
    events = [json.loads(r.value) for r in records if r.key == document.document_id.encode()]
    assert [e.get("final_verdict") for e in events] == [None, "pass"]
    announced = events[1]["review"]
    assert announced["state"] == "decided" and "note" not in announced["outcome"]["decision"]
    assert "review    pass after review: approve by ana" in docpipe_cli(
        reviewing, "status", handle.id
    )
    report = docpipe_cli(reviewing, "report", document.document_id)
    assert "decision  PASS after review: approve by ana" in report
    assert "note: looked fine" in report


async def test_the_check_refuses_each_decision_it_cannot_take(
    reviewing: Settings, client: Client
) -> None:
    run = uuid.uuid4().hex[:8]
    passing = await start_check(client, reviewing, _put(reviewing, f"ok-{run}/a.pdf", ["text"]))
    assert (await passing.result()).verdict == "pass"
    assert "does not wait" in await _refused(client, passing, approval("d-0"))

    handle = await start_waiting_check(
        client, reviewing, _put(reviewing, f"rv-{run}/a.pdf", ["blank"])
    )
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update(
            REVIEW_UPDATE, {"decision_id": "d-x", "action": "maybe", "reviewer": "ana"}, id="d-x"
        )
    assert "unknown action 'maybe'" in str(unknown.value.cause)
    reject = ReviewDecision(decision_id="d-1", action=ReviewAction.REJECT, reviewer="ana")
    assert "needs a reason" in await _refused(client, handle, reject)
    other = ReviewDecision(
        decision_id="d-2", action=ReviewAction.REJECT, reviewer="ana", reject_reason="other"
    )
    assert "needs a note" in await _refused(client, handle, other)
    assert (await review_status(handle)).state is ReviewState.AWAITING
    rejected = ReviewDecision(
        decision_id="d-3",
        action=ReviewAction.REJECT,
        reviewer="ana",
        reject_reason="illegible",
    )
    outcome = await decide(client, handle.id, rejected)
    assert outcome.final_verdict == "reject"
    assert "already decided: reject by ana" in await _refused(client, handle, approval("d-4"))
    assert (await handle.result()).final_verdict == "reject"
    described = (await handle.describe()).typed_search_attributes
    assert described.get(sa.STATUS) == sa.REJECTED


async def test_a_check_that_waits_for_some_of_its_reasons_is_reported_with_all_of_them(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    # Blank pages do not wait for a decision here; a scan that is not read (OCR off) does.
    scans_wait = dataclasses.replace(
        with_review(settings, off=("blank_pages",)),
        ocr=dataclasses.replace(settings.ocr, enabled=False),
    )
    start_component(["worker"], scans_wait)
    document = _put(settings, f"some-{uuid.uuid4().hex[:8]}/scan.pdf", ["text", "image", "blank"])
    handle = await start_waiting_check(client, scans_wait, document)
    status = await review_status(handle)
    assert status.reasons == ["needs_ocr"]
    summary = await reported_awaiting_review(client, scans_wait, handle.id)
    assert summary is not None
    # What `docpipe reprocess --wait` and `docpipe demo` print of a waiting check: the
    # reasons its report has, not only those it waits for.
    assert (summary.verdict, summary.reasons) == ("review", ["blank_pages", "needs_ocr"])
    assert (summary.document_id, summary.page_count) == (document.document_id, 3)
    assert (summary.report_bucket, summary.report_key) == (status.report_bucket, status.report_key)
    assert summary.review_state == ReviewState.AWAITING


async def test_a_reprocess_supersedes_the_waiting_check(
    reviewing: Settings, client: Client
) -> None:
    document = _put(reviewing, f"sup-{uuid.uuid4().hex[:8]}/a.pdf", ["text", "blank"])
    old = await start_waiting_check(client, reviewing, document)
    # --wait returns once the new check is reported and waits for review in turn.
    shown = docpipe_cli(reviewing, "reprocess", document.document_id, "--wait")
    assert "verdict   review  blank_pages" in shown and "review    awaiting a decision" in shown
    (new_id,) = [line.split()[1] for line in shown.splitlines() if line.startswith("  workflow")]
    summary = await old.result()
    assert summary.review_state == "superseded" and summary.superseded_by == new_id
    status = await review_status(old)
    assert status.state is ReviewState.SUPERSEDED
    assert (await old.describe()).typed_search_attributes.get(sa.STATUS) == sa.SUPERSEDED
    new = client.get_workflow_handle(new_id, result_type=CheckSummary)
    await awaiting(new)
    assert "superseded" in await _refused(client, old, approval("d-late"))


async def test_a_reprocess_that_is_never_reported_takes_nothing_from_the_waiting_check(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    reviewing = with_review(settings)
    worker = start_component(["worker"], reviewing)
    document = _put(reviewing, f"unreported-{uuid.uuid4().hex[:8]}/a.pdf", ["text", "blank"])
    old = await start_waiting_check(client, reviewing, document)
    # The re-check can do nothing while the only worker is frozen; it ends unreported.
    freeze_worker(worker)
    try:
        shown = docpipe_cli(reviewing, "reprocess", document.document_id)
        (new_id,) = [
            line.split()[1] for line in shown.splitlines() if line.startswith("  workflow")
        ]
        await client.get_workflow_handle(new_id).terminate("never reported")
    finally:
        thaw_worker(worker)
    signals = [
        event.workflow_execution_signaled_event_attributes.signal_name
        async for event in old.fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert SUPERSEDED_SIGNAL not in signals
    assert (await review_status(old)).state is ReviewState.AWAITING
    assert (await old.describe()).typed_search_attributes.get(sa.STATUS) == sa.AWAITING_REVIEW


async def test_a_check_superseded_while_it_still_checks_ends_superseded_at_its_report(
    reviewing: Settings, client: Client, start_component: StartComponent
) -> None:
    run = uuid.uuid4().hex[:8]
    # More pages than one chunk, with a blank one: its verdict asks for review. Its pages
    # go to a queue no worker polls yet: it is still checking when it is reprocessed.
    document = _put(reviewing, f"sup-early-{run}/long.pdf", ["text"] * 24 + ["blank"])
    temporal = dataclasses.replace(reviewing.temporal, page_task_queue=f"nobody-{run}")
    stuck = dataclasses.replace(reviewing, temporal=temporal)
    old = await start_check(client, stuck, document)
    shown = docpipe_cli(reviewing, "reprocess", document.document_id, "--wait")
    (new_id,) = [line.split()[1] for line in shown.splitlines() if line.startswith("  workflow")]
    new = client.get_workflow_handle(new_id, result_type=CheckSummary)
    await awaiting(new)

    start_component(["worker"], stuck)  # the old check's pages are checked now

    async def reported() -> bool | None:
        return None if (await review_status(old)).state is ReviewState.NOT_WAITING else True

    await async_wait_for(reported, 120, "the old check to be reported")
    status = await review_status(old)
    assert status.state is ReviewState.SUPERSEDED and status.superseded_by == new_id
    summary = await old.result()
    assert summary.verdict == "review" and summary.review_state == "superseded"
    assert (await review_status(new)).state is ReviewState.AWAITING


async def test_a_check_takes_over_only_from_checks_of_its_document_that_started_before_it(
    reviewing: Settings, client: Client
) -> None:
    document = _put(reviewing, f"sup-order-{uuid.uuid4().hex[:8]}/a.pdf", ["text", "blank"])
    older = await start_waiting_check(client, reviewing, document)
    # A re-check: once reported, it takes over from the older check, then waits itself.
    prefix = check_request(reviewing, document).results_prefix
    newer = await start_waiting_check(
        client,
        reviewing,
        document,
        workflow_id=recheck_workflow_id(older.id, 1),
        results_prefix=recheck_results_prefix(prefix, 1),
    )
    assert (await older.result()).superseded_by == newer.id
    # Two that take over at once: the older one's turn, late, tells no newer check.
    assert await supersede_waiting(client, older.id, older.id) == []
    assert await supersede_waiting(client, older.id, newer.id) == []
    assert (await review_status(newer)).state is ReviewState.AWAITING


@pytest.mark.timeout(600)
async def test_bulk_approval_of_twenty_checks_and_its_rerun_deciding_nothing(
    reviewing: Settings, client: Client
) -> None:
    run = uuid.uuid4().hex[:8]
    handles = [
        await start_check(client, reviewing, _put(reviewing, f"bulk-{run}/{n}.pdf", ["blank"]))
        for n in range(20)
    ]
    for handle in handles:
        await awaiting(handle, 240)
    query = f"{sa.OBJECT_KEY.name} STARTS_WITH 'bulk-{run}/'"

    async def all_listed() -> bool:
        return len(await waiting_reviews(client, reviewing, prefix=f"bulk-{run}/", limit=100)) == 20

    await async_wait_for(all_listed, 60, "visibility to list the 20 waiting checks")
    template = ReviewDecision(
        decision_id="", action=ReviewAction.APPROVE, reviewer="ana", note="bulk"
    )
    first = await decide_matching(client, query, template, rate_per_s=50)
    assert len(first.decided) == 20 and first.refused == {}
    outcomes = [await handle.result() for handle in handles]
    ids = {summary.decision.decision.decision_id for summary in outcomes if summary.decision}
    # One decision each, each its own auditable ID.
    assert len(ids) == 20

    async def none_listed() -> bool:
        return await waiting_reviews(client, reviewing, prefix=f"bulk-{run}/") == []

    await async_wait_for(none_listed, 60, "visibility to list none waiting")
    rerun = await decide_matching(client, query, template, rate_per_s=50)
    assert rerun.decided == [] and rerun.refused == {}


async def test_the_deadline_marks_a_check_overdue_and_the_policy_decides_when_told(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    escalating = with_review(settings, deadline="2s")
    start_component(["worker"], escalating)
    run = uuid.uuid4().hex[:8]
    handle = await start_waiting_check(
        client, escalating, _put(escalating, f"dl-{run}/a.pdf", ["blank"])
    )

    async def overdue() -> bool:
        attributes = (await handle.describe()).typed_search_attributes
        return bool(attributes.get(sa.REVIEW_OVERDUE))

    await async_wait_for(overdue, 60, "the check to be marked overdue")
    status = await review_status(handle)
    assert status.state is ReviewState.AWAITING and status.overdue
    await decide(client, handle.id, approval("d-late"))
    assert (await handle.result()).final_verdict == "pass"


async def test_an_overdue_check_is_decided_by_the_policy_when_it_says_so(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    rejecting = with_review(settings, deadline="2s", on_deadline="reject")
    start_component(["worker"], rejecting)
    handle = await start_check(
        client, rejecting, _put(rejecting, f"dp-{uuid.uuid4().hex[:8]}/a.pdf", ["blank"])
    )
    summary = await handle.result()
    assert summary.decision is not None and summary.decision.by_policy
    assert summary.decision.decision.reviewer == "policy" and summary.final_verdict == "reject"
    assert _decision_file(rejecting, summary.decision)["by_policy"] is True


async def test_a_waiting_check_takes_its_decision_from_another_worker_after_a_sigkill(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    settings = with_review(settings)
    first = start_component(["worker"], settings)
    handle = await start_waiting_check(
        client, settings, _put(settings, f"kill-{uuid.uuid4().hex[:8]}/a.pdf", ["text", "blank"])
    )
    kill_worker(first)
    start_component(["worker"], settings)
    outcome = await decide(client, handle.id, approval("d-after-kill"))
    summary = await handle.result()
    assert summary.decision == outcome and outcome.decision.reviewer == "ana"
    assert _completed_activities(await handle.fetch_history(), "write_decision") == 1
    assert _decision_file(settings, outcome)["decision"]["decision_id"] == "d-after-kill"


def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return metric_samples(response.read().decode())
    except (urllib.error.URLError, OSError):
        return None


async def test_the_worker_counts_the_waiting_checks_and_the_decisions_it_writes(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    (port,) = free_ports(1)
    settings = with_review(settings, metrics_interval_s=0.5)
    telemetry = dataclasses.replace(settings.telemetry, metrics_port=port)
    start_component(["worker"], dataclasses.replace(settings, telemetry=telemetry))
    handle = await start_waiting_check(
        client, settings, _put(settings, f"met-{uuid.uuid4().hex[:8]}/a.pdf", ["blank"])
    )
    waiting_key = ("docpipe_review_waiting", (("reason", "blank_pages"),))

    async def counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = await asyncio.to_thread(_metrics, port)
        return samples if samples and samples.get(waiting_key, 0) >= 1 else None

    samples = await async_wait_for(counted, 60, "the worker to count the waiting check")
    assert samples[("docpipe_review_oldest_seconds", ())] > 0
    await decide(client, handle.id, approval("d-metrics"))
    await handle.result()
    decided = ("docpipe_review_decisions_total", (("action", "approve"),))

    async def recorded() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = await asyncio.to_thread(_metrics, port)
        return samples if samples and samples.get(decided) == 1 else None

    samples = await async_wait_for(recorded, 30, "the worker to count the decision")
    assert samples[("docpipe_review_decision_seconds_count", ())] == 1
