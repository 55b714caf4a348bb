"""What the review page needs from the review loop: the queue, one check's pages, a
decision, and the document's bytes to draw its pages from.

``ReviewBackend`` is that seam. ``TemporalReviewBackend`` is the real one (the review
queue's functions on a Temporal client, the document read from S3); tests of the page's
HTTP behaviour may use one in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Protocol

from temporalio.client import Client

from app import review_queue
from app.command import CommandError
from app.review_queue import PageToReview
from infra.clients import s3_client
from infra.settings import Settings
from pipeline.check.spool import ObjectUnavailableError
from pipeline.check.spool import read_bytes
from pipeline.models import DocumentRef
from pipeline.review import ReviewDecision
from pipeline.review import ReviewOutcome
from pipeline.review import ReviewState


class WaitingCheck(Protocol):
    """One check in the queue."""

    @property
    def workflow_id(self) -> str: ...
    @property
    def document_id(self) -> str: ...
    @property
    def reasons(self) -> Sequence[str]: ...
    @property
    def waiting_since(self) -> datetime: ...
    @property
    def deadline(self) -> datetime | None: ...
    @property
    def overdue(self) -> bool: ...
    @property
    def page_count(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class CheckView:
    """One check as a reviewer sees it.

    Attributes:
        pages: the pages to look at, drawn as images.
        document_reasons: review reasons about the whole document (no page of their own).
        outside_pages: sensitive data found outside the pages, by part of the document
            (its metadata, attached text files, form fields no page shows), by type with
            masked samples.
        awaiting: it waits for a decision now (else ``outcome`` may say how it ended).
    """

    workflow_id: str
    document: DocumentRef
    reasons: list[str]
    pages: list[PageToReview]
    document_reasons: list[str] = field(default_factory=list)
    outside_pages: dict[str, list[str]] = field(default_factory=dict)
    awaiting: bool = True
    outcome: ReviewOutcome | None = None


class ReviewBackend(Protocol):
    """The review loop as the review page uses it."""

    async def waiting(self, *, limit: int) -> Sequence[WaitingCheck]:
        """The checks that wait for a decision, oldest first."""
        ...

    async def item(self, workflow_id: str) -> CheckView:
        """The check ``workflow_id`` as a reviewer sees it.

        Raises:
            LookupError: no such check waits, or ever waited, for a decision.
        """
        ...

    async def decide(self, workflow_id: str, decision: ReviewDecision) -> ReviewOutcome:
        """Send ``decision`` to the check.

        Raises:
            ReviewRefusedError: the check refused it.
        """
        ...

    async def document_bytes(self, document: DocumentRef, max_bytes: int) -> bytes:
        """The document's bytes, in memory.

        Raises:
            LookupError: the document is gone or may not be read.
            ValueError: it is larger than ``max_bytes``.
        """
        ...


class TemporalReviewBackend:
    """The review loop on Temporal and S3: the review queue's functions, and the
    document's bytes read from S3 (in memory only).

    Args:
        client: a Temporal client (with the codec of these settings).
        settings: where checks, reports and documents are.
    """

    def __init__(self, client: Client, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    async def waiting(self, *, limit: int) -> Sequence[WaitingCheck]:
        return await review_queue.waiting_reviews(self._client, self._settings, limit=limit)

    async def item(self, workflow_id: str) -> CheckView:
        try:
            item = await review_queue.review_item(self._client, self._settings, workflow_id)
        except CommandError as exc:
            raise LookupError(str(exc)) from None
        pages = list(item.pages)
        if not pages and item.page_count:
            # Only reasons about the whole document: its first page shows which it is.
            pages = [PageToReview(page=1, reasons=item.document_reasons)]
        return CheckView(
            workflow_id=item.workflow_id,
            document=item.document,
            reasons=item.reasons,
            pages=pages,
            document_reasons=item.document_reasons,
            outside_pages=item.outside_pages,
            awaiting=item.status.state is ReviewState.AWAITING,
            outcome=item.status.outcome,
        )

    async def decide(self, workflow_id: str, decision: ReviewDecision) -> ReviewOutcome:
        return await review_queue.decide(self._client, workflow_id, decision)

    async def document_bytes(self, document: DocumentRef, max_bytes: int) -> bytes:
        s3 = s3_client(self._settings.s3)
        try:
            return await asyncio.to_thread(read_bytes, s3, document, max_bytes)
        except ObjectUnavailableError as exc:
            raise LookupError(str(exc)) from None
