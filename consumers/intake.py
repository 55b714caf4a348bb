"""The Kafka intake: upload events in, one Temporal workflow start per document version out.

What it guarantees, whatever crashes or redelivers:

- An offset is committed only when every message below it of its partition was either
  started in Temporal (the start call returned) or written to the dead-letter topic (the
  write was acknowledged). Messages are worked on concurrently and finish in any order.
- Starts are idempotent (deterministic workflow ID, ``USE_EXISTING``, ``REJECT_DUPLICATE``):
  a redelivered or duplicated event costs a dedupe, never a second check.
- A valid event is never dead-lettered because Temporal, S3 or the broker is down: outages
  are retried with capped exponential backoff while fetching is paused, so memory stays
  bounded, and the intake resumes by itself once they work again.
- One event that S3 or Temporal refuses for good (a 403 on its object, another 4xx, an
  invalid start) stalls nothing: it is tried a few times while the others go on, then
  dead-lettered with the reason (``pipeline.failures`` sorts the two kinds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError, MessageSizeTooLargeError
from temporalio.client import Client
from temporalio.service import RetryConfig, RPCError

from consumers.dead_letters import MAX_REQUEST_BYTES, VALUE_OMITTED, dead_letter_headers
from consumers.events import Rejected, Upload, parse_upload_event
from consumers.metrics import IntakeCollector, IntakeCounters, IntakeMetrics
from consumers.offsets import PartitionOffsets
from consumers.tracing import upload_event_span
from infra.backoff import Backoff, backoff_delay
from infra.clients import kafka_kwargs, s3_client, temporal_client_waiting
from infra.settings import KafkaSettings, Settings, check_request, intake_lane
from pipeline.failures import S3Failure, classify_s3, describe_s3, temporal_refused
from pipeline.lanes import event_field
from pipeline.models import DocumentRef
from pipeline.reasons import Reason
from pipeline.starts import start_check

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from infra.telemetry import Telemetry

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long one fetch waits for messages: bounds how late a stop, a commit or a resume is.
_POLL_S = 0.2
# What an attempt's failure is: worth waiting out, refused for good (the dead letter it
# becomes), or none of ours (None: a bug, raised).
Verdict = Literal["transient"] | Rejected | None
# Retries logged as warnings: the first, then every tenth (the counters have them all).
_LOG_EVERY = 10
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
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._in_flight = 0
        # Messages currently waiting out an infrastructure failure: fetching pauses while
        # there are any, so that a failing Temporal is not fed more work.
        self._failing = 0
        self._paused = False
        self._slot_freed = asyncio.Event()
        self._crash: BaseException | None = None
        self._consumer: Any = None
        self._producer: Any = None

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
        (high watermark minus committed offset, 0 at least); read at scrape time, from
        another thread, so only from copies."""
        consumer = self._consumer
        if consumer is None:
            return {}
        behind = {}
        for tp, partition in list(self._partitions.items()):
            highwater, committed = consumer.highwater(tp), partition.offsets.committed_offset
            if highwater is not None:
                behind[(tp.topic, tp.partition)] = max(0, highwater - (committed or 0))
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
        await producer.start()
        try:
            await consumer.start()
        except BaseException:
            await producer.stop()
            raise
        self._consumer, self._producer = consumer, producer
        try:
            await self._consume(stop)
            await self._drain(kafka.shutdown_timeout_s)
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

    async def _consume(self, stop: asyncio.Event) -> None:
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
                self._dispatch(batches)
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
        if self._failing:
            # Checked on every round: a rebalance may have assigned unpaused partitions.
            fresh = consumer.assignment() - consumer.paused()
            if fresh:
                consumer.pause(*fresh)
                self._paused = True
                log.warning(
                    "pausing %s: %d message(s) wait out an infrastructure failure",
                    _names(fresh),
                    self._failing,
                )
            return True
        if self._paused:
            paused = consumer.paused()
            consumer.resume(*paused)
            self._paused = False
            log.info("resuming %s", _names(paused))
        return False

    def _dispatch(self, batches: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in batches.items():
            partition = self._partitions.get(tp)
            if partition is None:
                continue  # revoked meanwhile: its new owner reads these again
            for record in records:
                partition.offsets.fetched(record.offset)
                task = asyncio.create_task(
                    self._process(record, partition), name=f"{_name(tp)}@{record.offset}"
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

    async def _process(self, record: Any, partition: _Partition) -> None:
        with upload_event_span(record):
            await self._handle(record)
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

    # -- one message ----------------------------------------------------------------------

    async def _handle(self, record: Any) -> None:
        self.counters.consumed += 1
        parsed = parse_upload_event(
            record.value,
            allowed_buckets=self._settings.s3.documents_buckets,
            max_bytes=self._settings.kafka.max_message_bytes,
            tenant_field=event_field(self._settings.temporal.fairness_key),
        )
        if isinstance(parsed, Rejected):
            await self._dead_letter(record, parsed)
            return
        self.counters.skipped += parsed.skipped
        # Every object is identified before any check starts, so that a message naming a
        # missing object is dead-lettered whole (a replay then dedupes the others).
        documents = []
        for upload in parsed.uploads:
            where = f"s3://{upload.bucket}/{upload.key}"
            document = await self._attempt(
                "head", f"HEAD {where}", partial(self._identify, upload), _s3_verdict
            )
            if document is None:
                document = Rejected(Reason.OBJECT_MISSING, f"object {where} does not exist")
            if isinstance(document, Rejected):
                await self._dead_letter(record, document)
                return
            documents.append((document, upload.tenant))
        uploaded_at = record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else None
        for document, tenant in documents:
            started = await self._attempt(
                "start",
                f"start {document.workflow_id}",
                partial(self.start, document, uploaded_at=uploaded_at, tenant=tenant),
                _start_verdict,
            )
            if isinstance(started, Rejected):
                await self._dead_letter(record, started)
                return

    async def _identify(self, upload: Upload) -> DocumentRef | None:
        """The document an upload names; HEADs the object when the event has no version."""
        version_id, etag, size = upload.version_id, upload.etag, upload.size
        if not (version_id or etag):
            try:
                meta = await asyncio.to_thread(
                    self._s3.head_object, Bucket=upload.bucket, Key=upload.key
                )
            except Exception as exc:
                if classify_s3(exc) is S3Failure.MISSING:
                    return None
                raise
            version_id = meta.get("VersionId") if meta.get("VersionId") != "null" else None
            etag = str(meta.get("ETag", "")).strip('"') or None
            size = int(meta.get("ContentLength", 0))
        return DocumentRef(
            bucket=upload.bucket, key=upload.key, version_id=version_id, etag=etag, size=size
        )

    async def start(
        self, document: DocumentRef, *, uploaded_at: float | None = None, tenant: str | None = None
    ) -> bool:
        """Start the check of one document version; True if new, False if deduped.

        Args:
            uploaded_at: when the upload event was published (epoch seconds): how old it
                is now is measured, and the check measures its way to the report from it.

        Raises:
            RPCError: Temporal failed, refused the start or cannot be reached.
        """
        settings = self._settings
        started = await start_check(
            self._client,
            check_request(settings, document, uploaded_at=uploaded_at),
            workflow_id=document.workflow_id,
            task_queue=settings.temporal.task_queue,
            # Live uploads go before re-checks, in fair shares between tenants.
            priority=intake_lane(settings, document, tenant),
        )
        if not started:
            # A running check is not doubled, a finished one is not redone.
            self.counters.deduped += 1
            log.debug("already checked or running: %s", document.workflow_id)
            return False
        self.counters.started += 1
        if uploaded_at is not None:
            self.metrics.event_age.observe(max(0.0, time.time() - uploaded_at))
        log.info(
            "started the check of %s",
            document.document_id,
            extra={"document_id": document.document_id, "workflow_id": document.workflow_id},
        )
        return True

    async def _dead_letter(self, record: Any, rejected: Rejected) -> None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        await self._attempt(
            "dead_letter",
            f"dead-letter {where}",
            partial(self._write_dead_letter, record, rejected),
            _kafka_verdict,
        )
        self.counters.dead_lettered_for(rejected.reason)
        log.warning("dead-lettered %s: %s (%s)", where, rejected.reason, rejected.message)

    async def _write_dead_letter(self, record: Any, rejected: Rejected) -> None:
        dlq_topic = self._settings.kafka.dlq_topic
        headers = dead_letter_headers(
            rejected,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            original=record.headers or (),
        )
        try:
            await self._producer.send_and_wait(
                dlq_topic, value=record.value, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # Retrying cannot help; the reason and origin must still be visible.
            size = len(record.value or b"")
            log.warning("the dead-letter topic refuses %d bytes: keeping the headers only", size)
            await self._producer.send_and_wait(
                dlq_topic,
                value=None,
                key=record.key,
                headers=[*headers, (VALUE_OMITTED, str(size).encode())],
            )

    async def _attempt(
        self,
        step: str,
        what: str,
        action: Callable[[], Awaitable[T]],
        verdict_of: Callable[[str, BaseException], Verdict],
    ) -> T | Rejected:
        """Run ``action`` until it succeeds or is refused for good, backing off between.

        An outage (a transient failure) is retried without limit, and while any message
        waits one out, fetching pauses. A refusal is tried
        ``DOCPIPE_KAFKA_PERMANENT_FAILURE_ATTEMPTS`` times, without pausing anything (it
        is this message's problem, not everyone's); then its dead letter is returned.
        """
        kafka = self._settings.kafka
        attempt = refusals = 0
        waited = 0.0
        outage = False
        try:
            while True:
                try:
                    result = await action()
                except Exception as exc:
                    verdict = verdict_of(what, exc)
                    if verdict is None:
                        raise
                    if isinstance(verdict, Rejected):
                        refusals += 1
                        if outage:
                            outage, self._failing = False, self._failing - 1
                        if refusals >= kafka.permanent_failure_attempts:
                            log.warning("%s refused %d times: %s", what, refusals, verdict.message)
                            return verdict
                    elif not outage:
                        outage, self._failing = True, self._failing + 1
                    delay = _retry_delay(kafka, attempt)
                    attempt += 1
                    self.counters.retries += 1
                    level = logging.WARNING if attempt % _LOG_EVERY == 1 else logging.DEBUG
                    log.log(level, "%s failed (%d), retry in %.1f s: %r", what, attempt, delay, exc)
                    await asyncio.sleep(delay)
                    waited += delay
                    continue
                if attempt:
                    log.info("%s succeeded after %d retries", what, attempt)
                return result
        finally:
            if outage:
                self._failing -= 1
            if waited:
                self.metrics.retry_wait.labels(step).observe(waited)


def _s3_verdict(what: str, exc: BaseException) -> Verdict:
    kind = classify_s3(exc)
    if kind is S3Failure.ACCESS_DENIED:
        return Rejected(Reason.S3_ACCESS_DENIED, f"{what}: {describe_s3(exc)}")
    if kind is S3Failure.REJECTED:
        return Rejected(Reason.S3_REQUEST_REJECTED, f"{what}: {describe_s3(exc)}")
    return "transient" if kind is not None else None


def _start_verdict(what: str, exc: BaseException) -> Verdict:
    refused = temporal_refused(exc)
    if refused and isinstance(exc, RPCError):
        return Rejected(Reason.START_REJECTED, f"{what}: {exc.status.name}: {exc.message}"[:500])
    return "transient" if refused is not None else None


def _kafka_verdict(what: str, exc: BaseException) -> Verdict:
    # The dead-letter topic is written until it works: losing the message is no option.
    return "transient" if isinstance(exc, KafkaError) else None


def _retry_delay(kafka: KafkaSettings, attempt: int) -> float:
    """The intake's wait before retry ``attempt + 1`` of anything (jittered backoff)."""
    return backoff_delay(
        attempt, initial_s=kafka.retry_initial_s, max_s=kafka.retry_max_s, jitter=random.random()
    )


async def run_intake(
    settings: Settings, stop: asyncio.Event, telemetry: Telemetry | None = None
) -> None:
    """``docpipe consume``: connect, then consume until ``stop`` is set."""
    options = telemetry.client_options() if telemetry else {}
    kafka = settings.kafka
    client = await temporal_client_waiting(
        settings.temporal,
        stop,
        backoff=Backoff(initial_s=kafka.retry_initial_s, max_s=kafka.retry_max_s),
        retry_config=_TEMPORAL_RETRY,
        **options,
    )
    if client is not None:
        metrics = IntakeMetrics(telemetry.registry) if telemetry is not None else None
        intake = UploadIntake(settings, client, s3_client(settings.s3), metrics)
        if telemetry is not None:
            telemetry.registry.register(IntakeCollector(intake))
        await intake.run(stop)
