"""The heartbeat checkpoint of the page-checking activity.

Small and versioned: ``{"v": 1, "next_page": N, "chunks": K, "chunk_pages": C}``. Pages
before ``next_page`` (1-based) are in ``K`` chunk files of ``C`` pages that are durable in
S3. Anything bigger lives in S3, never in heartbeat details.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """Where a page check can go on from: small enough for heartbeat details, which
    carry nothing that grows with the document."""

    next_page: int
    chunks: int
    chunk_pages: int

    def to_details(self) -> dict[str, int]:
        """The checkpoint as heartbeat details (plain JSON values, versioned)."""
        return {
            "v": CHECKPOINT_VERSION,
            "next_page": self.next_page,
            "chunks": self.chunks,
            "chunk_pages": self.chunk_pages,
        }

    @classmethod
    def start(cls, chunk_pages: int) -> Checkpoint:
        """The checkpoint of an attempt that starts from page 1, in this chunk layout."""
        return cls(next_page=1, chunks=0, chunk_pages=chunk_pages)

    @classmethod
    def from_details(cls, details: Sequence[Any], page_count: int) -> Checkpoint | None:
        """The checkpoint in heartbeat details, or None when absent or not trustworthy.

        Details arrive decoded without type hints (plain dicts), possibly from an older or
        newer worker; anything that does not add up is ignored and checking starts over.
        """
        if not details:
            return None
        raw = details[-1]
        if not isinstance(raw, dict) or raw.get("v") != CHECKPOINT_VERSION:
            return None
        next_page, chunks, chunk_pages = (
            raw.get("next_page"),
            raw.get("chunks"),
            raw.get("chunk_pages"),
        )
        if not all(type(v) is int for v in (next_page, chunks, chunk_pages)):
            return None
        assert isinstance(next_page, int) and isinstance(chunks, int)
        assert isinstance(chunk_pages, int)
        if chunk_pages < 1 or chunks < 0 or not 1 <= next_page <= page_count + 1:
            return None
        if next_page != min(chunks * chunk_pages, page_count) + 1:
            return None
        # More chunk files than the document has would send finalize after chunks that
        # were never written.
        if chunks > math.ceil(page_count / chunk_pages):
            return None
        return cls(next_page=next_page, chunks=chunks, chunk_pages=chunk_pages)
