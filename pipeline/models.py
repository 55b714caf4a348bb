"""Values that cross process boundaries: workflow and activity inputs and outputs.

This module is imported by the workflow sandbox and by the Kafka intake: it must stay free
of side effects and of heavy imports.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pipeline.facts import DocumentFeatures
from pipeline.policy import VerdictPolicy
from pipeline.review import ReviewOutcome
from pipeline.review import ReviewPolicy
from pipeline.review import ReviewStatus
from pipeline.review import ReviewWait

WORKFLOW_NAME = "DocumentCheckWorkflow"
WORKFLOW_ID_PREFIX = "docpipe/"
# Temporal rejects IDs over 1000 bytes by default; shorter IDs also read better in the UI.
MAX_WORKFLOW_ID_BYTES = 255
# S3 keys may be 1024 bytes; leave room for the file names under the results prefix.
MAX_RESULTS_PREFIX_BYTES = 700
REPORT_NAME = "report.json"
# How a hashed object key reads where operators look (search attributes, workflow IDs).
HASH_PREFIX = "sha256:"
# Deliberate re-checks of a document: their own workflow IDs and results locations.
RECHECK_ID_MARK = "#recheck-"
RECHECKS_DIR = "rechecks"
# Attempts per activity when infrastructure fails (S3 5xx, a lost worker), unless a check
# asks for others.
MAX_ATTEMPTS = 20


def page_queue_for(task_queue: str) -> str:
    """The default task queue of page checking for a workflow task queue."""
    return f"{task_queue}-pages"


def _shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` UTF-8 bytes, ending it with a hash of the whole."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    digest = hashlib.sha256(raw).hexdigest()[:16]
    keep = raw[: limit - len(digest) - 1].decode(errors="ignore")
    return f"{keep}~{digest}"


def hashed_object_key(key: str) -> str:
    """``sha256:<hex>`` of an object key: what stands in for it where keys are hashed."""
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


def object_version_id(value: str | None) -> str | None:
    """S3's version ID of an object as a document's identity: None where there is none.

    S3 says ``"null"`` for an object written while its bucket's versioning was off or
    suspended: each such write replaces the last under the same ``"null"``, so it tells
    no two versions apart, and the ETag must.
    """
    return None if not value or value == "null" else value


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
        """The readable Temporal workflow ID (the key in clear), shortened with a hash
        when long. Where keys are hashed, checks go by :meth:`check_workflow_id`."""
        return workflow_id_for(self.document_id)

    def check_workflow_id(self, hashed: bool) -> str:
        """The workflow ID of this version's check: readable, or with the key hashed
        (``docpipe/<bucket>/sha256:<hex>@<version>``) when ``hashed``."""
        return workflow_id_for(self.document_id, hashed=hashed)

    def results_prefix(self, root: str) -> str:
        """Where this document's results live in the results bucket (no trailing slash)."""
        return results_prefix_for(self.document_id, root)

    def identity_json(self) -> dict[str, Any]:
        """The document as reports and results events name it: one shape for both."""
        return {
            "id": self.document_id,
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
        }


def split_document_id(document_id: str) -> tuple[str, str, str]:
    """``<bucket>/<key>@<version>`` as (bucket, key, version).

    Raises:
        ValueError: not a document ID.
    """
    bucket, slash, rest = document_id.partition("/")
    key, at, version = rest.rpartition("@")
    if not (bucket and slash and key and at and version):
        raise ValueError(f"not a document ID (<bucket>/<key>@<version>): {document_id!r}")
    return bucket, key, version


def original_results_prefix(results_prefix: str) -> str:
    """The results prefix of the check that a re-check's prefix belongs to."""
    base, mark, number = results_prefix.rpartition(f"/{RECHECKS_DIR}/")
    # A number (`docpipe reprocess`) or a recheck ID (`docpipe recheck`); an original's
    # prefix ends with "@<version>".
    is_recheck = number.isdigit() or bool(re.match(r"^[a-z][a-z0-9-]{0,47}$", number))
    return base if mark and is_recheck else results_prefix


def workflow_id_for(document_id: str, *, hashed: bool = False) -> str:
    """The workflow ID of a document ID (``<bucket>/<key>@<version>``).

    Args:
        hashed: object keys are hashed (``DOCPIPE_TEMPORAL_HASH_OBJECT_KEYS``): the ID
            names bucket, ``sha256:<hex of the key>`` and version, never the key.
    """
    if hashed:
        bucket, key, version = split_document_id(document_id)
        document_id = f"{bucket}/{hashed_object_key(key)}@{version}"
    return _shorten(WORKFLOW_ID_PREFIX + document_id, MAX_WORKFLOW_ID_BYTES)


def results_prefix_for(document_id: str, root: str) -> str:
    """The results prefix of a document ID under the results root prefix."""
    base = f"{root.strip('/')}/{document_id}" if root.strip("/") else document_id
    return _shorten(base, MAX_RESULTS_PREFIX_BYTES)


def recheck_workflow_id(workflow_id: str, number: int | str) -> str:
    """The ID of the ``number``-th deliberate re-check of the check ``workflow_id`` (or of
    its re-check in the bulk re-check ``number``, a recheck ID)."""
    suffix = f"{RECHECK_ID_MARK}{number}"
    return _shorten(workflow_id, MAX_WORKFLOW_ID_BYTES - len(suffix)) + suffix


def recheck_results_prefix(results_prefix: str, number: int | str) -> str:
    """Where the ``number``-th re-check (or bulk re-check ``number``) writes: under the
    original check's prefix."""
    return f"{results_prefix}/{RECHECKS_DIR}/{number}"


@dataclass(frozen=True)
class CheckRequest:
    """Input of ``DocumentCheckWorkflow``."""

    document: DocumentRef
    results_bucket: str
    results_prefix: str
    # Task queue of the page-checking activity; empty means "<workflow's queue>-pages".
    page_task_queue: str = ""
    # Task queue of the page checks of chunks that need OCR; empty: no OCR queue (the page
    # queue checks every chunk, scanned or not).
    ocr_task_queue: str = ""
    # Attempts per activity when infrastructure fails (S3 5xx, a lost worker).
    max_attempts: int = MAX_ATTEMPTS
    # Show a hash instead of the object key in the workflow ID, search attributes and the
    # UI summary (DOCPIPE_TEMPORAL_HASH_OBJECT_KEYS of the process that starts the check).
    hash_object_key: bool = False
    # When the upload event was published (its Kafka timestamp, epoch seconds): the check
    # measures its way from upload to report from it. None for re-checks.
    uploaded_at: float | None = None
    # Whether a ``review`` verdict waits for a reviewer's decision (as the plan's review
    # policy says). A bulk re-check's checks do not: it compares reports, and waits for
    # its checks to end.
    await_review: bool = True

    @property
    def workflow_id(self) -> str:
        """The workflow ID this check starts under: its document's, the key hashed when
        ``hash_object_key``."""
        return self.document.check_workflow_id(self.hash_object_key)

    def check_document_input(self, *, ocr_elsewhere: bool = False) -> CheckDocumentInput:
        """The document and where its results go: the input of ``check_document``, from
        which the later steps' inputs are made.

        Args:
            ocr_elsewhere: chunks that need OCR are left for the OCR queue's page check.
        """
        return CheckDocumentInput(
            document=self.document,
            results_bucket=self.results_bucket,
            results_prefix=self.results_prefix,
            uploaded_at=self.uploaded_at,
            await_review=self.await_review,
            ocr_elsewhere=ocr_elsewhere,
        )


@dataclass(frozen=True)
class InspectInput:
    """Input of ``inspect``: the object version to fetch and check."""

    document: DocumentRef


@dataclass(frozen=True)
class CheckDocumentInput:
    """Input of ``check_document``: the object version, and where its results go."""

    document: DocumentRef
    results_bucket: str
    results_prefix: str
    # The request's upload time, for the upload-to-report latency (None: not measured).
    uploaded_at: float | None = None
    await_review: bool = True
    # An OCR queue checks the chunks that need OCR: a chunk with a page to OCR is not
    # checked here (nor stored), and the outcome says so (``chunks_for_ocr``).
    ocr_elsewhere: bool = False

    def pages_input(self, inspection: InspectResult) -> CheckPagesInput:
        """The input of ``check_pages``, in the chunk layout the inspection fixed (chunks
        that need OCR left for the OCR queue as this input's are)."""
        return CheckPagesInput(
            document=self.document,
            results_bucket=self.results_bucket,
            results_prefix=self.results_prefix,
            page_count=inspection.page_count,
            chunk_pages=inspection.plan.chunk_pages,
            ocr_elsewhere=self.ocr_elsewhere,
        )

    def finalize_input(
        self, inspection: InspectResult, pages: CheckPagesResult | None
    ) -> FinalizeInput:
        """The input of ``finalize``: the report of this inspection and these pages."""
        return FinalizeInput(
            document=self.document,
            results_bucket=self.results_bucket,
            results_prefix=self.results_prefix,
            inspection=inspection,
            pages=pages,
            uploaded_at=self.uploaded_at,
            await_review=self.await_review,
        )


@dataclass(frozen=True)
class CheckPlan:
    """How the worker that inspected a document wants it checked and judged.

    Fixed at inspection, so that every later activity of the check, on whichever worker,
    uses the same layout and the same verdict policy.
    """

    chunk_pages: int
    heartbeat_timeout_s: float
    policy: VerdictPolicy = field(default_factory=VerdictPolicy)
    # Which review verdicts wait for a decision, and how long.
    review: ReviewPolicy = field(default_factory=ReviewPolicy)


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
    features: DocumentFeatures = field(default_factory=DocumentFeatures)


@dataclass(frozen=True)
class CheckPagesInput:
    """Input of ``check_pages``: where the pages' results go, and the chunk layout the
    inspection fixed."""

    document: DocumentRef
    results_bucket: str
    results_prefix: str
    page_count: int
    chunk_pages: int
    # Chunks with a page that needs OCR are left unstored, for a page check on the OCR
    # queue (``CheckPagesResult.chunks_for_ocr``); every other chunk is stored as usual.
    ocr_elsewhere: bool = False


@dataclass(frozen=True)
class CheckPagesResult:
    """Counts, and at most a bounded summary: per-page results live in S3 chunk files."""

    pages_checked: int
    chunks: int
    chunk_pages: int
    first_page_this_attempt: int
    attempt: int
    # Every page result folded in page order, the stored chunks' from their files
    # (``PageSummary.to_state``, bounded by the report's caps), so finalize need not read
    # the chunks back. None when too large for the history: finalize reads the chunks.
    summary: dict[str, Any] | None = None
    # Pages this attempt parsed; the others were in chunk files already stored.
    pages_parsed: int = 0
    # Chunks left unstored because a page of theirs needs OCR (``ocr_elsewhere``): the
    # OCR queue's page check stores them, and its result is the one finalize folds.
    chunks_for_ocr: int = 0


@dataclass(frozen=True)
class PagesProgress:
    """Signal ``pages_progress``: how far a page-checking attempt has got (a few ints, sent
    at most ~20 times per attempt, so history does not grow with the page count)."""

    # Pages durable in chunk files, from page 1.
    pages_checked: int
    attempt: int
    # The first page this attempt checked (1 unless it resumed from a checkpoint).
    resumed_from_page: int


@dataclass(frozen=True)
class FinalizeInput:
    """Input of ``finalize``: everything the report is folded from, but the pages (in S3)."""

    document: DocumentRef
    results_bucket: str
    results_prefix: str
    inspection: InspectResult
    # None when pages were not checked (a document-level problem).
    pages: CheckPagesResult | None = None
    # The request's upload time, for the upload-to-report latency (None: not measured).
    uploaded_at: float | None = None
    # Whether a review verdict may wait for a decision (``CheckRequest.await_review``).
    await_review: bool = True


@dataclass(frozen=True)
class CheckSummary:
    """What the workflow returns: small, whatever the document size."""

    document_id: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    page_count: int = 0
    report_bucket: str = ""
    report_key: str = ""
    # Set by the report's writer when the verdict waits for a reviewer's decision.
    review_wait: ReviewWait | None = None
    # The decision, once made (the workflow's result); the check's review state when it
    # ended without one (``superseded``), and the check that took over.
    decision: ReviewOutcome | None = None
    review_state: str = ""
    superseded_by: str = ""

    @classmethod
    def of_report(
        cls,
        report: dict[str, Any],
        *,
        bucket: str,
        key: str,
        review_wait: ReviewWait | None = None,
        review_state: str = "",
    ) -> CheckSummary:
        """The summary of the report ``report``, stored at ``key`` in ``bucket``."""
        verdict = report["verdict"]
        return cls(
            document_id=str(report["document"]["id"]),
            verdict=str(verdict["verdict"]),
            reasons=list(verdict["reasons"]),
            page_count=int(report["facts"]["page_count"]),
            report_bucket=bucket,
            report_key=key,
            review_wait=review_wait,
            review_state=review_state,
        )

    @property
    def final_verdict(self) -> str:
        """The verdict after review: the decision's, else the report's."""
        return self.decision.final_verdict if self.decision else self.verdict


@dataclass(frozen=True)
class DocumentOutcome:
    """What ``check_document`` did: either the report is written (``summary``: a document
    that fits in one chunk, or one with a document-level problem), or the document is
    inspected and its pages remain to be checked (``inspection``)."""

    inspection: InspectResult | None = None
    summary: CheckSummary | None = None
    # Pages checked, when the report is written (0 for a document-level problem).
    pages_checked: int = 0
    # The results event is sent too (else the workflow's publish_result sends it).
    published: bool = False
    # A small document's chunk left unchecked for the OCR queue (``ocr_elsewhere``): its
    # pages go straight there.
    chunks_for_ocr: int = 0


@dataclass(frozen=True)
class PublishResultInput:
    """Input of ``publish_result``: what the results event announces."""

    document: DocumentRef
    summary: CheckSummary


@dataclass(frozen=True)
class PublishReviewInput:
    """Input of ``publish_review``: a check's result and where it stands with review (a
    decision, overdue, superseded), announced under the document's key like the result."""

    document: DocumentRef
    summary: CheckSummary
    review: ReviewStatus


@dataclass(frozen=True)
class WriteDecisionInput:
    """Input of ``write_decision``: the accepted decision (its bucket and key in it)."""

    outcome: ReviewOutcome
