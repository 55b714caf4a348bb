"""Upload events: parsing and validation, with a stable reason code for every rejection.

Two shapes are accepted on the uploads topic:

- native: ``{"bucket", "key", "version_id"?, "etag"?, "size"?, "content_type"?, "event_id"?}``
- AWS S3 event notifications: ``{"Records": [{"eventName": "ObjectCreated:...",
  "s3": {"bucket": {"name"}, "object": {"key", "versionId"?, "eTag"?, "size"?}}}]}``
  (keys URL-encoded, ``+`` for space; several records per message).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from pipeline.models import object_version_id
from pipeline.reasons import Reason


@dataclass(frozen=True)
class Upload:
    """One uploaded object named by an event. The version may still be unknown."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None
    # The event's fairness field (DOCPIPE_TEMPORAL_FAIRNESS_KEY "field:<name>"), if any.
    tenant: str | None = None


@dataclass(frozen=True)
class Rejected:
    """Why a message cannot be used; it goes to the dead-letter topic as it came."""

    reason: str
    message: str


@dataclass(frozen=True)
class Parsed:
    """A usable message: zero or more uploads, and how many records were skipped."""

    uploads: list[Upload]
    skipped: int = 0


class _Invalid(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _check_text(value: str, name: str, where: str) -> None:
    # JSON may escape a lone surrogate ("\ud800"): valid JSON, but not text that can be
    # encoded again (S3 keys, workflow IDs), so it must not get past the parser.
    try:
        value.encode()
    except UnicodeEncodeError:
        raise _Invalid(Reason.NOT_UTF8, f"{where}{name} is not valid Unicode text") from None


def _optional(obj: dict[str, Any], name: str, kind: type, where: str) -> Any:
    value = obj.get(name)
    if value is None:
        return None
    # bool is an int to Python, never to an event schema.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _Invalid(Reason.WRONG_TYPE, f"{where}{name} must be {kind.__name__}")
    if isinstance(value, str):
        _check_text(value, name, where)
    return value


def _required_text(obj: dict[str, Any], name: str, reason: str, where: str) -> str:
    value = obj.get(name)
    if value is None or value == "":
        raise _Invalid(reason, f"{where}{name} is missing or empty")
    if not isinstance(value, str):
        raise _Invalid(Reason.WRONG_TYPE, f"{where}{name} must be str")
    _check_text(value, name, where)
    return value


def _check_key(key: str, where: str) -> None:
    if "\x00" in key or len(key.encode()) > 1024:
        raise _Invalid(Reason.BAD_KEY, f"{where}key has a NUL byte or is over 1024 bytes")


def _native(event: dict[str, Any], tenant_field: str | None = None) -> Upload:
    bucket = _required_text(event, "bucket", Reason.MISSING_BUCKET, "")
    key = _required_text(event, "key", Reason.MISSING_KEY, "")
    _check_key(key, "")
    for name in ("content_type", "event_id"):
        _optional(event, name, str, "")
    size = _optional(event, "size", int, "")
    return Upload(
        bucket=bucket,
        key=key,
        version_id=object_version_id(_optional(event, "version_id", str, "")),
        etag=_optional(event, "etag", str, "") or None,
        size=size,
        tenant=_optional(event, tenant_field, str, "") or None if tenant_field else None,
    )


def _s3_record(record: Any, index: int) -> Upload | None:
    where = f"Records[{index}]."
    if not isinstance(record, dict):
        raise _Invalid(Reason.WRONG_SHAPE, f"{where[:-1]} is not an object")
    name = record.get("eventName")
    if not isinstance(name, str):
        raise _Invalid(Reason.WRONG_SHAPE, f"{where}eventName is missing")
    if not name.startswith("ObjectCreated:"):
        return None
    s3 = record.get("s3")
    if not isinstance(s3, dict) or not isinstance(s3.get("bucket"), dict):
        raise _Invalid(Reason.WRONG_SHAPE, f"{where}s3.bucket is missing")
    if not isinstance(s3.get("object"), dict):
        raise _Invalid(Reason.WRONG_SHAPE, f"{where}s3.object is missing")
    bucket = _required_text(s3["bucket"], "name", Reason.MISSING_BUCKET, f"{where}s3.bucket.")
    obj = s3["object"]
    key = unquote_plus(_required_text(obj, "key", Reason.MISSING_KEY, f"{where}s3.object."))
    _check_key(key, f"{where}s3.object.")
    if key == "":
        raise _Invalid(Reason.MISSING_KEY, f"{where}s3.object.key is empty")
    return Upload(
        bucket=bucket,
        key=key,
        version_id=object_version_id(_optional(obj, "versionId", str, f"{where}s3.object.")),
        etag=_optional(obj, "eTag", str, f"{where}s3.object.") or None,
        size=_optional(obj, "size", int, f"{where}s3.object."),
    )


def parse_upload_event(
    value: bytes | None,
    *,
    allowed_buckets: Collection[str],
    max_bytes: int = 1 << 20,
    tenant_field: str | None = None,
) -> Parsed | Rejected:
    """Parse one Kafka message value into uploads, or say precisely why it cannot be used.

    Args:
        value: the raw message value.
        allowed_buckets: the only buckets docpipe may read; any other is rejected.
        max_bytes: larger messages are rejected unread.
        tenant_field: a field of the native shape that names the upload's tenant (its fair
            share of the workers); a string when present.
    """
    if value is None or len(value) == 0:
        return Rejected(Reason.NOT_JSON, "empty message")
    if len(value) > max_bytes:
        return Rejected(
            Reason.TOO_LARGE, f"message is {len(value)} bytes, the limit is {max_bytes}"
        )
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(Reason.NOT_UTF8, f"not UTF-8 at byte {exc.start}")
    try:
        event = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # RecursionError: nesting deeper than the parser's limit ("[" * 100_000).
        return Rejected(Reason.NOT_JSON, f"not JSON: {str(exc)[:120]}")
    try:
        if not isinstance(event, dict):
            raise _Invalid(
                Reason.WRONG_SHAPE, f"expected a JSON object, got {type(event).__name__}"
            )
        skipped = 0
        if "Records" in event:
            records = event["Records"]
            if not isinstance(records, list):
                raise _Invalid(Reason.WRONG_SHAPE, "Records must be a list")
            if not records:
                # S3 sends none such: committed as it is, it would vanish without a trace.
                raise _Invalid(Reason.WRONG_SHAPE, "Records is empty")
            uploads = []
            for index, record in enumerate(records):
                upload = _s3_record(record, index)
                if upload is None:
                    skipped += 1
                else:
                    uploads.append(upload)
        elif event.get("Event") == "s3:TestEvent":
            return Parsed([], skipped=1)
        else:
            uploads = [_native(event, tenant_field)]
        for upload in uploads:
            if upload.bucket not in allowed_buckets:
                raise _Invalid(
                    Reason.BUCKET_NOT_ALLOWED, f"bucket {upload.bucket!r} is not a documents bucket"
                )
    except _Invalid as invalid:
        return Rejected(invalid.reason, invalid.message)
    return Parsed(uploads, skipped)
