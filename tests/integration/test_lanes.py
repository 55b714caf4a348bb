"""Priority lanes and fair shares on the real stack: a live upload does not wait behind a
backlog of re-checks, and one tenant's flood does not starve another tenant's upload.

Both tests queue everything where the work waits: a ``--role workflows`` worker takes
every check up to its page check, the CPU-heavy step a worker runs only a few of at once;
only once every page check waits in the page queue does a ``--role pages`` worker start.
What is measured is the order in which that worker takes and finishes them, which depends
on the server's dispatch order, not on how fast the machine is. (With one worker for
both, how many page checks reached the queue before the one measured depended on how fast
the inspections ran beside each other: under load, 7 of 20 of the flood once finished
first.)
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import pytest
from temporalio.client import Client

from app.reprocess import start_recheck
from app.status_view import check_status
from app.status_view import render_status
from infra.check_requests import check_request
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import Settings
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support.crashes import pending_page_check
from tests.support.intake import Message
from tests.support.intake import native_event
from tests.support.intake import publish
from tests.support.intake import unique_prefix
from tests.support.intake import upload
from tests.support.intake import wait_runs
from tests.support.pdfs import make_large_pdf
from tests.support.polling import async_wait_for

# More pages than a chunk (tests' settings), so that each check has a page check.
PAGES = 30
BACKLOG = 30
# The worker checks this many documents at once. The bounds below follow from it, so it is
# fixed here: by default the worker takes as many as CPU and memory allow, which depends
# on how loaded the machine is (under load, 19 of 30 re-checks once ran beside the live
# upload and finished first).
CHECKS_AT_ONCE = 2
# Every page check is queued before the page worker polls, so the one measured is among
# the first CHECKS_AT_ONCE it takes; the others it takes at the same time, and a few more
# in the slots they free while it runs, may finish first: at most this many. First come,
# first served would put a live upload after all 30 re-checks and the other tenant's
# upload after all 20 of the flood.
PRIORITY_BOUND = 6
FLOOD = 20
FAIRNESS_BOUND = 6


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test's settings, with a worker that checks ``CHECKS_AT_ONCE`` documents at once."""
    pipeline = dataclasses.replace(settings.pipeline, max_concurrent_checks=CHECKS_AT_ONCE)
    return dataclasses.replace(settings, pipeline=pipeline)


async def _close_times(client: Client, workflow_ids: list[str]) -> dict[str, datetime]:
    times: dict[str, datetime] = {}

    async def closed() -> dict[str, datetime] | None:
        # A check seen closed is not described again.
        for workflow_id in workflow_ids:
            if workflow_id not in times:
                description = await client.get_workflow_handle(workflow_id).describe()
                if description.close_time is None:
                    return None
                times[workflow_id] = description.close_time
        return times

    return await async_wait_for(closed, 240, f"{len(workflow_ids)} checks to finish")


async def _check_pages_from_a_full_queue(
    client: Client, settings: Settings, start_component: StartComponent, workflow_ids: list[str]
) -> None:
    """Start a worker that takes the checks up to their page checks; once every one waits
    in the page queue, a worker that checks pages."""
    start_component(["worker", "--role", "workflows"], settings)

    async def all_waiting() -> bool:
        for workflow_id in workflow_ids:
            if await pending_page_check(client.get_workflow_handle(workflow_id)) is None:
                return False
        return True

    await async_wait_for(all_waiting, 120, f"{len(workflow_ids)} page checks to be queued")
    start_component(["worker", "--role", "pages"], settings)


def _finished_before(times: dict[str, datetime], target: str, others: list[str]) -> int:
    return sum(1 for other in others if times[other] < times[target])


@pytest.mark.slow
async def test_live_upload_finishes_before_a_queued_backlog_of_rechecks(
    settings: Settings, start_component: StartComponent
) -> None:
    client = await temporal_client(settings.temporal, settings.codec)
    s3 = s3_client(settings.s3)
    prefix = unique_prefix("lanes")
    body = make_large_pdf(PAGES)
    backlog = [upload(settings, f"{prefix}/old-{n}.pdf", body) for n in range(BACKLOG)]
    live = upload(settings, f"{prefix}/new.pdf", body)
    # 30 re-checks queued (low priority), as `docpipe reprocess` starts them.
    rechecks = [
        (await start_recheck(settings, client, s3, check_request(settings, doc))).workflow_id
        for doc in backlog
    ]
    # Then a new upload arrives through the intake (high priority).
    start_component(["consume"], settings)
    await publish(settings, [Message(native_event(live))])
    await wait_runs(client, settings.temporal.task_queue, {live.workflow_id}, 30)
    live_description = await client.get_workflow_handle(live.workflow_id).describe()
    lane = live_description.raw_description.workflow_execution_info.priority
    assert lane.priority_key == settings.temporal.intake_priority == 1
    recheck_description = await client.get_workflow_handle(rechecks[0]).describe()
    assert recheck_description.raw_description.workflow_execution_info.priority.priority_key == 5
    assert "[priority 1" in (await live_description.static_summary() or "")

    await _check_pages_from_a_full_queue(
        client, settings, start_component, [live.workflow_id, *rechecks]
    )
    times = await _close_times(client, [live.workflow_id, *rechecks])
    before = _finished_before(times, live.workflow_id, rechecks)
    print(f"re-checks finished before the live upload: {before} of {BACKLOG}")
    # `docpipe status` names each check's lane.
    share = f"fair share {live.bucket}/{prefix.split('/')[0]}"
    assert f"lane      priority 1, {share}" in render_status(
        await check_status(settings, client, live.workflow_id)
    )
    assert f"lane      priority 5, {share}" in render_status(
        await check_status(settings, client, rechecks[0])
    )
    assert before <= PRIORITY_BOUND, f"{before} of {BACKLOG} re-checks finished first"


@pytest.mark.slow
async def test_one_tenants_flood_does_not_starve_another_tenants_upload(
    settings: Settings, start_component: StartComponent
) -> None:
    client = await temporal_client(settings.temporal, settings.codec)
    run = unique_prefix("fair").replace("/", "-")
    body = make_large_pdf(PAGES)
    # The default fairness key is the bucket and the key's first segment: the tenant.
    flood = [upload(settings, f"acme-{run}/{n}.pdf", body) for n in range(FLOOD)]
    lone = upload(settings, f"globex-{run}/only.pdf", body)
    start_component(["consume"], settings)
    await publish(settings, [Message(native_event(doc)) for doc in flood])
    queue = settings.temporal.task_queue
    await wait_runs(client, queue, {doc.workflow_id for doc in flood}, 60)
    # Published last, started last: first come, first served would check it last.
    await publish(settings, [Message(native_event(lone))])
    await wait_runs(client, queue, {lone.workflow_id}, 30)
    description = await client.get_workflow_handle(lone.workflow_id).describe()
    lane = description.raw_description.workflow_execution_info.priority
    assert lane.fairness_key == f"{lone.bucket}/globex-{run}"

    flood_ids = [doc.workflow_id for doc in flood]
    await _check_pages_from_a_full_queue(
        client, settings, start_component, [lone.workflow_id, *flood_ids]
    )
    times = await _close_times(client, [lone.workflow_id, *flood_ids])
    before = _finished_before(times, lone.workflow_id, flood_ids)
    print(f"flood checks finished before the other tenant's upload: {before} of {FLOOD}")
    assert before <= FAIRNESS_BOUND, f"{before} of {FLOOD} flood checks finished first"


async def test_fairness_key_can_come_from_a_field_of_the_upload_event(
    settings: Settings, start_component: StartComponent
) -> None:
    settings = dataclasses.replace(
        settings, temporal=dataclasses.replace(settings.temporal, fairness_key="field:tenant")
    )
    client = await temporal_client(settings.temporal, settings.codec)
    prefix = unique_prefix("tenant")
    named = upload(settings, f"{prefix}/named.pdf", make_large_pdf(1))
    unnamed = upload(settings, f"{prefix}/unnamed.pdf", make_large_pdf(1))
    event = {**json.loads(native_event(named)), "tenant": "globex"}
    start_component(["consume"], settings)
    await publish(settings, [Message(json.dumps(event).encode()), Message(native_event(unnamed))])
    await wait_runs(
        client, settings.temporal.task_queue, {named.workflow_id, unnamed.workflow_id}, 30
    )

    async def fairness_key(document: DocumentRef) -> str:
        description = await client.get_workflow_handle(document.workflow_id).describe()
        return description.raw_description.workflow_execution_info.priority.fairness_key

    assert await fairness_key(named) == "globex"
    # Without the field, the default: the bucket and the key's first segment.
    assert await fairness_key(unnamed) == f"{unnamed.bucket}/{prefix.split('/')[0]}"
