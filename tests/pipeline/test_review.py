"""The review contract's rules: which checks wait, durations, the validator's refusals."""

from __future__ import annotations

import pytest

from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision
from pipeline.review import ReviewOutcome
from pipeline.review import ReviewPolicy
from pipeline.review import ReviewPolicyError
from pipeline.review import ReviewWait
from pipeline.review import decision_from_json
from pipeline.review import parse_duration
from pipeline.review import refusal


def _decision(**fields: object) -> ReviewDecision:
    values: dict[str, object] = {
        "decision_id": "d-1",
        "action": ReviewAction.APPROVE,
        "reviewer": "ana",
    }
    values.update(fields)
    return ReviewDecision(**values)  # type: ignore[arg-type]


def test_a_review_verdict_waits_for_the_reasons_that_are_not_off() -> None:
    policy = ReviewPolicy(off=("blank_pages",), deadline_s=60, on_deadline="approve")
    assert policy.wait_for("review", ["blank_pages"]) is None
    assert policy.wait_for("review", ["blank_pages", "sensitive_data"]) == ReviewWait(
        reasons=["sensitive_data"], deadline_s=60, on_deadline="approve"
    )
    assert policy.wait_for("pass", ["sensitive_data"]) is None
    assert ReviewPolicy(off=("all",)).wait_for("review", ["sensitive_data"]) is None


def test_a_review_policy_refuses_unknown_reasons_and_actions() -> None:
    with pytest.raises(ReviewPolicyError, match="unknown reasons nonsense"):
        ReviewPolicy(off=("nonsense",))
    with pytest.raises(ReviewPolicyError, match="'later' is not one of"):
        ReviewPolicy(on_deadline="later")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("36h", 129600), ("7d", 604800)]
)
def test_durations_read_in_seconds_minutes_hours_and_days(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1d", "0s"])
def test_a_duration_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("decision", "message"),
    [
        (_decision(action=ReviewAction.REJECT), "needs a reason"),
        (_decision(action=ReviewAction.REJECT, reject_reason="bored"), "needs a reason"),
        (_decision(action=ReviewAction.REJECT, reject_reason="other"), "needs a note"),
        (_decision(reject_reason="illegible"), "takes no reject reason"),
        (_decision(reviewer=" "), "needs a reviewer"),
        (_decision(decision_id=""), "needs a decision ID"),
        (_decision(action="maybe"), "unknown action 'maybe'"),
    ],
)
def test_the_validator_refuses_an_incomplete_decision(
    decision: ReviewDecision, message: str
) -> None:
    assert message in (refusal(decision, waiting=True, accepted=None) or "")


def test_the_validator_refuses_pages_viewed_that_the_document_does_not_have() -> None:
    beyond = _decision(pages_viewed=[1, 3, 999_999_999])
    assert refusal(beyond, waiting=True, accepted=None, page_count=2) == (
        "pages_viewed names page 3; the document has 2 pages"
    )
    assert (
        refusal(_decision(pages_viewed=[2, 1]), waiting=True, accepted=None, page_count=2) is None
    )
    # A check that does not know its page count (0) takes the pages as they come.
    assert refusal(beyond, waiting=True, accepted=None) is None


def test_the_validator_accepts_the_first_decision_again_and_no_other() -> None:
    first = _decision()
    accepted = ReviewOutcome(
        document_id="b/k@v", decision=first, final_verdict="pass", report_verdict="review"
    )
    assert refusal(first, waiting=False, accepted=accepted) is None
    other = _decision(decision_id="d-2", reviewer="bo")
    assert "already decided: approve by ana" in (
        refusal(other, waiting=False, accepted=accepted) or ""
    )
    assert "does not wait" in (refusal(first, waiting=False, accepted=None) or "")
    ok = _decision(action=ReviewAction.REJECT, reject_reason="other", note="torn scan")
    assert refusal(ok, waiting=True, accepted=None) is None


def test_a_decision_payload_is_read_with_the_validators_messages() -> None:
    decision = decision_from_json(
        {
            "decision_id": "d-1",
            "action": "reject",
            "reviewer": "ana",
            "reject_reason": "other",
            "note": "torn",
            "pages_viewed": [2],
        }
    )
    assert decision.action is ReviewAction.REJECT and decision.pages_viewed == [2]
    with pytest.raises(ValueError, match="unknown action 'maybe'"):
        decision_from_json({"decision_id": "d-1", "action": "maybe", "reviewer": "ana"})
    with pytest.raises(ValueError, match="pages numbers from 1"):
        decision_from_json(
            {"decision_id": "d-1", "action": "approve", "reviewer": "ana", "pages_viewed": [0]}
        )
