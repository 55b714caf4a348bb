"""Human review: the decision a reviewer sends to a check that waits for one.

A check whose verdict is ``review`` waits (durably, for as long as it takes) for a
decision, sent as the Temporal Update ``REVIEW_UPDATE`` on its workflow. The decision is
recorded in the workflow's history and in ``decision.json`` beside ``report.json``; the
history is the audit trail of who decided what, when.

Imported by the workflow sandbox: no side effects, no heavy imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from enum import StrEnum
from typing import Any

from pipeline.reasons import VERDICT_REASONS

# The Update a reviewer's decision arrives as, and the query that says whether a check
# waits for one. Names Temporal sees: never rename.
REVIEW_UPDATE = "review_decision"
REVIEW_QUERY = "review"
# The signal that tells a waiting check a newer check of its document took over.
SUPERSEDED_SIGNAL = "superseded"
# The signal a check started by a bulk re-check sends its parent once it is reported and
# waits for review: the bulk re-check counts it done without waiting for the decision.
AWAITS_REVIEW_SIGNAL = "check_awaits_review"
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
    # The deadline passed and the review policy decided (the reviewer is ``policy``).
    by_policy: bool = False


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
    # The reported check: its document, report and verdict (set once it waits).
    document_id: str = ""
    report_bucket: str = ""
    report_key: str = ""
    verdict: str = ""
    page_count: int = 0


# Who a decision the review policy makes at the deadline is recorded as.
POLICY_REVIEWER = "policy"
# What a check does when its review deadline passes.
ESCALATE, ON_DEADLINE_REJECT, ON_DEADLINE_APPROVE = "escalate", "reject", "approve"
ON_DEADLINE = (ESCALATE, ON_DEADLINE_REJECT, ON_DEADLINE_APPROVE)
# ``off`` naming every reason: no check waits (the verdict stays review, as before).
ALL_REASONS = "all"
DEFAULT_DEADLINE_S = 7 * 24 * 3600.0


class ReviewPolicyError(ValueError):
    """A review policy names an unknown reason or an unknown deadline action."""


@dataclass(frozen=True, kw_only=True)
class ReviewWait:
    """What a check whose verdict is ``review`` waits for: fixed when its report is
    written (from the plan's ``ReviewPolicy``), carried in its ``CheckSummary``.

    Args:
        reasons: the review reasons the policy waits for (at least one).
        deadline_s: how long it waits before it is overdue.
        on_deadline: ``escalate`` (keeps waiting, marked overdue), ``reject`` or
            ``approve`` (the policy decides).
    """

    reasons: list[str]
    deadline_s: float = DEFAULT_DEADLINE_S
    on_deadline: str = ESCALATE


@dataclass(frozen=True, kw_only=True)
class ReviewPolicy:
    """Which review reasons make a check wait for a decision, and for how long.

    Args:
        off: review reasons that do not wait (the check ends with verdict ``review``, as
            before human review existed); ``all`` for every reason.
        deadline_s: how long a check waits before it is overdue.
        on_deadline: what an overdue check does: ``escalate``, ``reject`` or ``approve``.
    """

    off: tuple[str, ...] = ()
    deadline_s: float = DEFAULT_DEADLINE_S
    on_deadline: str = ESCALATE

    def __post_init__(self) -> None:
        # Lists arrive from JSON (workflow history) as lists: keep the value hashable.
        object.__setattr__(self, "off", tuple(self.off))
        unknown = sorted(set(self.off) - {*VERDICT_REASONS, ALL_REASONS})
        if unknown:
            raise ReviewPolicyError(
                f"unknown reasons {', '.join(unknown)}; known: {ALL_REASONS}, "
                f"{', '.join(VERDICT_REASONS)}"
            )
        if self.on_deadline not in ON_DEADLINE:
            raise ReviewPolicyError(f"{self.on_deadline!r} is not one of {', '.join(ON_DEADLINE)}")
        if self.deadline_s <= 0:
            raise ReviewPolicyError("the review deadline must be more than 0 seconds")

    def wait_for(self, verdict: str, reasons: Iterable[str]) -> ReviewWait | None:
        """What a check with this verdict and these reasons waits for; None: it does not
        wait (not a review verdict, or every reason is off)."""
        if verdict != "review" or ALL_REASONS in self.off:
            return None
        waited = [reason for reason in reasons if reason not in self.off]
        if not waited:
            return None
        return ReviewWait(reasons=waited, deadline_s=self.deadline_s, on_deadline=self.on_deadline)


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``36h`` or ``7d``.

    Raises:
        ValueError: not a positive duration in one of those forms.
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = text.strip().lower()
    scale = units.get(raw[-1:], 0)
    number = raw[:-1] if scale else raw
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (90s, 15m, 36h, 7d)") from None
    if not seconds > 0:
        raise ValueError(f"{text!r}: a duration must be more than 0")
    return seconds


@dataclass(frozen=True, kw_only=True)
class Superseded:
    """Signal ``superseded``: a newer check of the same document took over."""

    workflow_id: str


@dataclass(frozen=True, kw_only=True)
class AwaitsReview:
    """Signal ``check_awaits_review``: the check ``workflow_id`` (a child of the bulk
    re-check it is sent to) is reported and waits for a reviewer's decision."""

    workflow_id: str


def decision_from_json(raw: Mapping[str, Any]) -> ReviewDecision:
    """A decision as the Update's payload carries it (JSON of ``ReviewDecision``), read
    here rather than by the payload converter, so that an unknown action is the
    validator's refusal with a message, not a decoding error.

    Raises:
        ValueError: not a decision: an unknown action, a missing or mistyped field.
    """
    if not isinstance(raw, Mapping):
        raise ValueError("a decision is an object with decision_id, action and reviewer")
    action = raw.get("action")
    if action not in set(ReviewAction):
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ReviewAction)}")
    texts = {
        name: raw.get(name, "") for name in ("decision_id", "reviewer", "note", "reject_reason")
    }
    pages = raw.get("pages_viewed") or []
    if not all(isinstance(value, str) for value in texts.values()) or not (
        isinstance(pages, list) and all(isinstance(page, int) and page > 0 for page in pages)
    ):
        raise ValueError("a decision's IDs, names and note are text, its pages numbers from 1")
    return ReviewDecision(action=ReviewAction(action), pages_viewed=list(pages), **texts)


def refusal(
    decision: ReviewDecision,
    *,
    waiting: bool,
    accepted: ReviewOutcome | None,
    page_count: int = 0,
) -> str | None:
    """Why the Update's validator refuses ``decision``, or None to accept it.

    The same decision ID as the accepted one is accepted again (it returns the first
    outcome); any other decision after one was accepted is refused. With ``page_count``
    (the reported document's), the pages viewed are pages of the document.
    """
    if accepted is not None:
        if accepted.decision.decision_id == decision.decision_id:
            return None
        first = accepted.decision
        return (
            f"already decided: {first.action} by {first.reviewer} at {accepted.decided_at} "
            f"(decision {first.decision_id}); a check takes one decision"
        )
    if not waiting:
        return "this check does not wait for a review decision"
    if not decision.decision_id.strip():
        return "a decision needs a decision ID"
    if not decision.reviewer.strip():
        return "a decision needs a reviewer"
    if decision.action not in set(ReviewAction):
        return f"unknown action {decision.action!r}; one of {', '.join(ReviewAction)}"
    if decision.action == ReviewAction.REJECT:
        if decision.reject_reason not in set(RejectReason):
            return (
                f"a rejection needs a reason, one of {', '.join(RejectReason)}; "
                f"got {decision.reject_reason!r}"
            )
        if decision.reject_reason == RejectReason.OTHER and not decision.note.strip():
            return "a rejection for reason other needs a note that says why"
    elif decision.reject_reason:
        return "an approval takes no reject reason"
    beyond = [page for page in decision.pages_viewed if page > page_count]
    if page_count and beyond:
        return f"pages_viewed names page {beyond[0]}; the document has {page_count} pages"
    return None


def final_verdict(action: ReviewAction | str) -> str:
    """The verdict a decision makes of the check."""
    return "pass" if action == ReviewAction.APPROVE else "reject"
