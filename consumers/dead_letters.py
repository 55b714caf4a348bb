"""The dead-letter topic: what is written there, and the operator's list and replay.

A dead letter is the original message, key and value bytes unchanged (and its own headers),
plus ``docpipe.*`` headers saying why it was refused and where it came from.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import heapq
import time
from collections import Counter
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from consumers.events import Rejected
from infra.clients import kafka_kwargs
from infra.settings import KafkaSettings

REASON = "docpipe.reason"
MESSAGE = "docpipe.message"
SOURCE_TOPIC = "docpipe.source.topic"
SOURCE_PARTITION = "docpipe.source.partition"
SOURCE_OFFSET = "docpipe.source.offset"
# Set instead of copying the value when the broker refuses a message that large.
VALUE_OMITTED = "docpipe.value_omitted_bytes"
# Set on a replayed message: the dead letter it came from (topic/partition/offset).
REPLAYED_FROM = "docpipe.replayed_from"

_OWN = frozenset({REASON, MESSAGE, SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET, VALUE_OMITTED})

# Dead letters are at most as large as what upstream could publish; the broker enforces
# its own limit, so the client-side one only has to be out of the way.
MAX_REQUEST_BYTES = 64 << 20

Headers = tuple[tuple[str, bytes], ...]


def dead_letter_headers(
    rejected: Rejected,
    *,
    topic: str,
    partition: int,
    offset: int,
    original: Sequence[tuple[str, bytes]] = (),
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: the original message's own, then why and where from.

    A replayed message that is refused again keeps its ``docpipe.replayed_from``, so its
    history stays visible; earlier reason headers are replaced, not repeated.
    """
    headers = [(k, bytes(v)) for k, v in original if k not in _OWN]
    headers += [
        (REASON, rejected.reason.encode()),
        (MESSAGE, rejected.message.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(partition).encode()),
        (SOURCE_OFFSET, str(offset).encode()),
    ]
    return headers


@dataclass(frozen=True)
class DeadLetter:
    """One message of the dead-letter topic, as an operator sees it."""

    reason: str
    message: str
    source_topic: str
    source_partition: int
    source_offset: int
    # Where the dead letter itself is.
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None = field(repr=False)
    value: bytes | None = field(repr=False)
    # The original message's headers (docpipe's own reason headers removed).
    headers: Headers = field(default=(), repr=False)
    # Set when the broker refused the original value as too large: its size in bytes.
    value_omitted_bytes: int | None = None

    @classmethod
    def from_record(cls, record: Any) -> DeadLetter:
        """Read a consumed dead-letter record; missing headers read as ``unknown``/-1."""
        own = {k: bytes(v).decode(errors="replace") for k, v in record.headers if k in _OWN}

        def number(name: str) -> int:
            try:
                return int(own.get(name, "-1"))
            except ValueError:
                return -1

        return cls(
            reason=own.get(REASON, "unknown"),
            message=own.get(MESSAGE, ""),
            source_topic=own.get(SOURCE_TOPIC, ""),
            source_partition=number(SOURCE_PARTITION),
            source_offset=number(SOURCE_OFFSET),
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple((k, bytes(v)) for k, v in record.headers if k not in _OWN),
            value_omitted_bytes=number(VALUE_OMITTED) if VALUE_OMITTED in own else None,
        )


class DeadLetterReadError(RuntimeError):
    """The dead-letter topic could not be read to its end."""


async def read_dead_letters(
    kafka: KafkaSettings, *, timeout_s: float = 30.0
) -> AsyncGenerator[DeadLetter, None]:
    """Every dead letter present when reading starts, oldest first per partition.

    Reads with a throwaway consumer (no group, nothing committed), from the beginning of
    each partition up to its high watermark as first seen: letters written meanwhile (for
    example by a replay that failed again) are left for the next read.

    Raises:
        DeadLetterReadError: the topic does not exist, or its end was not reached in time.
    """
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # An empty partition answers after this wait; the default makes `dlq list` slow.
        fetch_max_wait_ms=100,
        **kafka_kwargs(kafka),
    )
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata, so that the partitions are known
        numbers = consumer.partitions_for_topic(kafka.dlq_topic)
        if not numbers:
            raise DeadLetterReadError(f"topic {kafka.dlq_topic!r} does not exist")
        partitions = [TopicPartition(kafka.dlq_topic, n) for n in sorted(numbers)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        # The broker's end_offsets are not trusted (wrong on some brokers); the high
        # watermark of a fetch response is.
        ends: dict[TopicPartition, int] = {}
        remaining = set(partitions)
        deadline = time.monotonic() + timeout_s
        while remaining:
            if time.monotonic() > deadline:
                raise DeadLetterReadError(
                    f"could not read {kafka.dlq_topic!r} to its end within {timeout_s:.0f} s"
                )
            batches = await consumer.getmany(*remaining, timeout_ms=200)
            for tp in list(remaining):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends.setdefault(tp, highwater)
                for record in batches.get(tp, []):
                    if record.offset < ends.get(tp, record.offset + 1):
                        yield DeadLetter.from_record(record)
                if tp in ends and await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class DeadLetterSummary:
    """Counts by reason and the most recent dead letters."""

    total: int
    by_reason: dict[str, int]
    recent: list[DeadLetter]


async def summarize_dead_letters(
    kafka: KafkaSettings, *, examples: int = 5, timeout_s: float = 30.0
) -> DeadLetterSummary:
    """Count the dead letters by reason and keep the ``examples`` most recent ones."""
    by_reason: Counter[str] = Counter()
    # The newest ``examples`` letters across partitions: a min-heap on (time, place).
    newest: list[tuple[int, int, int, DeadLetter]] = []
    async with contextlib.aclosing(read_dead_letters(kafka, timeout_s=timeout_s)) as letters:
        async for letter in letters:
            by_reason[letter.reason] += 1
            if examples <= 0:
                continue
            # Keep no bytes of the documents' events, in memory or in the output.
            entry = (
                letter.timestamp_ms,
                letter.partition,
                letter.offset,
                dataclasses.replace(letter, key=None, value=None, headers=()),
            )
            if len(newest) < examples:
                heapq.heappush(newest, entry)
            elif entry[:3] > newest[0][:3]:
                heapq.heapreplace(newest, entry)
    return DeadLetterSummary(
        total=sum(by_reason.values()),
        by_reason=dict(by_reason.most_common()),
        recent=[entry[3] for entry in sorted(newest, key=lambda e: e[:3])],
    )


def format_summary(summary: DeadLetterSummary, topic: str) -> str:
    """The text ``docpipe dlq list`` prints: reasons, counts and where examples came from."""
    lines = [f"{summary.total} dead letter(s) in {topic}"]
    if summary.by_reason:
        width = max(len("reason"), *(len(r) for r in summary.by_reason))
        lines += ["", f"{'reason':<{width}}  count"]
        lines += [f"{reason:<{width}}  {count}" for reason, count in summary.by_reason.items()]
    if summary.recent:
        lines += ["", "most recent:"]
        for letter in reversed(summary.recent):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(letter.timestamp_ms / 1000))
            source = f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
            lines.append(
                f"  {when}  {letter.reason}  from {source}  "
                f"(dead letter {letter.partition}@{letter.offset}): {letter.message}"
            )
    return "\n".join(lines)


async def replay_dead_letters(
    kafka: KafkaSettings,
    *,
    reason: str | None = None,
    limit: int | None = None,
    timeout_s: float = 30.0,
) -> list[DeadLetter]:
    """Publish dead letters' original key and value again to the uploads topic.

    They go through validation again like any upload event. Replaying a letter twice is
    harmless: workflow starts are idempotent. The dead letters themselves stay where they
    are (the topic is a log; ``dlq list`` keeps counting them).

    Args:
        reason: replay only letters with this reason code.
        limit: replay at most this many (oldest first).

    Returns:
        The letters replayed, without their bytes.
    """
    producer = AIOKafkaProducer(
        acks="all", max_request_size=MAX_REQUEST_BYTES, **kafka_kwargs(kafka)
    )
    await producer.start()
    replayed: list[DeadLetter] = []
    pending: list[asyncio.Future[Any]] = []
    try:
        async with contextlib.aclosing(read_dead_letters(kafka, timeout_s=timeout_s)) as letters:
            async for letter in letters:
                if limit is not None and len(replayed) >= limit:
                    break
                if reason is not None and letter.reason != reason:
                    continue
                if letter.value_omitted_bytes is not None:
                    continue  # nothing to replay: the broker refused to keep the bytes
                origin = f"{kafka.dlq_topic}/{letter.partition}/{letter.offset}".encode()
                headers = [h for h in letter.headers if h[0] != REPLAYED_FROM]
                pending.append(
                    await producer.send(
                        kafka.uploads_topic,
                        value=letter.value,
                        key=letter.key,
                        headers=[*headers, (REPLAYED_FROM, origin)],
                    )
                )
                replayed.append(dataclasses.replace(letter, key=None, value=None, headers=()))
        # Every send is acknowledged before the replay reports success.
        await asyncio.gather(*pending)
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
    return replayed
