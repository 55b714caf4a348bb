"""Write-once result storage in S3.

Every result object is written with a conditional put (``IfNoneMatch="*"``), so nothing
docpipe wrote is ever overwritten. The two kinds of object settle a second write apart:

- a **chunk file** is the durable record of its pages: the first write wins. Page results
  can depend on timing and load (a page that timed out on a busy worker may parse in time
  on the next one), so a redone chunk may differ from the stored one; the stored bytes are
  kept and are what the report folds.
- ``report.json`` is folded from the chunk files and the check's inputs only, so a second
  write always carries the same bytes; different bytes mean something other than this
  check wrote there, which is an error (:class:`ResultConflictError`), never papered over.
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

PAGES_DIR = "pages"
# Zero-padded so that chunk files list in page order.
_PAGE_DIGITS = 7


class ResultConflictError(RuntimeError):
    """A result object already exists with different content."""


class StoredChunkError(ValueError):
    """A stored chunk file does not hold the pages its name says (not this check's)."""


ChunkOutcome = Literal["written", "already_there", "kept_first"]


@dataclass(frozen=True)
class ChunkWrite:
    """What writing a chunk came to, and the page results now stored under its key.

    Attributes:
        outcome: ``written`` by this call; ``already_there`` with the same bytes; or
            ``kept_first``: an earlier write stored different results, which stay.
        pages: the stored page results (ours unless ``kept_first``).
    """

    outcome: ChunkOutcome
    pages: list[dict[str, Any]]


def to_json_bytes(value: Any) -> bytes:
    """Canonical JSON: the same value always gives the same bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chunk_key(prefix: str, first_page: int) -> str:
    """Key of the chunk file whose first page is ``first_page`` (1-based)."""
    return f"{prefix}/{PAGES_DIR}/{first_page:0{_PAGE_DIGITS}d}.jsonl"


def chunk_bytes(pages: Iterable[dict[str, Any]]) -> bytes:
    """A chunk file's bytes: canonical JSON lines, the same for the same page results."""
    return b"".join(to_json_bytes(page) + b"\n" for page in pages)


def decode_chunk(body: bytes, first_page: int, last_page: int) -> list[dict[str, Any]]:
    """The page results of a chunk file, checked to be exactly its pages in order.

    Raises:
        StoredChunkError: the file is not JSON lines of pages ``first_page``..``last_page``.
    """
    try:
        pages = [json.loads(line) for line in body.splitlines() if line]
        numbers = [page["page"] for page in pages]
    except (ValueError, TypeError, KeyError) as exc:
        raise StoredChunkError(f"not page results ({exc!r})") from None
    if numbers != list(range(first_page, last_page + 1)):
        held = f"pages {numbers[0]}-{numbers[-1]}" if numbers else "no pages"
        raise StoredChunkError(f"holds {held}, not pages {first_page}-{last_page}")
    return pages


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

    def _put_first(self, key: str, body: bytes, content_type: str) -> bytes | None:
        """Create ``key`` with ``body`` unless it exists.

        Returns:
            None if this call created the object, else the bytes already stored.
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
                return None
            except ClientError as exc:
                code = _error_code(exc)
                if code == "ConditionalRequestConflict":
                    # Another writer is mid-put on the same key: look again.
                    continue
                if code not in ("PreconditionFailed", "412"):
                    raise
            existing = self.read(key)
            if existing is not None:
                return existing
            # Deleted between our put and our read: try the put again.
        raise ResultConflictError(f"s3://{self.bucket}/{key}: could not settle a racing write")

    def write_once(self, key: str, body: bytes, content_type: str) -> bool:
        """Create ``key`` with ``body`` unless it already holds exactly ``body``.

        Returns:
            True if this call created the object, False if it was already there.

        Raises:
            ResultConflictError: the object exists with different content.
        """
        existing = self._put_first(key, body, content_type)
        if existing is None:
            return True
        if existing == body:
            return False
        raise ResultConflictError(
            f"s3://{self.bucket}/{key} already holds different content "
            f"({len(existing)} bytes, ours {len(body)})"
        )

    def read(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        return response["Body"].read()

    def write_chunk(self, prefix: str, pages: list[dict[str, Any]]) -> ChunkWrite:
        """Store a chunk file of ``pages`` (consecutive page results) unless one is stored.

        The first write of a chunk wins: a chunk already stored, with the same results or
        not, is never overwritten, and its page results are returned.

        Raises:
            StoredChunkError: the stored file does not hold these pages.
        """
        first, last = pages[0]["page"], pages[-1]["page"]
        body = chunk_bytes(pages)
        existing = self._put_first(chunk_key(prefix, first), body, "application/x-ndjson")
        if existing is None:
            return ChunkWrite("written", pages)
        if existing == body:
            return ChunkWrite("already_there", pages)
        return ChunkWrite("kept_first", decode_chunk(existing, first, last))

    def read_chunk(
        self, prefix: str, first_page: int, last_page: int
    ) -> list[dict[str, Any]] | None:
        """The page results of a stored chunk file, or None when it is not there.

        Raises:
            StoredChunkError: the file does not hold pages ``first_page``..``last_page``.
        """
        body = self.read(chunk_key(prefix, first_page))
        return None if body is None else decode_chunk(body, first_page, last_page)

    def stored_chunk_pages(self, prefix: str, after_page: int = 0) -> set[int]:
        """First pages of the chunk files stored under ``prefix``, from one listing.

        Args:
            after_page: list only the chunks whose first page is larger (a checkpoint
                already vouches for the ones before).
        """
        start = chunk_key(prefix, after_page) if after_page > 0 else ""
        folder = f"{prefix}/{PAGES_DIR}/"
        firsts: set[int] = set()
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder, StartAfter=start
        )
        for page in pages:
            for item in page.get("Contents", []):
                stem, dot, suffix = item["Key"].removeprefix(folder).partition(".")
                if dot and suffix == "jsonl" and stem.isdigit():
                    firsts.add(int(stem))
        return firsts

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
