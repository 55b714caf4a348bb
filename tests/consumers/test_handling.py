"""Handling one upload event: a valid one becomes its starts, a bad one its dead letter
with the reason, an outage is waited out and never dead-lettered.

The handler runs as the intake runs it, on real aiokafka records and a real boto3 client
(its HEADs answered by botocore's ``Stubber``). Two seams are stood in for, both the
handler's own: the start of a check (what ``start_upload_check`` would tell Temporal) and
the dead-letter topic (read back with ``DeadLetter.from_record``, as operators read it).
Waits between retries are recorded, not slept. The real broker and Temporal are the
integration tests' (``tests/integration/test_intake*.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord
from botocore.stub import Stubber
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from consumers.dead_letters import DeadLetter
from consumers.handling import UploadHandler
from consumers.metrics import IntakeCounters
from consumers.metrics import IntakeMetrics
from consumers.retry import Retries
from infra.clients import s3_client
from infra.settings import S3Settings
from infra.settings import Settings
from pipeline.models import DocumentRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SETTINGS = Settings()
TOPIC = SETTINGS.kafka.uploads_topic
# When the records were published: 2023-11-14 22:13:20 UTC, in milliseconds.
PUBLISHED_MS = 1_700_000_000_000


@dataclass
class _Starts:
    """Stands in for starting checks: raises ``failures`` in turn, then starts (or
    finds the check already there, with ``new=False``)."""

    failures: list[Exception] = field(default_factory=list)
    new: bool = True
    tries: int = 0
    started: list[tuple[DocumentRef, float | None, str | None]] = field(default_factory=list)

    async def __call__(
        self, document: DocumentRef, uploaded_at: float | None, tenant: str | None
    ) -> bool:
        self.tries += 1
        if self.failures:
            raise self.failures.pop(0)
        self.started.append((document, uploaded_at, tenant))
        return self.new


@dataclass
class _DeadLetterTopic:
    """Stands in for the producer: raises ``failures`` in turn, then keeps each message
    as the record a reader of the dead-letter topic would get."""

    failures: list[Exception] = field(default_factory=list)
    records: list[ConsumerRecord[bytes, bytes]] = field(default_factory=list)

    async def send_and_wait(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[Any]
    ) -> None:
        if self.failures:
            raise self.failures.pop(0)
        assert topic == SETTINGS.kafka.dlq_topic
        self.records.append(_record(value, key=key, headers=tuple(headers)))

    @property
    def letters(self) -> list[DeadLetter]:
        return [DeadLetter.from_record(record) for record in self.records]


@dataclass
class _Intake:
    """A handler wired as the intake wires it, and what it did."""

    handler: UploadHandler
    starts: _Starts
    dead_letters: _DeadLetterTopic
    counters: IntakeCounters
    metrics: IntakeMetrics
    waits: list[float]


def _record(
    value: bytes | None,
    *,
    key: bytes | None = b"upload",
    offset: int = 41,
    headers: tuple[tuple[str, bytes | None], ...] = (),
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=TOPIC,
        partition=2,
        offset=offset,
        timestamp=PUBLISHED_MS,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=headers,
    )


def _event(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


@pytest.fixture(scope="module")
def s3() -> S3Client:
    # Never reached: the stubber answers, or the test fails on an unexpected call.
    return s3_client(S3Settings())


@pytest.fixture
def heads(s3: S3Client) -> Iterator[Stubber]:
    with Stubber(s3) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _intake(
    s3: S3Client, starts: _Starts | None = None, dead_letters: _DeadLetterTopic | None = None
) -> _Intake:
    counters, metrics, waits = IntakeCounters(), IntakeMetrics(), list[float]()

    async def wait(seconds: float) -> bool:
        waits.append(seconds)
        return True

    retries = Retries(
        backoff=SETTINGS.kafka.retry_backoff,
        refusal_limit=SETTINGS.kafka.permanent_failure_attempts,
        counters=counters,
        metrics=metrics,
        wait=wait,
        jitter=lambda: 0.0,
    )
    starts = starts or _Starts()
    dead_letters = dead_letters or _DeadLetterTopic()
    handler = UploadHandler(
        settings=SETTINGS,
        start=starts,
        s3=s3,
        producer=dead_letters,
        retries=retries,
        counters=counters,
        metrics=metrics,
    )
    return _Intake(handler, starts, dead_letters, counters, metrics, waits)


# --- valid events ---------------------------------------------------------------------------


async def test_a_valid_event_becomes_one_start_of_its_version(s3: S3Client, heads: Stubber) -> None:
    intake = _intake(s3)
    event = _event(bucket="documents", key="in/a.pdf", version_id="v1", etag="e1", size=12)
    await intake.handler.handle(_record(event))
    document = DocumentRef(bucket="documents", key="in/a.pdf", version_id="v1", etag="e1", size=12)
    assert intake.starts.started == [(document, PUBLISHED_MS / 1000, None)]
    assert intake.dead_letters.records == []
    assert (intake.counters.consumed, intake.counters.started) == (1, 1)
    assert intake.metrics.event_age._sum.get() > 0, "its age at the start is observed"


async def test_an_s3_notification_starts_every_created_object_and_skips_the_rest(
    s3: S3Client, heads: Stubber
) -> None:
    def record(event_name: str, key: str) -> dict[str, Any]:
        obj = {"key": key, "versionId": "v1"}
        return {"eventName": event_name, "s3": {"bucket": {"name": "documents"}, "object": obj}}

    intake = _intake(s3)
    records = [
        record("ObjectCreated:Put", "in/a+b.pdf"),
        record("ObjectRemoved:Delete", "in/gone.pdf"),
        record("ObjectCreated:Copy", "in/c.pdf"),
    ]
    await intake.handler.handle(_record(_event(Records=records)))
    assert [d.key for d, _, _ in intake.starts.started] == ["in/a b.pdf", "in/c.pdf"]
    assert intake.counters.skipped == 1
    assert intake.dead_letters.records == []


async def test_a_check_already_there_is_counted_as_deduped_not_started(
    s3: S3Client, heads: Stubber
) -> None:
    intake = _intake(s3, starts=_Starts(new=False))
    await intake.handler.handle(_record(_event(bucket="documents", key="a.pdf", etag="e1")))
    assert len(intake.starts.started) == 1
    assert (intake.counters.started, intake.counters.deduped) == (0, 1)


async def test_an_event_without_version_starts_the_version_its_head_names(
    s3: S3Client, heads: Stubber
) -> None:
    heads.add_response(
        "head_object",
        {"VersionId": "v7", "ETag": '"e7"', "ContentLength": 99},
        {"Bucket": "documents", "Key": "in/a.pdf"},
    )
    intake = _intake(s3)
    await intake.handler.handle(_record(_event(bucket="documents", key="in/a.pdf")))
    ((document, _, _),) = intake.starts.started
    assert document == DocumentRef(
        bucket="documents", key="in/a.pdf", version_id="v7", etag="e7", size=99
    )


async def test_an_unversioned_bucket_s_null_version_is_no_version(
    s3: S3Client, heads: Stubber
) -> None:
    heads.add_response("head_object", {"VersionId": "null", "ETag": '"e7"', "ContentLength": 1})
    intake = _intake(s3)
    await intake.handler.handle(_record(_event(bucket="documents", key="in/a.pdf")))
    ((document, _, _),) = intake.starts.started
    assert (document.version_id, document.etag) == (None, "e7")


# --- dead letters ---------------------------------------------------------------------------


async def test_a_malformed_event_is_dead_lettered_as_it_came_with_its_reason(
    s3: S3Client, heads: Stubber
) -> None:
    intake = _intake(s3)
    junk = b'{"bucket": "documents", "key": '
    await intake.handler.handle(_record(junk, key=b"k1", headers=(("trace-id", b"t1"),)))
    (letter,) = intake.dead_letters.letters
    assert letter.reason == "not_json"
    assert letter.message
    assert (letter.key, letter.value, letter.headers) == (b"k1", junk, (("trace-id", b"t1"),))
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (TOPIC, 2, 41)
    assert intake.starts.tries == 0
    assert (intake.counters.dead_lettered, intake.counters.by_reason) == (1, {"not_json": 1})


async def test_a_malformed_event_with_a_header_without_a_value_is_dead_lettered_with_it(
    s3: S3Client, heads: Stubber
) -> None:
    intake = _intake(s3)
    headers = (("x-empty", None), ("trace-id", b"t1"))
    await intake.handler.handle(_record(b"not json", key=b"k1", headers=headers))
    (letter,) = intake.dead_letters.letters
    assert (letter.reason, letter.headers) == ("not_json", headers)


async def test_an_event_naming_a_bucket_not_allowed_is_dead_lettered_unread(
    s3: S3Client, heads: Stubber
) -> None:
    intake = _intake(s3)
    await intake.handler.handle(_record(_event(bucket="payroll", key="salaries.pdf")))
    assert [letter.reason for letter in intake.dead_letters.letters] == ["bucket_not_allowed"]
    assert intake.starts.tries == 0


async def test_a_message_naming_a_missing_object_is_dead_lettered_whole(
    s3: S3Client, heads: Stubber
) -> None:
    # The first object exists; the second does not: neither is started, so that replaying
    # the dead letter later starts both.
    heads.add_response("head_object", {"VersionId": "v1", "ETag": '"e1"', "ContentLength": 1})
    heads.add_client_error("head_object", service_error_code="404", http_status_code=404)
    notification = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "documents"}, "object": {"key": k}},
            }
            for k in ("in/here.pdf", "in/not-yet.pdf")
        ]
    }
    intake = _intake(s3)
    await intake.handler.handle(_record(json.dumps(notification).encode()))
    (letter,) = intake.dead_letters.letters
    assert letter.reason == "object_missing"
    assert "s3://documents/in/not-yet.pdf" in letter.message
    assert intake.starts.tries == 0


async def test_an_object_s3_refuses_is_tried_a_few_times_then_dead_lettered(
    s3: S3Client, heads: Stubber
) -> None:
    for _ in range(SETTINGS.kafka.permanent_failure_attempts):
        heads.add_client_error(
            "head_object", service_error_code="AccessDenied", http_status_code=403
        )
    intake = _intake(s3)
    await intake.handler.handle(_record(_event(bucket="documents", key="in/secret.pdf")))
    (letter,) = intake.dead_letters.letters
    assert letter.reason == "s3_access_denied"
    assert "403" in letter.message
    assert len(intake.waits) == SETTINGS.kafka.permanent_failure_attempts - 1
    assert intake.starts.tries == 0


async def test_a_start_temporal_refuses_is_dead_lettered_as_start_rejected(
    s3: S3Client, heads: Stubber
) -> None:
    refusals: list[Exception] = [
        RPCError("payload too large", RPCStatusCode.INVALID_ARGUMENT, b"")
        for _ in range(SETTINGS.kafka.permanent_failure_attempts)
    ]
    intake = _intake(s3, starts=_Starts(failures=refusals))
    await intake.handler.handle(_record(_event(bucket="documents", key="a.pdf", version_id="v1")))
    (letter,) = intake.dead_letters.letters
    assert letter.reason == "start_rejected"
    assert "INVALID_ARGUMENT: payload too large" in letter.message
    assert intake.starts.started == []


async def test_a_dead_letter_too_large_for_the_topic_keeps_its_headers_and_size(
    s3: S3Client, heads: Stubber
) -> None:
    dead_letters = _DeadLetterTopic(failures=[MessageSizeTooLargeError()])
    intake = _intake(s3, dead_letters=dead_letters)
    await intake.handler.handle(_record(b"\xff" * 100))
    (letter,) = intake.dead_letters.letters
    assert (letter.reason, letter.value, letter.value_omitted_bytes) == ("not_utf8", None, 100)
    assert (letter.source_topic, letter.source_partition, letter.source_offset) == (TOPIC, 2, 41)


# --- outages --------------------------------------------------------------------------------


async def test_a_temporal_outage_is_waited_out_not_dead_lettered(
    s3: S3Client, heads: Stubber
) -> None:
    outage: list[Exception] = [
        RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"") for _ in range(5)
    ]
    intake = _intake(s3, starts=_Starts(failures=outage))
    await intake.handler.handle(_record(_event(bucket="documents", key="a.pdf", version_id="v1")))
    assert len(intake.starts.started) == 1
    assert intake.dead_letters.records == []
    assert intake.counters.retries == 5
    # More tries than any refusal gets, on the backoff (jitter 0: half the nominal delays).
    assert intake.waits == [0.25, 0.5, 1.0, 2.0, 4.0]


async def test_an_s3_outage_during_the_head_is_waited_out_not_dead_lettered(
    s3: S3Client, heads: Stubber
) -> None:
    for _ in range(4):
        heads.add_client_error("head_object", service_error_code="SlowDown", http_status_code=503)
    heads.add_response("head_object", {"VersionId": "v1", "ETag": '"e1"', "ContentLength": 1})
    intake = _intake(s3)
    await intake.handler.handle(_record(_event(bucket="documents", key="in/a.pdf")))
    assert len(intake.starts.started) == 1
    assert intake.dead_letters.records == []
    assert intake.counters.retries == 4


async def test_a_broker_outage_holds_the_dead_letter_until_it_is_written(
    s3: S3Client, heads: Stubber
) -> None:
    dead_letters = _DeadLetterTopic(failures=[KafkaConnectionError() for _ in range(4)])
    intake = _intake(s3, dead_letters=dead_letters)
    await intake.handler.handle(_record(b"not json"))
    assert [letter.reason for letter in intake.dead_letters.letters] == ["not_json"]
    assert intake.counters.retries == 4
    assert intake.counters.dead_lettered == 1
