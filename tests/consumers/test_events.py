"""parse_upload_event: accepted shapes, and one reason code for every rejection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumers.events import Parsed
from consumers.events import Rejected
from consumers.events import Upload
from consumers.events import parse_upload_event
from pipeline.reasons import EVENT_REFUSALS

ALLOWED = frozenset({"documents", "archive"})


def _encode(event: Any) -> bytes:
    return json.dumps(event).encode()


def _parse(value: bytes | None, max_bytes: int = 1 << 20) -> Parsed | Rejected:
    return parse_upload_event(value, allowed_buckets=ALLOWED, max_bytes=max_bytes)


def _record(event_name: str, bucket: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": obj},
    }


def test_a_native_event_is_read_as_its_upload() -> None:
    value = _encode(
        {
            "bucket": "documents",
            "key": "in/a.pdf",
            "version_id": "v1",
            "etag": '"e1"',
            "size": 1234,
            "content_type": "application/pdf",
            "event_id": "ev-1",
        }
    )
    assert _parse(value) == Parsed(
        [Upload(bucket="documents", key="in/a.pdf", version_id="v1", etag='"e1"', size=1234)],
        skipped=0,
    )


def test_native_event_minimal_has_unknown_version() -> None:
    parsed = _parse(_encode({"bucket": "documents", "key": "a.pdf", "version_id": ""}))
    assert parsed == Parsed([Upload(bucket="documents", key="a.pdf")])


def test_a_null_version_is_no_version_so_the_etag_tells_versions_apart() -> None:
    # What S3 gives an object written while its bucket's versioning is off or suspended.
    native = _encode({"bucket": "documents", "key": "a.pdf", "version_id": "null", "etag": "e1"})
    s3 = _encode(
        {
            "Records": [
                _record(
                    "ObjectCreated:Put",
                    "documents",
                    {"key": "a.pdf", "versionId": "null", "eTag": "e2"},
                )
            ]
        }
    )
    assert _parse(native) == Parsed([Upload(bucket="documents", key="a.pdf", etag="e1")])
    assert _parse(s3) == Parsed([Upload(bucket="documents", key="a.pdf", etag="e2")])


def test_s3_notification_with_created_and_removed_records() -> None:
    value = _encode(
        {
            "Records": [
                _record(
                    "ObjectCreated:Put",
                    "documents",
                    {"key": "my+file%21.pdf", "versionId": "v1", "eTag": "e1", "size": 10},
                ),
                _record("ObjectRemoved:Delete", "documents", {"key": "gone.pdf"}),
                _record(
                    "ObjectCreated:CompleteMultipartUpload",
                    "archive",
                    {"key": "dir/a%2Fb%20c.pdf", "eTag": "e2", "size": 20},
                ),
            ]
        }
    )
    parsed = _parse(value)
    assert isinstance(parsed, Parsed)
    assert parsed.skipped == 1
    assert parsed.uploads == [
        Upload(bucket="documents", key="my file!.pdf", version_id="v1", etag="e1", size=10),
        Upload(bucket="archive", key="dir/a/b c.pdf", version_id=None, etag="e2", size=20),
    ]


def test_s3_test_event_is_skipped() -> None:
    value = _encode({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "documents"})
    assert _parse(value) == Parsed([], skipped=1)


def test_s3_notification_with_only_removals_is_all_skipped() -> None:
    value = _encode({"Records": [_record("ObjectRemoved:Delete", "elsewhere", {"key": "x"})]})
    assert _parse(value) == Parsed([], skipped=1)


_DROP = object()


def _native(**fields: Any) -> bytes:
    event: dict[str, Any] = {"bucket": "documents", "key": "a.pdf"}
    event.update(fields)
    return _encode({k: v for k, v in event.items() if v is not _DROP})


# Every reason code, with at least one message that must be rejected for it.
REJECTIONS: dict[str, list[tuple[bytes, int]]] = {
    "not_utf8": [
        (b'{"bucket": "documents", "key": "\xff\xfe.pdf"}', 1 << 20),
        # Valid JSON escaping a lone surrogate: not text that can name an object.
        (b'{"bucket": "documents", "key": "\\ud800.pdf"}', 1 << 20),
        (b'{"bucket": "documents", "key": "a.pdf", "etag": "\\udfff"}', 1 << 20),
    ],
    "not_json": [
        (b"{not json", 1 << 20),
        (b'{"bucket": "documents",', 1 << 20),
        # Deeper than the JSON parser goes: a rejection, not a RecursionError.
        (b"[" * 100_000, 1 << 20),
    ],
    "wrong_shape": [
        (b'[{"bucket": "documents", "key": "a.pdf"}]', 1 << 20),
        (b'"documents/a.pdf"', 1 << 20),
        (b"42", 1 << 20),
        (b'{"Records": {"eventName": "ObjectCreated:Put"}}', 1 << 20),
        # No record at all: S3 sends none such, and nothing would be left of it.
        (b'{"Records": []}', 1 << 20),
        (b'{"Records": ["not a record"]}', 1 << 20),
        (b'{"Records": [{"s3": {}}]}', 1 << 20),
        (b'{"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}', 1 << 20),
    ],
    "missing_bucket": [
        (_native(bucket=_DROP), 1 << 20),
        (_native(bucket=""), 1 << 20),
        (_native(bucket=None), 1 << 20),
        (_encode({"Records": [_record("ObjectCreated:Put", "", {"key": "a.pdf"})]}), 1 << 20),
    ],
    "missing_key": [
        (_native(key=_DROP), 1 << 20),
        (_native(key=""), 1 << 20),
        (_encode({"Records": [_record("ObjectCreated:Put", "documents", {"size": 1})]}), 1 << 20),
    ],
    "wrong_type": [
        (_native(size="1234"), 1 << 20),
        (_native(size=True), 1 << 20),
        (_native(size=1.5), 1 << 20),
        (_native(bucket=7), 1 << 20),
        (_native(key=["a.pdf"]), 1 << 20),
        (_native(version_id=1), 1 << 20),
        (_native(content_type=False), 1 << 20),
        (
            _encode(
                {
                    "Records": [
                        _record("ObjectCreated:Put", "documents", {"key": "a.pdf", "size": "9"})
                    ]
                }
            ),
            1 << 20,
        ),
    ],
    "too_large": [
        (_native(), 10),
    ],
    "bucket_not_allowed": [
        (_native(bucket="secrets"), 1 << 20),
        (
            _encode(
                {
                    "Records": [
                        _record("ObjectCreated:Put", "documents", {"key": "ok.pdf"}),
                        _record("ObjectCreated:Put", "secrets", {"key": "a.pdf"}),
                    ]
                }
            ),
            1 << 20,
        ),
    ],
    "bad_key": [
        (_native(key="a\x00b.pdf"), 1 << 20),
        (_native(key="k" * 1025), 1 << 20),
        (_native(key="\u00e9" * 513), 1 << 20),  # 513 characters, 1026 bytes
        (
            _encode({"Records": [_record("ObjectCreated:Put", "documents", {"key": "a%00b"})]}),
            1 << 20,
        ),
    ],
}


def test_every_reason_code_is_covered() -> None:
    assert set(REJECTIONS) == set(EVENT_REFUSALS)
    assert len(EVENT_REFUSALS) == len(set(EVENT_REFUSALS))


@pytest.mark.parametrize(
    ("reason", "value", "max_bytes"),
    [
        pytest.param(reason, value, max_bytes, id=f"{reason}-{index}")
        for reason, cases in REJECTIONS.items()
        for index, (value, max_bytes) in enumerate(cases)
    ],
)
def test_a_bad_message_is_rejected_with_its_reason_and_a_message(
    reason: str, value: bytes, max_bytes: int
) -> None:
    result = _parse(value, max_bytes=max_bytes)
    assert isinstance(result, Rejected), result
    assert result.reason == reason, result.message
    assert result.message


def test_message_at_the_size_limit_is_read() -> None:
    value = _native()
    assert isinstance(_parse(value, max_bytes=len(value)), Parsed)
    rejected = _parse(value, max_bytes=len(value) - 1)
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "too_large"


def test_key_of_exactly_1024_bytes_is_accepted() -> None:
    parsed = _parse(_native(key="k" * 1024))
    assert isinstance(parsed, Parsed)
    assert parsed.uploads[0].key == "k" * 1024


def test_non_ascii_key_is_accepted() -> None:
    parsed = _parse(_native(key="r\u00e9sum\u00e9 \u4e2d\u6587.pdf"))
    assert isinstance(parsed, Parsed)
    assert parsed.uploads[0].key == "r\u00e9sum\u00e9 \u4e2d\u6587.pdf"


@pytest.mark.parametrize("value", [b"", None])
def test_empty_or_missing_value_is_rejected(value: bytes | None) -> None:
    result = _parse(value)
    assert isinstance(result, Rejected)
    assert result.reason in EVENT_REFUSALS
