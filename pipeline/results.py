"""Write-once result storage in S3.

Every result object is written with a conditional put (``IfNoneMatch="*"``). When the
object is already there with the same bytes, the write counts as done: retries, resumed
attempts and racing writers all converge on one object. Different bytes under the same
key mean two runs disagree about a result, which must never be papered over.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

    def write_chunk(self, prefix: str, first_page: int, body: bytes) -> bool:
        """Write one chunk file (``chunk_bytes`` of its pages) once; see :meth:`write_once`."""
        return self.write_once(chunk_key(prefix, first_page), body, "application/x-ndjson")

    def iter_chunks(
        self, prefix: str, first_pages: Sequence[int], ahead: int = 8
    ) -> Iterator[dict[str, Any]]:
        """Page results of several chunks in order, fetching up to ``ahead`` at once.

        One chunk at a time waits on a round trip per chunk; reading a few ahead hides it,
        while memory stays bounded by ``ahead`` chunks whatever the document's size.

        Raises:
            FileNotFoundError: a chunk was never written.
        """
        if not first_pages:
            return
        firsts = iter(first_pages)
        queue: collections.deque[Future[bytes]] = collections.deque()
        with ThreadPoolExecutor(max_workers=max(1, ahead), thread_name_prefix="chunks") as pool:

            def fetch_next() -> None:
                first = next(firsts, None)
                if first is not None:
                    queue.append(pool.submit(self._chunk_body, chunk_key(prefix, first)))

            try:
                for _ in range(max(1, ahead)):
                    fetch_next()
                while queue:
                    body = queue.popleft().result()
                    fetch_next()
                    for line in body.splitlines():
                        if line:
                            yield json.loads(line)
            finally:
                for future in queue:
                    future.cancel()

    def _chunk_body(self, key: str) -> bytes:
        body = self.read(key)
        if body is None:
            raise FileNotFoundError(f"s3://{self.bucket}/{key}")
        return body
