"""The broker goes away while a check finishes, then comes back: the check's report is
written, its results event waits (``publish_result`` retried, as long as a week), and it
is sent once the broker is back. A stack of the module's own: stopping the session
stack's broker would stop every other test's."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from infra.clients import temporal_client
from infra.stack import EmbeddedStack
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.crashes import pending_activity
from tests.support.crashes import wait_for_retry
from tests.support.intake import unique_prefix
from tests.support.intake import upload
from tests.support.pdfs import make_pdf
from tests.support.reports import read_topic
from tests.support.s3 import shared_s3


@pytest.mark.slow
async def test_a_broker_outage_holds_the_results_event_until_the_broker_is_back(
    private_stack: EmbeddedStack, start_component: StartComponent, tmp_path: Path
) -> None:
    base = private_stack.settings()
    settings = dataclasses.replace(
        base, temporal=dataclasses.replace(base.temporal, task_queue=f"publish-{tmp_path.name}")
    )
    topic = settings.kafka.results_topic
    private_stack.create_topics([topic])
    start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    document = upload(settings, f"{unique_prefix('publish')}/a.pdf", make_pdf(["text"]))

    private_stack.stop_broker()
    try:
        handle = await start_check(client, settings, document)
        # check_document could not send the event, and publish_result has failed twice
        # since: the check waits, with its report written.
        await wait_for_retry(handle, 3, 120, "publish_result")
        pending = await pending_activity(handle, "publish_result")
        assert pending is not None and pending.last_failure.message
    finally:
        private_stack.start_broker()
    private_stack.create_topics([topic])

    summary = await handle.result()
    assert summary.verdict == "pass"
    report = shared_s3(settings.s3).get_object(
        Bucket=settings.s3.results_bucket, Key=summary.report_key
    )
    assert json.loads(report["Body"].read())["verdict"]["verdict"] == "pass"
    events = await read_topic(settings, topic, count=1)
    # At least once, and every copy the same event: this check's.
    assert {event.value for event in events} == {events[0].value}
    announced = json.loads(events[0].value)
    assert (announced["workflow_id"], announced["verdict"]) == (handle.id, "pass")
    assert announced["report"]["key"] == summary.report_key
