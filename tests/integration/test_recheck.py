"""``docpipe recheck`` on the real stack: 20 documents re-checked under a changed policy
give the right verdict transitions; a SIGKILLed worker loses and doubles nothing; running
the same recheck ID again re-checks nothing; a re-check supersedes the document's check
that waits for review and waits in turn, beyond the bulk re-check's end; a cancel stops
the re-checks still checking and leaves those that wait."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from app.review_queue import decide
from infra.clients import s3_client
from infra.settings import PolicySettings
from infra.settings import Settings
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.models import recheck_workflow_id
from pipeline.policy import DEFAULT_IGNORE
from pipeline.progress import PROGRESS_QUERY
from pipeline.progress import CheckProgress
from pipeline.progress import CheckStep
from pipeline.recheck.models import RecheckProgress
from pipeline.recheck.models import RecheckResult
from pipeline.recheck.models import recheck_run_id
from pipeline.review import ReviewState
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.commands import docpipe_cli
from tests.support.commands import json_after_header
from tests.support.crashes import freeze_worker
from tests.support.crashes import kill_worker
from tests.support.intake import unique_prefix
from tests.support.intake import upload
from tests.support.pdfs import make_large_pdf
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.polling import wait_for
from tests.support.review_checks import approval
from tests.support.review_checks import awaiting
from tests.support.review_checks import review_status
from tests.support.review_checks import start_waiting_check

pytestmark = pytest.mark.slow


def _docpipe(settings: Settings, *args: str) -> str:
    return docpipe_cli(settings, *args, timeout_s=300)


async def _children(client: Client, recheck_id: str) -> Counter[str]:
    """Runs per workflow ID of the re-checks a bulk re-check started."""
    runs: Counter[str] = Counter()
    query = f"ParentWorkflowId = '{recheck_run_id(recheck_id)}'"
    async for execution in client.list_workflows(query):
        runs[execution.id] += 1
    return runs


def _recheck_reports(settings: Settings, prefix: str, recheck_id: str) -> Counter[str]:
    """report.json objects of re-checks under ``recheck_id``, per document folder."""
    s3 = s3_client(settings.s3)
    found: Counter[str] = Counter()
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=settings.s3.results_bucket, Prefix=f"{settings.s3.results_prefix}/"
    ):
        for item in page.get("Contents", []):
            key = item["Key"]
            if prefix in key and key.endswith(f"/rechecks/{recheck_id}/report.json"):
                found[key.split("/rechecks/")[0]] += 1
    return found


def _with_policy(settings: Settings, **policy: Any) -> Settings:
    return dataclasses.replace(settings, policy=PolicySettings(**policy))


@pytest.mark.timeout(600)
async def test_recheck_of_20_documents_under_a_changed_policy(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    prefix = unique_prefix("policy")
    plain = [upload(settings, f"{prefix}/plain-{n}.pdf", make_pdf(["text"] * 2)) for n in range(8)]
    blank = [
        upload(settings, f"{prefix}/blank-{n}.pdf", make_pdf(["text", "blank", "text"]))
        for n in range(6)
    ]
    rotated = [
        upload(settings, f"{prefix}/rotated-{n}.pdf", make_pdf(["text", "rotated"]))
        for n in range(6)
    ]
    documents = [*plain, *blank, *rotated]
    # The originals, under the default policy: blank pages ask for review, rotated pages
    # are informational.
    worker = start_component(["worker"], settings)
    handles = [await start_check(client, settings, doc) for doc in documents]
    verdicts = Counter([(await handle.result()).verdict for handle in handles])
    assert verdicts == {"pass": 14, "review": 6}
    assert worker.stop(timeout=30) == 0

    # The policy changes: blank pages become informational, rotated pages need review.
    ignore = (*(r for r in DEFAULT_IGNORE if r != "rotated_pages"), "blank_pages")
    changed = _with_policy(settings, ignore=ignore)
    start_component(["worker"], changed)
    recheck_id = "rc-policy-" + prefix.rsplit("/", 1)[-1]
    selection = f"s3://{plain[0].bucket}/{prefix}/"
    args = ["recheck", "--prefix", selection, "--id", recheck_id, "--rate", "50/s"]
    output = _docpipe(changed, *args, "--page-size", "8", "--wait", "--json")
    diff = json_after_header(output)
    print(_docpipe(changed, "recheck", "show", recheck_id))

    assert diff["documents"] == 20
    assert diff["outcomes"] == {"rechecked": 20}
    assert diff["pages"] == 3  # 8 + 8 + 4: two continue-as-new
    assert diff["transitions"] == {"pass->pass": 8, "pass->review": 6, "review->pass": 6}
    assert diff["reasons_added"] == {"rotated_pages": 6}
    assert diff["reasons_removed"] == {"blank_pages": 6}
    assert diff["changed"] == diff["changed_documents_listed"] == 12
    listed = {row["document"]: (row["before"], row["after"]) for row in diff["changed_documents"]}
    assert listed == {
        **{d.document_id: ("review", "pass") for d in blank},
        **{d.document_id: ("pass", "review") for d in rotated},
    }
    policy = diff["policy"]
    assert [p["documents"] for p in policy["before"]] == [20]
    assert [p["documents"] for p in policy["after"]] == [20]
    assert policy["before"][0]["fingerprint"] != policy["after"][0]["fingerprint"]
    assert policy["rules_changed"] == {
        "blank_pages": {"before": "review", "after": "ignore"},
        "rotated_pages": {"before": "ignore", "after": "review"},
    }
    shown = _docpipe(changed, "recheck", "show", recheck_id)
    assert "review -> pass" in shown and "rule    blank_pages: review -> ignore" in shown
    assert json.loads(_docpipe(changed, "recheck", "show", recheck_id, "--json")) == diff

    # Every document re-checked once, its report under rechecks/<ID>/, the originals kept.
    children = await _children(client, recheck_id)
    assert len(children) == 20 and set(children.values()) == {1}
    assert len(_recheck_reports(settings, prefix, recheck_id)) == 20

    # The same re-check again re-checks nothing, and says the same.
    again = json_after_header(_docpipe(changed, *args, "--wait", "--json"))
    assert again["outcomes"] == {"already": 20}
    assert again["transitions"] == diff["transitions"]
    assert await _children(client, recheck_id) == children


@pytest.mark.timeout(600)
async def test_sigkilled_worker_mid_recheck_loses_and_doubles_nothing(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    prefix = unique_prefix("crash")
    # The worker is frozen once three are re-checked, four at a time: twenty leave plenty
    # for the next worker on a machine of any speed, and two pages of the selection (15
    # and 5), so that the re-check goes on past a continue-as-new after the kill.
    count = 20
    documents: list[DocumentRef] = [
        upload(settings, f"{prefix}/{n}.pdf", make_large_pdf(60)) for n in range(count)
    ]
    recheck_id = "rc-crash-" + prefix.rsplit("/", 1)[-1]
    worker = start_component(["worker"], settings)
    selection = f"s3://{documents[0].bucket}/{prefix}/"
    _docpipe(
        settings,
        *("recheck", "--prefix", selection, "--id", recheck_id),
        *("--rate", "100/s", "--concurrency", "4", "--page-size", "15"),
    )
    handle = client.get_workflow_handle(recheck_run_id(recheck_id), result_type=RecheckResult)

    async def some_rechecked() -> RecheckProgress | None:
        progress: RecheckProgress = await handle.query(PROGRESS_QUERY, result_type=RecheckProgress)
        return progress if progress.rechecked >= 3 else None

    at_kill = await async_wait_for(some_rechecked, 120, "a few re-checks to finish")
    # Frozen first, so that what it had finished can be counted before it is killed.
    freeze_worker(worker)
    reported = len(_recheck_reports(settings, prefix, recheck_id))
    kill_worker(worker)
    print(f"killed the worker at {at_kill}, {reported} re-checks reported")
    assert reported < count, "the re-check was done before the kill"

    start_component(["worker"], settings)
    result = await handle.result()
    assert result.totals.matched == count
    assert result.totals.rechecked + result.totals.already == count
    assert result.totals.failed == 0
    children = await _children(client, recheck_id)
    assert len(children) == count and set(children.values()) == {1}
    reports = _recheck_reports(settings, prefix, recheck_id)
    assert len(reports) == count and set(reports.values()) == {1}
    diff = json.loads(_docpipe(settings, "recheck", "show", recheck_id, "--json"))
    assert diff["documents"] == count
    assert diff["transitions"] == {"none->pass": count}


@pytest.mark.timeout(300)
async def test_recheck_by_query_and_reason_skips_rechecks_and_can_be_cancelled(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    prefix = unique_prefix("query")
    run = prefix.rsplit("/", 1)[-1]
    blank = [upload(settings, f"{prefix}/b{n}.pdf", make_pdf(["text", "blank"])) for n in range(2)]
    plain = [upload(settings, f"{prefix}/p{n}.pdf", make_pdf(["text"])) for n in range(2)]
    start_component(["worker"], settings)
    for doc in [*blank, *plain]:
        await (await start_check(client, settings, doc)).result()
    this_test = f"TaskQueue = '{settings.temporal.task_queue}'"

    # Visibility lags by about a second: wait until it shows the four checks.
    async def visible() -> bool:
        rows = [e async for e in client.list_workflows(f"{this_test} AND DocpipeStatus != ''")]
        return len(rows) == 4

    await async_wait_for(visible, 30, "visibility to show the four checks")
    by_reason = f"rc-reason-{run}"
    diff = json_after_header(
        _docpipe(
            settings,
            *("recheck", "--query", this_test, "--reason", "blank_pages", "--since", "1h"),
            *("--id", by_reason, "--wait", "--json"),
        )
    )
    assert diff["documents"] == 2 and diff["transitions"] == {"review->review": 2}

    # Their two re-checks match the query too, but are not documents of their own.
    async def rechecks_visible() -> bool:
        return len(await _children(client, by_reason)) == 2

    await async_wait_for(rechecks_visible, 30, "visibility to show the re-checks")
    everything = f"rc-all-{run}"
    diff = json_after_header(
        _docpipe(settings, "recheck", "--query", this_test, "--id", everything, "--wait", "--json")
    )
    assert diff["documents"] == 4 and diff["outcomes"] == {"rechecked": 4}

    # One start every 20 s: cancelled after the first re-check, it starts no other.
    slow = f"rc-cancel-{run}"
    _docpipe(settings, "recheck", "--query", this_test, "--id", slow, "--rate", "0.05/s")
    handle = client.get_workflow_handle(recheck_run_id(slow))

    async def first_done() -> bool:
        progress: RecheckProgress = await handle.query(PROGRESS_QUERY, result_type=RecheckProgress)
        return progress.rechecked >= 1

    await async_wait_for(first_done, 60, "the first re-check to finish")
    _docpipe(settings, "recheck", "cancel", slow)
    description = await async_wait_for(
        lambda: _closed(client, recheck_run_id(slow)), 60, "the re-check to end"
    )
    assert description.status is not None and description.status.name == "CANCELED"
    assert len(await _children(client, slow)) < 4
    shown = _docpipe(settings, "recheck", "show", slow)
    assert "canceled" in shown


async def _closed(client: Client, workflow_id: str) -> Any:
    description = await client.get_workflow_handle(workflow_id).describe()
    return description if description.close_time else None


@pytest.mark.timeout(400)
async def test_a_recheck_supersedes_the_check_that_waits_for_review_and_waits_in_turn(
    reviewing: Settings, client: Client
) -> None:
    prefix = unique_prefix("waits")
    document = upload(reviewing, f"{prefix}/letter.pdf", make_pdf(["text", "blank"]))
    old = await start_waiting_check(client, reviewing, document, seconds=120)

    # The policy is the same: the re-check's verdict is review too, and it waits.
    recheck_id = "rc-waits-" + prefix.rsplit("/", 1)[-1]
    args = ["recheck", "--prefix", f"s3://{document.bucket}/{prefix}/", "--id", recheck_id]
    diff = json_after_header(_docpipe(reviewing, *args, "--wait", "--json"))
    assert diff["documents"] == 1 and diff["outcomes"] == {"rechecked": 1}
    assert diff["transitions"] == {"review->review": 1}
    bulk = await client.get_workflow_handle(recheck_run_id(recheck_id)).describe()
    assert bulk.status == WorkflowExecutionStatus.COMPLETED
    new_id = recheck_workflow_id(old.id, recheck_id)
    new = client.get_workflow_handle(new_id, result_type=CheckSummary)
    assert (await review_status(new)).state is ReviewState.AWAITING
    superseded = await old.result()
    assert superseded.review_state == "superseded" and superseded.superseded_by == new_id
    shown = _docpipe(reviewing, "recheck", "show", recheck_id)
    assert "review -> review" in shown and "rechecked 1" in shown

    def listed() -> list[str] | None:
        rows = json.loads(_docpipe(reviewing, "review", "list", "--prefix", f"{prefix}/", "--json"))
        ids = [row["workflow_id"] for row in rows]
        return ids if ids == [new_id] else None

    # Visibility lags: the old check leaves the queue a moment after it ends.
    wait_for(listed, 60, "the review queue to list the re-check alone")
    # The same recheck ID again, while its re-check waits: nothing is re-checked.
    again = json_after_header(_docpipe(reviewing, *args, "--wait", "--json"))
    assert again["outcomes"] == {"already": 1}

    outcome = await decide(client, new_id, approval("d-recheck"))
    summary = await new.result()
    assert outcome.final_verdict == "pass"
    assert summary.review_state == ReviewState.DECIDED and summary.final_verdict == "pass"


@pytest.mark.timeout(400)
async def test_a_cancel_stops_the_rechecks_still_checking_and_leaves_every_check_that_waits(
    reviewing: Settings, client: Client
) -> None:
    prefix = unique_prefix("cancel-waits")
    run = prefix.rsplit("/", 1)[-1]
    waits = upload(reviewing, f"{prefix}/a-letter.pdf", make_pdf(["text", "blank"]))
    # More pages than one chunk: its pages are checked on the page queue. Its check waits
    # for review (a blank page) before the bulk re-check starts.
    checking = upload(reviewing, f"{prefix}/b-long.pdf", make_pdf(["text"] * 24 + ["blank"]))
    original = await start_waiting_check(client, reviewing, checking, seconds=120)
    # The bulk re-check sends its page checks to a queue no worker polls: the long
    # document's re-check is still checking when the cancel comes.
    temporal = dataclasses.replace(reviewing.temporal, page_task_queue=f"nobody-{run}")
    stuck = dataclasses.replace(reviewing, temporal=temporal)
    recheck_id = f"rc-cancel-waits-{run}"
    _docpipe(stuck, "recheck", "--prefix", f"s3://{waits.bucket}/{prefix}/", "--id", recheck_id)
    waiting = client.get_workflow_handle(
        recheck_workflow_id(waits.check_workflow_id(False), recheck_id), result_type=CheckSummary
    )
    still_checking = client.get_workflow_handle(
        recheck_workflow_id(checking.check_workflow_id(False), recheck_id)
    )

    async def checking_pages() -> bool:
        try:
            progress = await still_checking.query(PROGRESS_QUERY, result_type=CheckProgress)
        except RPCError:
            return False  # not started yet
        return progress.step is CheckStep.CHECK_PAGES

    await async_wait_for(checking_pages, 120, "the long document's re-check to check pages")
    await awaiting(waiting, 120)
    _docpipe(reviewing, "recheck", "cancel", recheck_id)

    bulk = await async_wait_for(
        lambda: _closed(client, recheck_run_id(recheck_id)), 120, "the bulk re-check to end"
    )
    assert bulk.status == WorkflowExecutionStatus.CANCELED
    stopped = await still_checking.describe()
    # Stopped by the bulk re-check before it ended.
    assert stopped.status == WorkflowExecutionStatus.CANCELED
    assert stopped.close_time is not None and stopped.close_time <= bulk.close_time
    assert (await waiting.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await review_status(waiting)).state is ReviewState.AWAITING
    await decide(client, waiting.id, approval("d-after-cancel"))
    assert (await waiting.result()).final_verdict == "pass"
    # The cancelled re-check took nothing over: the document's own check still waits
    # for its reviewer.
    assert (await review_status(original)).state is ReviewState.AWAITING
    await decide(client, original.id, approval("d-original"))
    assert (await original.result()).final_verdict == "pass"
