"""Write-once result storage in S3.

Every result object is written with a conditional put (``IfNoneMatch="*"``). When the
object is already there with the same bytes, the write counts as done: retries, resumed
attempts and racing writers all converge on one object. Different bytes under the same
key mean two runs disagree about a result, which must never be papered over.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

PAGES_DIR = "pages"
# Zero-padded so that chunk files list in page order.
_PAGE_DIGITS = 7


class ResultConflictError(RuntimeError):
    """A result object already exists with different content."""


def to_json_bytes(value: Any) -> bytes:
    """Canonical JSON: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chunk_key(prefix: str, first_page: int) -> str:
    """Key of the chunk file whose first page is ``first_page`` (1-based)."""
    return f"{prefix}/{PAGES_DIR}/{first_page:0{_PAGE_DIGITS}d}.jsonl"


def chunk_bytes(pages: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(to_json_bytes(page) + b"\n" for page in pages)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class ResultStore:
    """Result objects in one bucket.

    Args:
        s3: a boto3 S3 client (its retry configuration handles throttling and 5xx).
        bucket: the results bucket.
    """

    def __init__(self, s3: S3Client, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def write_once(self, key: str, body: bytes, content_type: str) -> bool:
        """Create ``key`` with ``body`` unless it already holds exactly ``body``.

        Returns:
            True if this call created the object, False if it was already there.

        Raises:
            ResultConflictError: the object exists with different content.
        """
        for _ in range(5):
            try:
                self._s3.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType=content_type,
                    IfNoneMatch="*",
                )
                return True
            except ClientError as exc:
                code = _error_code(exc)
                if code == "ConditionalRequestConflict":
                    # Another writer is mid-put on the same key: look again.
                    continue
                if code not in ("PreconditionFailed", "412"):
                    raise
            existing = self.read(key)
            if existing is None:
                # Deleted between our put and our read: try the put again.
                continue
            if existing == body:
                return False
            raise ResultConflictError(
                f"s3://{self.bucket}/{key} already holds different content "
                f"({len(existing)} bytes, ours {len(body)})"
            )
        raise ResultConflictError(f"s3://{self.bucket}/{key}: could not settle a racing write")

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return response["Body"].read()

    def write_chunk(self, prefix: str, first_page: int, pages: list[dict[str, Any]]) -> bool:
        return self.write_once(
            chunk_key(prefix, first_page), chunk_bytes(pages), "application/x-ndjson"
        )

    def iter_chunk(self, prefix: str, first_page: int) -> Iterator[dict[str, Any]]:
        """Stream one chunk's page results, line by line.

        Raises:
            FileNotFoundError: the chunk was never written.
        """
        key = chunk_key(prefix, first_page)
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"s3://{self.bucket}/{key}") from exc
            raise
        for line in response["Body"].iter_lines():
            if line:
                yield json.loads(line)
