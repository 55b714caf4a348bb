"""What the review page needs from the review loop: the queue, one check's pages, a
decision, and the document's bytes to draw its pages from.

``ReviewBackend`` is that seam. ``TemporalReviewBackend`` is the real one (the review
queue's functions on a Temporal client, the document read from S3); tests of the page's
HTTP behaviour may use one in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pipeline.models import DocumentRef
from pipeline.review import ReviewDecision, ReviewOutcome


class WaitingCheck(Protocol):
    """One check in the queue."""

    @property
    def workflow_id(self) -> str: ...
    @property
    def document_id(self) -> str: ...
    @property
    def reasons(self) -> Sequence[str]: ...
    @property
    def waiting_since(self) -> str: ...
    @property
    def deadline(self) -> str: ...
    @property
    def overdue(self) -> bool: ...
    @property
    def page_count(self) -> int: ...


class PageToReview(Protocol):
    """One page a reviewer should look at: why, and the masked samples found there."""

    @property
    def page(self) -> int: ...
    @property
    def reasons(self) -> Sequence[str]: ...
    @property
    def samples(self) -> Sequence[str]: ...


class CheckToReview(Protocol):
    """One waiting check, as a reviewer sees it."""

    @property
    def workflow_id(self) -> str: ...
    @property
    def document(self) -> DocumentRef: ...
    @property
    def reasons(self) -> Sequence[str]: ...
    @property
    def pages(self) -> Sequence[PageToReview]: ...


class ReviewRefusedError(Exception):
    """The check does not take this decision (not waiting, decided otherwise); the
    message says why, for the reviewer."""


class ReviewBackend(Protocol):
    """The review loop as the review page uses it."""

    async def waiting(self, *, limit: int) -> Sequence[WaitingCheck]:
        """The checks that wait for a decision, oldest first."""
        ...

    async def item(self, workflow_id: str) -> CheckToReview:
        """The check ``workflow_id`` as a reviewer sees it.

        Raises:
            LookupError: no such check waits for a decision.
        """
        ...

    async def decide(self, workflow_id: str, decision: ReviewDecision) -> ReviewOutcome:
        """Send ``decision`` to the check.

        Raises:
            ReviewRefusedError: the check refused it.
            LookupError: no such check.
        """
        ...

    async def document_bytes(self, document: DocumentRef, max_bytes: int) -> bytes:
        """The document's bytes, in memory.

        Raises:
            LookupError: the document is gone or may not be read.
            ValueError: it is larger than ``max_bytes``.
        """
        ...
