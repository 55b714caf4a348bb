"""Dead letters: headers written, records read back, the operator's summary text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.dead_letters import DeadLetterSummary
from app.dead_letters import format_summary
from consumers.dead_letters import MESSAGE
from consumers.dead_letters import REASON
from consumers.dead_letters import REPLAYED_FROM
from consumers.dead_letters import SOURCE_OFFSET
from consumers.dead_letters import SOURCE_PARTITION
from consumers.dead_letters import SOURCE_TOPIC
from consumers.dead_letters import VALUE_OMITTED
from consumers.dead_letters import DeadLetter
from consumers.dead_letters import Header
from consumers.dead_letters import dead_letter_headers
from consumers.events import Rejected
from pipeline.reasons import DEAD_LETTERS
from pipeline.reasons import EVENT_REFUSALS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@dataclass
class _Record:
    """The fields of an aiokafka ConsumerRecord that dead letters use."""

    headers: Sequence[tuple[str, bytes | None]]
    partition: int = 1
    offset: int = 42
    timestamp: int = 1_700_000_000_000
    key: bytes | None = b"k"
    value: bytes | None = b"original bytes"
    topic: str = "uploads.dlq"


def _headers_of_uploads_2_17(rejected: Rejected) -> list[Header]:
    """The headers of a letter refused from ``uploads`` partition 2, offset 17, that came
    with one header of its own (``trace-id``)."""
    return dead_letter_headers(
        rejected, topic="uploads", partition=2, offset=17, original=[("trace-id", b"t-1")]
    )


def test_headers_say_why_and_where_from_after_the_originals() -> None:
    headers = _headers_of_uploads_2_17(Rejected("not_json", "not JSON: Expecting value"))
    assert headers == [
        ("trace-id", b"t-1"),
        (REASON, b"not_json"),
        (MESSAGE, b"not JSON: Expecting value"),
        (SOURCE_TOPIC, b"uploads"),
        (SOURCE_PARTITION, b"2"),
        (SOURCE_OFFSET, b"17"),
    ]


def test_a_replayed_letter_refused_again_keeps_its_history_not_its_old_reason() -> None:
    original = [
        ("trace-id", b"t-1"),
        (REPLAYED_FROM, b"uploads.dlq/0/3"),
        (REASON, b"object_missing"),
        (SOURCE_OFFSET, b"1"),
    ]
    headers = dead_letter_headers(
        Rejected("object_missing", "still missing"),
        topic="uploads",
        partition=0,
        offset=9,
        original=original,
    )
    names = [name for name, _ in headers]
    assert names.count(REASON) == 1
    assert names.count(SOURCE_OFFSET) == 1
    assert (REPLAYED_FROM, b"uploads.dlq/0/3") in headers
    assert (SOURCE_OFFSET, b"9") in headers


def test_dead_letter_reads_back_from_a_record() -> None:
    headers = _headers_of_uploads_2_17(Rejected("bad_key", "key has a NUL byte"))
    letter = DeadLetter.from_record(_Record(headers=headers))
    assert letter.reason == "bad_key"
    assert letter.message == "key has a NUL byte"
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (
        "uploads",
        2,
        17,
    )
    assert (letter.partition, letter.offset) == (1, 42)
    assert letter.key == b"k"
    assert letter.value == b"original bytes"
    assert letter.headers == (("trace-id", b"t-1"),)
    assert letter.value_omitted_bytes is None


def test_a_header_without_a_value_is_kept_and_reads_back_as_one() -> None:
    # Kafka allows them (librdkafka and Java producers send them); aiokafka reads None.
    headers = dead_letter_headers(
        Rejected("not_json", "not JSON"),
        topic="uploads",
        partition=2,
        offset=17,
        original=[("x-empty", None), ("trace-id", b"t-1")],
    )
    assert headers[:2] == [("x-empty", None), ("trace-id", b"t-1")]
    letter = DeadLetter.from_record(_Record(headers=headers))
    assert letter.headers == (("x-empty", None), ("trace-id", b"t-1"))
    assert (letter.reason, letter.source_offset) == ("not_json", 17)
    # docpipe's own header without a value reads as missing.
    assert DeadLetter.from_record(_Record(headers=[(REASON, None)])).reason == "unknown"


def test_a_letter_without_docpipe_headers_reads_as_unknown() -> None:
    letter = DeadLetter.from_record(_Record(headers=[(SOURCE_OFFSET, b"not a number")]))
    assert letter.reason == "unknown"
    assert letter.source_offset == -1
    assert letter.source_partition == -1


def test_an_omitted_value_is_visible() -> None:
    letter = DeadLetter.from_record(
        _Record(headers=[(REASON, b"too_large"), (VALUE_OMITTED, b"5000000")], value=None)
    )
    assert letter.value_omitted_bytes == 5_000_000


def test_summary_text_shows_counts_and_origins_never_contents() -> None:
    letter = DeadLetter.from_record(
        _Record(
            headers=dead_letter_headers(
                Rejected("not_json", "not JSON: Expecting value"),
                topic="uploads",
                partition=2,
                offset=17,
            ),
            value=b"SECRET DOCUMENT CONTENT",
        )
    )
    summary = DeadLetterSummary(
        total=3, by_reason={"not_json": 2, "bucket_not_allowed": 1}, recent=[letter]
    )
    text = format_summary(summary, "uploads.dlq")
    assert text.splitlines()[0] == "3 dead letter(s) in uploads.dlq"
    assert "not_json            2" in text
    assert "bucket_not_allowed  1" in text
    assert "from uploads[2]@17" in text
    assert "(dead letter 1@42)" in text
    assert "SECRET" not in text


def test_an_empty_dead_letter_topic_is_summarised_in_one_line() -> None:
    text = format_summary(DeadLetterSummary(total=0, by_reason={}, recent=[]), "x.dlq")
    assert text == "0 dead letter(s) in x.dlq"


def test_every_reason_code_is_documented() -> None:
    assert set(EVENT_REFUSALS) < set(DEAD_LETTERS)
    missing = [reason for reason in DEAD_LETTERS if f"| `{reason}` |" not in README]
    assert missing == []
