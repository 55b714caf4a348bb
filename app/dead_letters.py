"""``docpipe dlq list`` and ``docpipe dlq replay``: the operator's view of dead letters.

The dead letters' format is the intake's (``consumers.dead_letters``); this reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import heapq
import time
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka import TopicPartition

from app.command import CommandError
from app.command import Commands
from consumers.dead_letters import MAX_REQUEST_BYTES
from consumers.dead_letters import REPLAYED_FROM
from consumers.dead_letters import DeadLetter
from infra.clients import TopicMissingError
from infra.clients import kafka_kwargs
from infra.clients import start_kafka
from infra.clients import topic_from_start
from infra.settings import KafkaSettings
from infra.settings import Settings


class DeadLetterReadError(CommandError):
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
    try:
        async with topic_from_start(kafka, kafka.dlq_topic) as (consumer, partitions):
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
    except TopicMissingError as exc:
        raise DeadLetterReadError(str(exc)) from None


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
    await start_kafka(producer, kafka)
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


def add_commands(commands: Commands) -> None:
    """``docpipe dlq list`` and ``docpipe dlq replay``."""
    dlq = commands.add("dlq", "the dead-letter topic: list and replay refused upload events", None)
    below = commands.below(dlq, "dlq_command", required=True)
    listing = below.add("list", "counts by reason and recent examples (no contents)", _list)
    listing.add_argument("--examples", type=int, default=5, help="recent ones to show")
    replay = below.add(
        "replay",
        "publish dead letters' original bytes to the uploads topic again; they are "
        "validated again, and replaying one twice is harmless (starts are idempotent)",
        _replay,
    )
    replay.add_argument("--reason", help="only dead letters with this reason code")
    replay.add_argument("--limit", type=int, help="at most this many, oldest first")


def _list(args: argparse.Namespace, settings: Settings) -> int:
    """Dead letters by reason, and the latest ones."""
    summary = asyncio.run(summarize_dead_letters(settings.kafka, examples=args.examples))
    print(format_summary(summary, settings.kafka.dlq_topic))
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    """Publish dead letters again to the uploads topic."""
    replayed = asyncio.run(
        replay_dead_letters(settings.kafka, reason=args.reason, limit=args.limit)
    )
    print(f"replayed {len(replayed)} dead letter(s) to {settings.kafka.uploads_topic}")
    return 0
