"""The Kafka intake: upload events in, one Temporal workflow start per document version out.

What it guarantees, whatever crashes or redelivers:

- An offset is committed only when every message below it of its partition was either
  started in Temporal (the start call returned) or written to the dead-letter topic (the
  write was acknowledged). Messages are worked on concurrently and finish in any order.
- Starts are idempotent (deterministic workflow ID, ``FAIL``, ``REJECT_DUPLICATE``):
  a redelivered or duplicated event costs a dedupe, never a second check.
- A valid event is never dead-lettered because Temporal, S3 or the broker is down: outages
  are retried with capped exponential backoff while fetching is paused, so memory stays
  bounded, and the intake resumes by itself once they work again.
- One event that S3 or Temporal refuses for good (a 403 on its object, another 4xx, an
  invalid start) stalls nothing: it is tried a few times while the others go on, then
  dead-lettered with the reason (``pipeline.failures`` sorts the two kinds).

This module is the loop: fetching, dispatching each message to a task of its own,
pausing, committing, rebalancing. What happens to one message is ``consumers.handling``;
how its steps are retried, ``consumers.retry``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka import AIOKafkaProducer
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError
from aiokafka.errors import KafkaError
from temporalio.client import Client
from temporalio.service import RetryConfig

from consumers.dead_letters import MAX_REQUEST_BYTES
from consumers.handling import UploadHandler
from consumers.handling import start_upload_check
from consumers.metrics import IntakeCollector
from consumers.metrics import IntakeCounters
from consumers.metrics import IntakeMetrics
from consumers.offsets import PartitionOffsets
from consumers.retry import Retries
from infra.clients import kafka_kwargs
from infra.clients import s3_client
from infra.clients import temporal_client_waiting
from infra.settings import Settings
from infra.temporal_setup import search_attributes_registered

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from infra.telemetry import Telemetry

log = logging.getLogger(__name__)

# How long one fetch waits for messages: bounds how late a stop, a commit or a resume is.
_POLL_S = 0.2
# The intake backs off and pauses fetching by itself; the client's own retries (10 s by
# default) only smooth over blips, and would hide an outage from it for that long.
_TEMPORAL_RETRY = RetryConfig(max_elapsed_time_millis=2000, max_retries=4)


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}[{tp.partition}]"


def _names(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(_name(tp) for tp in sorted(partitions)) or "none"


class _Partition:
    """The intake's work on one assigned partition; dropped when the partition is revoked."""

    def __init__(self, tp: TopicPartition) -> None:
        self.tp = tp
        self.offsets = PartitionOffsets()
        self.tasks: set[asyncio.Task[None]] = set()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, intake: UploadIntake) -> None:
        self._intake = intake

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._intake._revoke(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._intake._assign(assigned)


class UploadIntake:
    """Consumes upload events and starts document checks.

    Args:
        settings: all settings (Kafka for topics and intake limits, Temporal for the start,
            S3 for the allowlist and the results location).
        client: a connected Temporal client.
        s3: used only to learn the version of an object whose event names none.
        metrics: where its latency histograms go (default: not exported).
    """

    def __init__(
        self,
        settings: Settings,
        client: Client,
        s3: S3Client,
        metrics: IntakeMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._s3 = s3
        self.metrics = metrics or IntakeMetrics()
        self.counters = IntakeCounters()
        # Fetching pauses while any message waits out an outage (``Retries.outages``), so
        # that a failing Temporal is not fed more work.
        self._retries = Retries(
            backoff=settings.kafka.retry_backoff,
            refusal_limit=settings.kafka.permanent_failure_attempts,
            counters=self.counters,
            metrics=self.metrics,
        )
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._in_flight = 0
        self._paused = False
        self._slot_freed = asyncio.Event()
        self._crash: BaseException | None = None
        self._consumer: Any = None

    @property
    def assignment(self) -> frozenset[TopicPartition]:
        """The partitions this intake owns right now."""
        return frozenset(self._partitions)

    @property
    def in_flight(self) -> int:
        """Messages fetched and not finished yet."""
        return self._in_flight

    def lag(self) -> dict[tuple[str, int], int]:
        """Per assigned partition, (topic, partition): the messages not yet committed
        (high watermark minus committed offset, 0 at least), once the broker has said
        where the partition ends; read at scrape time, from another thread, so only from
        copies."""
        consumer = self._consumer
        if consumer is None:
            return {}
        behind = {}
        for tp, partition in list(self._partitions.items()):
            highwater, committed = consumer.highwater(tp), partition.offsets.committed_offset
            if highwater is None:
                continue
            # Nothing fetched since the assignment, though a fetch has answered with the
            # partition's end: it is caught up (a backlog would have been fetched). Not
            # the whole partition, as a committed offset of 0 would have it.
            behind[(tp.topic, tp.partition)] = (
                0 if committed is None else max(0, highwater - committed)
            )
        return behind

    # -- the loop -------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then finish in-flight work within the shutdown
        timeout, commit what is finished and leave the group."""
        kafka = self._settings.kafka
        consumer = AIOKafkaConsumer(
            group_id=kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=max(kafka.session_timeout_ms // 3, 100),
            max_poll_records=kafka.max_in_flight,
            **kafka_kwargs(kafka),
        )
        consumer.subscribe([kafka.uploads_topic], listener=_Rebalance(self))
        producer = AIOKafkaProducer(
            acks="all", max_request_size=MAX_REQUEST_BYTES, **kafka_kwargs(kafka)
        )
        log.info(
            "consuming %s as group %s (at most %d in flight)",
            kafka.uploads_topic,
            kafka.group_id,
            kafka.max_in_flight,
        )
        try:
            await producer.start()
            await consumer.start()
        except BaseException:
            # Both closed, started or not, so that neither is left open (nor reported
            # unclosed when it is collected).
            await consumer.stop()
            await producer.stop()
            raise
        self._consumer = consumer
        handler = UploadHandler(
            settings=self._settings,
            start=partial(start_upload_check, self._client, self._settings),
            s3=self._s3,
            producer=producer,
            retries=self._retries,
            counters=self.counters,
            metrics=self.metrics,
        )
        try:
            await self._consume(stop, handler)
            await self._drain(kafka.shutdown_timeout_s)
            if self._crash is not None:
                # A bug met while draining is no less one than while consuming.
                raise self._crash
        finally:
            # Only after a crash or a drain timeout is anything still in flight.
            await self._cancel(list(self._partitions.values()))
            with contextlib.suppress(TimeoutError):
                # A broker that is down would hold the commit forever.
                await asyncio.wait_for(
                    self._commit(list(self._partitions.values())), max(kafka.shutdown_timeout_s, 1)
                )
            await consumer.stop()  # leaves the group: the partitions move on at once
            await producer.stop()
            log.info("intake stopped: %s", self.counters)

    async def _consume(self, stop: asyncio.Event, handler: UploadHandler) -> None:
        kafka = self._settings.kafka
        next_commit = time.monotonic() + kafka.commit_interval_s
        next_stats = time.monotonic() + kafka.stats_interval_s
        while not stop.is_set():
            if self._crash is not None:
                raise self._crash
            paused = self._pause_while_failing()
            free = kafka.max_in_flight - self._in_flight
            if free > 0 or paused:
                # Paused partitions return nothing, but polling keeps the membership alive
                # and lets a stop or a rebalance through.
                batches = await self._consumer.getmany(
                    timeout_ms=int(_POLL_S * 1000), max_records=max(free, 1)
                )
                self._dispatch(batches, handler)
            else:
                # Full: not fetching leaves the prefetched messages where they are.
                self._slot_freed.clear()
                # asyncio.timeout, not wait_for: no extra task per wait on this hot path.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_POLL_S):
                        await self._slot_freed.wait()
            now = time.monotonic()
            if now >= next_commit:
                await self._commit(list(self._partitions.values()))
                next_commit = now + kafka.commit_interval_s
            if now >= next_stats:
                log.info("intake counters: %s (in flight %d)", self.counters, self._in_flight)
                next_stats = now + kafka.stats_interval_s

    def _pause_while_failing(self) -> bool:
        consumer = self._consumer
        if self._retries.outages:
            # Checked on every round: a rebalance may have assigned unpaused partitions.
            fresh = consumer.assignment() - consumer.paused()
            if fresh:
                consumer.pause(*fresh)
                self._paused = True
                log.warning(
                    "pausing %s: %d message(s) wait out an infrastructure failure",
                    _names(fresh),
                    self._retries.outages,
                )
            return True
        if self._paused:
            paused = consumer.paused()
            consumer.resume(*paused)
            self._paused = False
            log.info("resuming %s", _names(paused))
        return False

    def _dispatch(self, batches: dict[TopicPartition, list[Any]], handler: UploadHandler) -> None:
        for tp, records in batches.items():
            partition = self._partitions.get(tp)
            if partition is None:
                continue  # revoked meanwhile: its new owner reads these again
            for record in records:
                partition.offsets.fetched(record.offset)
                task = asyncio.create_task(
                    self._process(handler, record, partition), name=f"{_name(tp)}@{record.offset}"
                )
                partition.tasks.add(task)
                self._in_flight += 1
                task.add_done_callback(partial(self._task_done, partition))

    def _task_done(self, partition: _Partition, task: asyncio.Task[None]) -> None:
        partition.tasks.discard(task)
        self._in_flight -= 1
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None and self._crash is None:
            # A bug, not a bad event nor an outage: stop rather than stall the partition.
            self._crash = task.exception()

    async def _process(self, handler: UploadHandler, record: Any, partition: _Partition) -> None:
        await handler.handle(record)
        partition.offsets.finished(record.offset)

    async def _drain(self, timeout_s: float) -> None:
        tasks = [t for p in self._partitions.values() for t in p.tasks]
        if not tasks:
            return
        log.info(
            "stopping: waiting up to %.0f s for %d in-flight message(s)", timeout_s, len(tasks)
        )
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        if pending:
            log.warning(
                "dropping %d unfinished message(s) uncommitted; they will be delivered again",
                len(pending),
            )

    # -- rebalancing and commits ----------------------------------------------------------

    def _assign(self, assigned: set[TopicPartition]) -> None:
        for tp in assigned:
            self._partitions.setdefault(tp, _Partition(tp))
        log.info("partitions assigned: %s", _names(assigned))

    async def _revoke(self, revoked: set[TopicPartition]) -> None:
        if not revoked:
            return  # the first join of a group member
        dropped = [self._partitions.pop(tp) for tp in revoked if tp in self._partitions]
        # Unfinished work is dropped, not waited for: the next owner starts from the
        # committed offset and the idempotent start dedupes what was already started.
        await self._cancel(dropped)
        unfinished = sum(p.offsets.unfinished for p in dropped)
        committed = await self._commit(dropped)
        log.info(
            "partitions revoked: %s (committed %s; dropped %d unfinished message(s))",
            _names(revoked),
            ", ".join(f"{_name(tp)}@{offset}" for tp, offset in sorted(committed.items()))
            or "nothing new",
            unfinished,
        )

    async def _cancel(self, partitions: Sequence[_Partition]) -> None:
        tasks = [t for p in partitions for t in p.tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _commit(self, partitions: Sequence[_Partition]) -> dict[TopicPartition, int]:
        offsets = {}
        for partition in partitions:
            position = partition.offsets.to_commit()
            if position is not None:
                offsets[partition.tp] = position
        if not offsets:
            return {}
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # The group rebalanced under us; the revoke handler committed what it could.
            log.info("commit of %s skipped: the group is rebalancing", _names(offsets))
            return {}
        except KafkaError as exc:
            log.warning("commit of %s failed, will retry: %r", _names(offsets), exc)
            return {}
        for partition in partitions:
            if partition.tp in offsets:
                partition.offsets.committed(offsets[partition.tp])
        return offsets


async def run_intake(
    settings: Settings, stop: asyncio.Event, telemetry: Telemetry | None = None
) -> None:
    """``docpipe consume``: connect, then consume until ``stop`` is set."""
    options = telemetry.client_options() if telemetry else {}
    client = await temporal_client_waiting(
        settings.temporal,
        settings.codec,
        stop,
        backoff=settings.kafka.retry_backoff,
        retry_config=_TEMPORAL_RETRY,
        **options,
    )
    if client is None:
        return
    # Without docpipe's search attributes Temporal refuses every start alike: consumed,
    # every event would be dead-lettered. Nothing is consumed until they exist.
    namespace = settings.temporal.namespace
    if await search_attributes_registered(client, namespace, stop, settings.kafka.retry_backoff):
        metrics = IntakeMetrics(telemetry.registry) if telemetry is not None else None
        intake = UploadIntake(settings, client, s3_client(settings.s3), metrics)
        if telemetry is not None:
            telemetry.registry.register(IntakeCollector(intake))
        await intake.run(stop)
