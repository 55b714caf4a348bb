"""The dead-letter topic's contract: what the intake writes there, and how it reads back.

A dead letter is the original message, key and value bytes unchanged (and its own headers),
plus ``docpipe.*`` headers saying why it was refused and where it came from. The operator's
commands that list and replay dead letters are the application's (``app``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from consumers.events import Rejected

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

# Kafka headers as aiokafka reads them: a header may have no value (None).
Header = tuple[str, bytes | None]
Headers = tuple[Header, ...]


def dead_letter_headers(
    rejected: Rejected,
    *,
    topic: str,
    partition: int,
    offset: int,
    original: Sequence[Header] = (),
) -> list[Header]:
    """Headers of a dead letter: the original message's own, then why and where from.

    A replayed message that is refused again keeps its ``docpipe.replayed_from``, so its
    history stays visible; earlier reason headers are replaced, not repeated.
    """
    headers = [(k, _copied(v)) for k, v in original if k not in _OWN]
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
        own = {
            k: bytes(v).decode(errors="replace")
            for k, v in record.headers
            if k in _OWN and v is not None
        }

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
            headers=tuple((k, _copied(v)) for k, v in record.headers if k not in _OWN),
            value_omitted_bytes=number(VALUE_OMITTED) if VALUE_OMITTED in own else None,
        )


def _copied(value: bytes | None) -> bytes | None:
    # Kafka allows a header without a value; it is kept as one, not refused.
    return None if value is None else bytes(value)
