"""Temporal goes away in the middle of a stream of uploads, then comes back.

This needs a stack of its own: the session stack's Temporal serves every other test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from infra.clients import temporal_client
from infra.settings import Settings
from infra.stack import EmbeddedStack
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support.intake import Message
from tests.support.intake import Sent
from tests.support.intake import committed
from tests.support.intake import dead_letters
from tests.support.intake import ends
from tests.support.intake import final_counters
from tests.support.intake import native_event
from tests.support.intake import publish
from tests.support.intake import unique_prefix
from tests.support.intake import upload
from tests.support.intake import wait_committed
from tests.support.intake import wait_started_once
from tests.support.intake import workflow_runs
from tests.support.polling import async_wait_for
from tests.support.polling import wait_for

# Long enough for the intake to notice, back off several times and pause.
OUTAGE_S = 10.0


def _quick_retries(stack: EmbeddedStack, task_queue: str, **kafka: Any) -> Settings:
    """The private stack's settings with retries that notice an outage within a second,
    a task queue of the test's own, and ``kafka``'s changes."""
    base = stack.settings()
    return dataclasses.replace(
        base,
        kafka=dataclasses.replace(base.kafka, retry_initial_s=0.2, retry_max_s=1.0, **kafka),
        temporal=dataclasses.replace(base.temporal, task_queue=task_queue),
    )


class _Stream:
    """Uploads and publishes one document every ``interval_s`` until stopped."""

    def __init__(self, settings: Settings, interval_s: float) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.documents: list[DocumentRef] = []
        self.sent: list[Sent] = []
        self.stopped = asyncio.Event()
        self._prefix = unique_prefix("outage")

    async def run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka.bootstrap_servers)
        await producer.start()
        try:
            while not self.stopped.is_set():
                n = len(self.documents)
                document = upload(self.settings, f"{self._prefix}/doc-{n}.pdf")
                message = Message(native_event(document), partition=n % 3)
                meta = await producer.send_and_wait(
                    self.settings.kafka.uploads_topic, message.value, partition=message.partition
                )
                self.documents.append(document)
                self.sent.append(Sent(message, meta.partition, meta.offset))
                await asyncio.sleep(self.interval_s)
        finally:
            await producer.stop()


@pytest.mark.slow
async def test_temporal_outage_loses_nothing_dead_letters_nothing_and_resumes(
    private_stack: EmbeddedStack, start_component: StartComponent, tmp_path: Path
) -> None:
    settings = _quick_retries(private_stack, f"outage-{tmp_path.name}", max_in_flight=8)
    client = await temporal_client(settings.temporal, settings.codec)
    task_queue = settings.temporal.task_queue
    consumer = start_component(["consume"], settings)
    stream = _Stream(settings, interval_s=0.15)
    streaming = asyncio.create_task(stream.run())
    try:

        async def some_started() -> bool:
            return len(await workflow_runs(client, task_queue)) >= 5

        await async_wait_for(some_started, 30, "checks to start before the outage")

        # Blocking calls on purpose: the stack spawns servers from the main thread.
        private_stack.stop_temporal()
        first_in_outage = len(stream.sent)
        await asyncio.sleep(OUTAGE_S)  # the outage itself, not a wait for a condition

        # Nothing published during the outage may be committed: it cannot have started.
        during = stream.sent[first_in_outage:]
        assert len(during) >= 20
        first_offsets: dict[int, int] = {}
        for sent in during:
            first_offsets.setdefault(sent.partition, sent.offset)
        now = await committed(settings)
        assert all(now.get(p, 0) <= offset for p, offset in first_offsets.items()), (
            now,
            first_offsets,
        )
        assert await dead_letters(settings) == []
        log = consumer.log_path.read_text(errors="replace")
        assert "pausing" in log

        private_stack.start_temporal()
        resumed_at = len(stream.sent)
        await async_wait_for(
            lambda: _true_soon(len(stream.sent) >= resumed_at + 10), 30, "more uploads"
        )
    finally:
        stream.stopped.set()
        await streaming

    await wait_committed(settings, stream.sent, 60)
    await wait_started_once(client, task_queue, stream.documents, 30)
    assert await dead_letters(settings) == []
    assert "resuming" in consumer.log_path.read_text(errors="replace")
    assert consumer.stop(timeout=15) == 0
    counters = final_counters(consumer)
    assert counters["started"] == len(stream.documents)
    assert counters["dead_lettered"] == 0
    assert counters["retries"] > 0


async def _true_soon(value: bool) -> bool:
    return value


async def test_sigterm_during_an_outage_exits_0_in_time_and_commits_nothing_unstarted(
    private_stack: EmbeddedStack, start_component: StartComponent, tmp_path: Path
) -> None:
    settings = _quick_retries(
        private_stack,
        f"sigterm-{tmp_path.name}",
        uploads_topic=f"uploads-{tmp_path.name}",
        group_id=f"intake-{tmp_path.name}",
        shutdown_timeout_s=2.0,
    )
    private_stack.create_topics([settings.kafka.uploads_topic])
    client = await temporal_client(settings.temporal, settings.codec)
    consumer = start_component(["consume"], settings)
    prefix = unique_prefix("sigterm")
    before = upload(settings, f"{prefix}/before.pdf")
    sent = await publish(settings, [Message(native_event(before), partition=0)])
    await wait_committed(settings, sent, 30)

    private_stack.stop_temporal()
    try:
        stuck = [upload(settings, f"{prefix}/stuck-{n}.pdf") for n in range(3)]
        await publish(settings, [Message(native_event(d), partition=0) for d in stuck])
        wait_for(
            lambda: "pausing" in consumer.log_path.read_text(errors="replace"),
            30,
            "the consumer to pause",
        )
        began = time.monotonic()
        consumer.process.send_signal(signal.SIGTERM)
        code = consumer.process.wait(timeout=15)
        assert code == 0
        assert time.monotonic() - began < 2.0 + 3.0  # the deadline, plus leaving the group
        # The stuck uploads were not started, so their offsets are not committed.
        assert await committed(settings) == {0: ends(sent)[0]}
        log = consumer.log_path.read_text(errors="replace")
        assert "dropping 3 unfinished message(s) uncommitted" in log
    finally:
        private_stack.start_temporal()
    assert await workflow_runs(client, settings.temporal.task_queue) == {before.workflow_id: 1}
