"""Values that cross process boundaries: workflow and activity inputs and outputs.

This module is imported by the workflow sandbox and by the Kafka intake: it must stay free
of side effects and of heavy imports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

WORKFLOW_NAME = "DocumentCheckWorkflow"
WORKFLOW_ID_PREFIX = "docpipe/"
# Temporal rejects IDs over 1000 bytes by default; shorter IDs also read better in the UI.
MAX_WORKFLOW_ID_BYTES = 255
# S3 keys may be 1024 bytes; leave room for the file names under the results prefix.
MAX_RESULTS_PREFIX_BYTES = 700
REPORT_NAME = "report.json"


def _shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` UTF-8 bytes, ending it with a hash of the whole."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    digest = hashlib.sha256(raw).hexdigest()[:16]
    keep = raw[: limit - len(digest) - 1].decode(errors="ignore")
    return f"{keep}~{digest}"


@dataclass(frozen=True)
class DocumentRef:
    """One version of one object in S3: the identity of a document check."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if not self.bucket or not self.key:
            raise ValueError("a document needs a bucket and a key")
        if not (self.version_id or self.etag):
            raise ValueError("a document needs a version id or an ETag to be identified")

    @property
    def version(self) -> str:
        """The version id if the bucket is versioned, else the ETag (without quotes)."""
        return self.version_id or (self.etag or "").strip('"')

    @property
    def document_id(self) -> str:
        """``<bucket>/<key>@<version>``: the same object version always gives the same ID."""
        return f"{self.bucket}/{self.key}@{self.version}"

    @property
    def workflow_id(self) -> str:
        """The readable Temporal workflow ID, shortened with a hash when long."""
        return _shorten(WORKFLOW_ID_PREFIX + self.document_id, MAX_WORKFLOW_ID_BYTES)

    def results_prefix(self, root: str) -> str:
        """Where this document's results live in the results bucket (no trailing slash)."""
        base = f"{root.strip('/')}/{self.document_id}" if root.strip("/") else self.document_id
        return _shorten(base, MAX_RESULTS_PREFIX_BYTES)


@dataclass(frozen=True)
class CheckRequest:
    """Input of ``DocumentCheckWorkflow``."""

    document: DocumentRef
    results_bucket: str
    results_prefix: str
    # Task queue of the page-checking activity; empty means the workflow's own queue.
    page_task_queue: str = ""


@dataclass(frozen=True)
class InspectInput:
    document: DocumentRef


@dataclass(frozen=True)
class CheckPlan:
    """How the worker that inspected a document wants its pages checked."""

    chunk_pages: int
    heartbeat_timeout_s: float


@dataclass(frozen=True)
class InspectResult:
    """Document-level facts, learned before any page is checked."""

    size: int
    pdf_version: str | None
    page_count: int
    encrypted: bool
    plan: CheckPlan
    # Set when the document cannot be checked page by page (e.g. "encrypted", "unreadable").
    problem: str | None = None
    problem_detail: str | None = None


@dataclass(frozen=True)
class CheckPagesInput:
    document: DocumentRef
    results_bucket: str
    results_prefix: str
    page_count: int
    chunk_pages: int


@dataclass(frozen=True)
class CheckPagesResult:
    """Only counts: per-page results live in S3 chunk files, never in payloads."""

    pages_checked: int
    chunks: int
    chunk_pages: int
    first_page_this_attempt: int
    attempt: int


@dataclass(frozen=True)
class FinalizeInput:
    document: DocumentRef
    results_bucket: str
    results_prefix: str
    inspection: InspectResult
    # None when pages were not checked (a document-level problem).
    pages: CheckPagesResult | None = None


@dataclass(frozen=True)
class CheckSummary:
    """What the workflow returns: small, whatever the document size."""

    document_id: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    page_count: int = 0
    report_bucket: str = ""
    report_key: str = ""
