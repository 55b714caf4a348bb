"""The intake running in this process, on the real broker, Temporal and moto: S3 and
Temporal failing one message or all of them, a bug met at shutdown, and its lag.

The intake runs in this process, so that a botocore ``before-send`` handler on its S3
client can answer instead of moto (``tests/support/s3_faults.py``). A refusal (a 403, an
invalid start) is this message's problem: it is dead-lettered after a few tries while the
others go on. An outage (a storm of 503s) is everyone's: fetching pauses, nothing is
dead-lettered, and everything starts once it passes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
import uuid

import pytest
from aiokafka.errors import KafkaConnectionError
from google.protobuf.duration_pb2 import Duration
from temporalio.api.operatorservice.v1 import RemoveSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus

from app.reprocess import ReprocessError
from app.reprocess import resolve
from consumers.intake import UploadIntake
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.ports import LOOPBACK
from infra.ports import free_ports
from infra.settings import Settings
from infra.temporal_setup import register_search_attributes
from pipeline import search_attributes as sa
from tests.conftest import StartComponent
from tests.support.commands import docpipe_cli
from tests.support.intake import Message
from tests.support.intake import committed
from tests.support.intake import dead_letters
from tests.support.intake import native_event
from tests.support.intake import publish
from tests.support.intake import running
from tests.support.intake import unique_prefix
from tests.support.intake import upload
from tests.support.intake import wait_committed
from tests.support.intake import wait_started_once
from tests.support.intake import with_kafka
from tests.support.polling import async_wait_for
from tests.support.polling import wait_for
from tests.support.s3_faults import S3Faults
from tests.support.unclosed import no_kafka_client_left_unclosed


def _paused(caplog: pytest.LogCaptureFixture) -> bool:
    return any("pausing" in record.getMessage() for record in caplog.records)


async def test_an_object_s3_refuses_is_dead_lettered_while_the_others_start(
    settings: Settings, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers.intake")
    # A budget of tries long enough (at least 6 s) that the 20 good uploads certainly
    # arrive while the refused one still waits out its budget.
    settings = with_kafka(
        settings, permanent_failure_attempts=6, retry_initial_s=0.5, retry_max_s=5.0
    )
    prefix = unique_prefix("forbidden")
    refused = upload(settings, f"{prefix}/not-for-docpipe.pdf")
    good = [upload(settings, f"{prefix}/good-{n}.pdf") for n in range(20)]
    s3 = s3_client(settings.s3)
    faults = S3Faults("HeadObject", status=403, key=refused.key).install(s3)
    intake = UploadIntake(settings, client, s3)
    refused_event = native_event(refused, version=False, etag=False)
    async with running(intake):
        # The refused event first, the good ones behind it in the same partition: events
        # without a version, so that the intake HEADs each object.
        sent = await publish(settings, [Message(refused_event, partition=0)])

        async def refused_once() -> bool:
            return faults.injected >= 1

        await async_wait_for(refused_once, 30, "the refused HEAD")
        published = time.monotonic()
        sent += await publish(
            settings,
            [Message(native_event(d, version=False, etag=False), partition=0) for d in good],
        )

        async def all_good_started() -> bool:
            return intake.counters.started == len(good)

        await async_wait_for(all_good_started, 60, "the 20 good uploads to start")
        took = time.monotonic() - published
        assert intake.counters.dead_lettered == 0, "started while the refused one waited"

        async def dead_lettered() -> bool:
            return intake.counters.dead_lettered == 1

        await async_wait_for(dead_lettered, 120, "the refused upload's dead letter")
        await wait_committed(settings, sent, 30)
    print(f"\n20 good uploads started {took:.2f} s after they were published")
    assert not _paused(caplog), "a refusal paused fetching"
    assert faults.injected == 6
    (letter,) = await dead_letters(settings)
    assert letter.reason == "s3_access_denied"
    assert refused.key in letter.message and "403" in letter.message
    assert letter.value == refused_event, "the original bytes are kept"
    await wait_started_once(client, settings.temporal.task_queue, good, 30)


async def test_an_s3_storm_dead_letters_nothing_and_everything_starts_after_it(
    settings: Settings, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers.intake")
    settings = with_kafka(settings, retry_initial_s=0.2, retry_max_s=1.0)
    # One attempt per S3 call: every 503 of the storm reaches the intake (botocore's own
    # retries would otherwise hide a short one from it).
    settings = dataclasses.replace(settings, s3=dataclasses.replace(settings.s3, max_attempts=1))
    prefix = unique_prefix("storm")
    documents = [upload(settings, f"{prefix}/doc-{n}.pdf") for n in range(10)]
    s3 = s3_client(settings.s3)
    # Five seconds of 503s from the first HEAD on.
    storm = S3Faults("HeadObject", status=503, code="SlowDown", seconds=5.0).install(s3)
    intake = UploadIntake(settings, client, s3)
    async with running(intake):
        sent = await publish(
            settings,
            [
                Message(native_event(d, version=False, etag=False), partition=n % 3)
                for n, d in enumerate(documents)
            ],
        )
        await wait_committed(settings, sent, 60)
    assert storm.injected > 0
    assert _paused(caplog), "an outage pauses fetching"
    assert intake.counters.started == len(documents)
    assert intake.counters.dead_lettered == 0
    assert await dead_letters(settings) == []
    waited = intake.metrics.retry_wait.labels("head")
    assert waited._sum.get() > 0, "the time spent waiting on retries is measured"


async def test_a_start_temporal_refuses_is_dead_lettered_as_start_rejected(
    settings: Settings,
) -> None:
    # A task queue name longer than Temporal allows: every start is INVALID_ARGUMENT.
    settings = dataclasses.replace(
        settings, temporal=dataclasses.replace(settings.temporal, task_queue="q" * 1500)
    )
    settings = with_kafka(settings, retry_initial_s=0.1, retry_max_s=0.2)
    document = upload(settings, f"{unique_prefix('refused-start')}/doc.pdf")
    client = await temporal_client(settings.temporal, settings.codec)
    intake = UploadIntake(settings, client, s3_client(settings.s3))
    event = native_event(document)
    async with running(intake):
        sent = await publish(settings, [Message(event)])
        await wait_committed(settings, sent, 60)
    (letter,) = await dead_letters(settings)
    assert letter.reason == "start_rejected"
    assert "INVALID_ARGUMENT" in letter.message
    assert letter.value == event
    assert intake.counters.started == 0


async def test_reprocess_facing_a_403_names_the_refusal_not_a_gone_version(
    settings: Settings, client: Client
) -> None:
    document = upload(settings, f"{unique_prefix('reprocess-403')}/doc.pdf")
    s3 = s3_client(settings.s3)
    S3Faults("HeadObject", status=403, key=document.key).install(s3)
    # Temporal has no check of it: reprocess looks the version up in S3.
    with pytest.raises(ReprocessError) as error:
        await resolve(settings, client, s3, document.document_id)
    message = str(error.value)
    assert "S3 refuses docpipe the object (HTTP 403)" in message
    assert "gone" not in message
    assert document.version_id is not None
    s3.delete_object(Bucket=document.bucket, Key=document.key, VersionId=document.version_id)
    with pytest.raises(ReprocessError, match="gone"):
        await resolve(settings, client, s3_client(settings.s3), document.document_id)


async def test_an_intake_that_cannot_reach_the_broker_fails_and_leaves_nothing_open(
    settings: Settings, client: Client
) -> None:
    """No broker at the bootstrap address: the run fails with the connection error, and
    the consumer and dead-letter producer it made are closed, not left to the garbage
    collector to report unclosed."""
    (port,) = free_ports(1)  # nothing listens there
    settings = with_kafka(settings, bootstrap_servers=f"{LOOPBACK}:{port}")
    intake = UploadIntake(settings, client, s3_client(settings.s3))
    with no_kafka_client_left_unclosed(), pytest.raises(KafkaConnectionError):
        await intake.run(asyncio.Event())


async def test_a_bug_met_while_draining_fails_the_run_and_its_message_stays_uncommitted(
    settings: Settings, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers.intake")
    document = upload(settings, f"{unique_prefix('drain-bug')}/doc.pdf")
    s3 = s3_client(settings.s3)
    heading, go = threading.Event(), threading.Event()

    def a_bug(**_: object) -> None:
        heading.set()
        go.wait(timeout=60)
        raise RuntimeError("a bug in the handling")

    # An event without version or ETag: the intake HEADs the object, and meets the bug.
    s3.meta.events.register("before-send.s3.HeadObject", a_bug)
    intake = UploadIntake(settings, client, s3)
    stop = asyncio.Event()
    run = asyncio.create_task(intake.run(stop))
    await publish(settings, [Message(native_event(document, version=False, etag=False))])
    await async_wait_for(lambda: _set(heading), 30, "the message in flight")
    stop.set()
    await async_wait_for(lambda: _said(caplog, "in-flight message"), 30, "the drain to begin")
    go.set()
    with pytest.raises(RuntimeError, match="a bug in the handling"):
        await asyncio.wait_for(run, 60)
    assert await committed(settings) == {}, "its message is delivered again"


async def _set(event: threading.Event) -> bool:
    return event.is_set()


async def _said(caplog: pytest.LogCaptureFixture, words: str) -> bool:
    return any(words in record.getMessage() for record in caplog.records)


async def test_a_namespace_temporal_does_not_know_pauses_the_intake_and_dead_letters_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers.intake")
    temporal = dataclasses.replace(settings.temporal, namespace=unique_prefix("no-such-namespace"))
    settings = dataclasses.replace(settings, temporal=temporal)
    document = upload(settings, f"{unique_prefix('namespace')}/doc.pdf")
    client = await temporal_client(settings.temporal, settings.codec)
    intake = UploadIntake(settings, client, s3_client(settings.s3))
    async with running(intake):
        await publish(settings, [Message(native_event(document))])
        # Every start would fail alike: a deployment to mend, not an event to refuse.
        await async_wait_for(lambda: _said(caplog, "pausing"), 60, "the intake to pause")
    assert await dead_letters(settings) == []
    assert await committed(settings) == {}
    assert intake.counters.started == 0


async def _in_a_new_namespace(client: Client, settings: Settings, name: str) -> Settings:
    """``settings`` in a namespace of their own, new (no search attributes registered)."""
    namespace = f"{name}-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    return dataclasses.replace(
        settings, temporal=dataclasses.replace(settings.temporal, namespace=namespace)
    )


async def test_a_namespace_without_docpipes_search_attributes_is_waited_for_then_consumed(
    settings: Settings, client: Client, start_component: StartComponent
) -> None:
    """Temporal would refuse every start (``INVALID_ARGUMENT``): the consumer consumes
    nothing until ``docpipe temporal setup`` has registered them, then goes on."""
    bare = await _in_a_new_namespace(client, settings, "bare")
    document = upload(bare, f"{unique_prefix('bare')}/doc.pdf")
    consumer = start_component(["consume"], bare)
    sent = await publish(bare, [Message(native_event(document))])
    wait_for(
        lambda: "lacks docpipe's search attributes" in consumer.log_path.read_text(),
        60,
        "the consumer to say what the namespace lacks",
    )
    assert await committed(bare) == {}

    docpipe_cli(bare, "temporal", "setup")
    await wait_committed(bare, sent, 120)
    in_bare = await temporal_client(bare.temporal, bare.codec)
    started = await in_bare.get_workflow_handle(document.workflow_id).describe()
    assert started.status == WorkflowExecutionStatus.RUNNING
    assert await dead_letters(bare) == []


async def test_a_search_attribute_removed_while_the_intake_runs_pauses_it_and_loses_nothing(
    settings: Settings, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """Checked at the start, the search attributes can still go later (an operator's
    mistake): Temporal then refuses every start alike, as ``INVALID_ARGUMENT``. That is
    the namespace's fault, not the event's: waited out, not dead-lettered."""
    caplog.set_level(logging.INFO, logger="consumers")
    ours = await _in_a_new_namespace(client, settings, "removed")
    namespace = ours.temporal.namespace
    in_ours = await temporal_client(ours.temporal, ours.codec)
    await register_search_attributes(in_ours, namespace)
    prefix = unique_prefix("removed")
    before, after = [upload(ours, f"{prefix}/doc-{n}.pdf") for n in range(2)]
    intake = UploadIntake(ours, in_ours, s3_client(ours.s3))
    async with running(intake):
        await wait_committed(ours, await publish(ours, [Message(native_event(before))]), 60)
        await in_ours.operator_service.remove_search_attributes(
            RemoveSearchAttributesRequest(namespace=namespace, search_attributes=[sa.STATUS.name])
        )
        sent = await publish(ours, [Message(native_event(after))])
        said = f"lacks docpipe's search attributes {sa.STATUS.name}: run `docpipe temporal setup`"
        await async_wait_for(lambda: _said(caplog, said), 60, "the intake to say what is missing")
        await async_wait_for(lambda: _said(caplog, "pausing"), 60, "the intake to pause")
        assert intake.counters.started == 1

        await register_search_attributes(in_ours, namespace)
        await wait_committed(ours, sent, 120)
    described = await in_ours.get_workflow_handle(after.workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert intake.counters.started == 2
    assert await dead_letters(ours) == []


async def test_a_restarted_intake_with_everything_committed_is_not_behind(
    settings: Settings, client: Client
) -> None:
    prefix = unique_prefix("lag")
    documents = [upload(settings, f"{prefix}/doc-{n}.pdf") for n in range(6)]
    messages = [Message(native_event(d), partition=n % 3) for n, d in enumerate(documents)]
    async with running(UploadIntake(settings, client, s3_client(settings.s3))):
        await wait_committed(settings, await publish(settings, messages), 30)

    # The next intake has nothing to fetch: every partition holds messages, all committed.
    again = UploadIntake(settings, client, s3_client(settings.s3))
    async with running(again):

        async def every_end_known() -> dict[tuple[str, int], int] | None:
            lag = again.lag()
            return lag if len(lag) == 3 else None

        lag = await async_wait_for(every_end_known, 30, "the end of every partition")
    assert lag == {(settings.kafka.uploads_topic, p): 0 for p in range(3)}
