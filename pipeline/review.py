"""Human review: the decision a reviewer sends to a check that waits for one.

A check whose verdict is ``review`` waits (durably, for as long as it takes) for a
decision, sent as the Temporal Update ``REVIEW_UPDATE`` on its workflow. The decision is
recorded in the workflow's history and in ``decision.json`` beside ``report.json``; the
history is the audit trail of who decided what, when.

Imported by the workflow sandbox: no side effects, no heavy imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# The Update a reviewer's decision arrives as, and the query that says whether a check
# waits for one. Names Temporal sees: never rename.
REVIEW_UPDATE = "review_decision"
REVIEW_QUERY = "review"
# Written next to report.json, once; report.json itself never changes.
DECISION_NAME = "decision.json"
DECISION_SCHEMA_VERSION = 1


class ReviewAction(StrEnum):
    """What a reviewer decided."""

    # The final verdict becomes pass.
    APPROVE = "approve"
    # The final verdict becomes reject, with a reason.
    REJECT = "reject"


class RejectReason(StrEnum):
    """The short list a rejection picks from; ``other`` asks for a note."""

    SENSITIVE_DATA = "sensitive_data"
    ILLEGIBLE = "illegible"
    WRONG_DOCUMENT = "wrong_document"
    TAMPERED = "tampered"
    INCOMPLETE = "incomplete"
    OTHER = "other"


class ReviewState(StrEnum):
    """Where a check stands with review (the ``review`` query's ``state``)."""

    # The verdict was not review, or the policy does not wait for its reasons.
    NOT_WAITING = "not_waiting"
    AWAITING = "awaiting_review"
    DECIDED = "decided"
    # A newer check of the same document (a re-check or a reprocess) took over.
    SUPERSEDED = "superseded"


@dataclass(frozen=True, kw_only=True)
class ReviewDecision:
    """A reviewer's decision: the Update's argument.

    Args:
        decision_id: chosen by the caller; the same ID sent again returns the first
            result (a retried request never decides twice).
        action: approve or reject.
        reviewer: who decided, as the caller authenticated them.
        note: free text for the audit trail (never logged).
        pages_viewed: the pages the reviewer looked at (1-based).
        reject_reason: with ``reject``: one of ``RejectReason``.
    """

    decision_id: str
    action: ReviewAction
    reviewer: str
    note: str = ""
    pages_viewed: list[int] = field(default_factory=list)
    reject_reason: str = ""


@dataclass(frozen=True, kw_only=True)
class ReviewOutcome:
    """What a decision made of a check: the Update's result and ``decision.json``'s
    content (with its schema version)."""

    document_id: str
    decision: ReviewDecision
    # pass (approved) or reject (rejected).
    final_verdict: str
    # The verdict and reasons the check's report gave.
    report_verdict: str
    report_reasons: list[str] = field(default_factory=list)
    # When the workflow accepted it (ISO 8601, UTC, from workflow time).
    decided_at: str = ""
    # Seconds from the report being written to the decision.
    waited_s: float = 0.0
    decision_bucket: str = ""
    decision_key: str = ""


@dataclass(frozen=True, kw_only=True)
class ReviewStatus:
    """The ``review`` query's answer: whether the check waits and since when."""

    state: ReviewState
    # The reasons that asked for review.
    reasons: list[str] = field(default_factory=list)
    # When the check began to wait (ISO 8601, UTC), and its deadline.
    waiting_since: str = ""
    deadline: str = ""
    overdue: bool = False
    outcome: ReviewOutcome | None = None
    # With SUPERSEDED: the workflow ID of the check that took over.
    superseded_by: str = ""
