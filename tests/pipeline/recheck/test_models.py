"""The diff of a bulk re-check, from its rows: counts, bounds, policies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from temporalio.converter import DataConverter

from pipeline.models import DocumentRef, original_results_prefix, recheck_results_prefix
from pipeline.policy import DEFAULT_IGNORE, VerdictPolicy
from pipeline.recheck.models import (
    Match,
    RecheckOutcome,
    RecheckPhase,
    RecheckProgress,
    RecheckSelection,
    RecheckTotals,
    build_diff,
    check_recheck_id,
    comparison_row,
    diff_key,
    render_diff,
)

OLD = VerdictPolicy().to_json()
NEW = VerdictPolicy(ignore=(*DEFAULT_IGNORE, "blank_pages")).to_json()


def _report(verdict: str, reasons: list[str], policy: dict[str, Any]) -> dict[str, Any]:
    return {"verdict": {"verdict": verdict, "reasons": reasons}, "policy": policy}


def _row(n: int, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    document = DocumentRef(bucket="documents", key=f"t/{n:03d}.pdf", version_id="v")
    match = Match(document=document, results_bucket="r", results_prefix=f"results/t/{n}")
    return comparison_row(match, RecheckOutcome.RECHECKED, before, after, "rc-test")


def test_rows_say_what_changed_and_where_the_new_report_is() -> None:
    row = _row(1, _report("review", ["blank_pages"], OLD), _report("pass", [], NEW))
    assert (row["before"], row["after"], row["added"], row["removed"]) == (
        "review",
        "pass",
        [],
        ["blank_pages"],
    )
    assert row["report"] == "s3://r/results/t/1/rechecks/rc-test/report.json"
    assert row["policy_before"] != row["policy_after"]
    assert _row(2, None, _report("pass", [], NEW))["before"] == "none"


def test_diff_counts_are_exact_and_its_list_is_bounded() -> None:
    rows = [
        _row(n, _report("review", ["blank_pages"], OLD), _report("pass", [], NEW)) for n in range(7)
    ]
    rows += [_row(100 + n, _report("pass", [], OLD), _report("pass", [], NEW)) for n in range(3)]
    policies = {rows[0]["policy_before"]: OLD, rows[0]["policy_after"]: NEW}
    diff = build_diff(
        recheck_id="rc-test",
        selection=RecheckSelection(bucket="documents", prefix="t/"),
        rows=iter(rows),
        policies=policies,
        max_listed=2,
        totals=RecheckTotals(pages=1),
    )
    assert diff["documents"] == 10
    assert diff["transitions"] == {"pass->pass": 3, "review->pass": 7}
    assert diff["changed"] == 7 and diff["changed_documents_listed"] == 2
    # The first by document ID, whatever order the rows came in.
    assert [r["document"] for r in diff["changed_documents"]] == [
        "documents/t/000.pdf@v",
        "documents/t/001.pdf@v",
    ]
    assert diff["reasons_removed"] == {"blank_pages": 7} and diff["reasons_added"] == {}
    assert diff["policy"]["rules_changed"] == {
        "blank_pages": {"before": "review", "after": "ignore"}
    }
    text = render_diff(diff)
    assert "review -> pass" in text and "(2 of 7 listed)" in text and "- blank_pages" in text


def test_recheck_ids_cannot_look_like_reprocess_numbers_or_paths() -> None:
    assert check_recheck_id("rc-20261203-0a1b") == "rc-20261203-0a1b"
    for bad in ("123", "Rc", "rc/../x", "", "a" * 49):
        with pytest.raises(ValueError):
            check_recheck_id(bad)
    assert diff_key("results", "rc-1") == "results/_rechecks/rc-1/diff.json"


def test_a_bulk_recheck_prefix_leads_back_to_the_original() -> None:
    original = "results/documents/a.pdf@v1"
    assert original_results_prefix(recheck_results_prefix(original, "rc-1")) == original
    assert original_results_prefix(recheck_results_prefix(original, 3)) == original
    assert original_results_prefix("results/documents/rechecks/a.pdf@v") == (
        "results/documents/rechecks/a.pdf@v"
    )


def test_each_outcome_counts_once_in_its_own_total() -> None:
    totals = RecheckTotals(pages=2, matched=5)
    for outcome in (RecheckOutcome.RECHECKED, RecheckOutcome.ALREADY, RecheckOutcome.FAILED):
        totals = totals.counting(outcome)
    totals = totals.counting(RecheckOutcome.RECHECKED)
    assert totals == RecheckTotals(pages=2, matched=5, rechecked=2, already=1, failed=1)


async def test_progress_is_the_json_its_readers_have_always_read() -> None:
    progress = RecheckProgress.of(
        RecheckTotals(pages=1, matched=3, rechecked=1, already=1),
        phase=RecheckPhase.RECHECKING,
        running=1,
        page_done=2,
        page_size=3,
    )
    (payload,) = await DataConverter.default.encode([progress])
    assert json.loads(payload.data) == {
        "phase": "re-checking",
        "pages": 1,
        "matched": 3,
        "rechecked": 1,
        "already": 1,
        "failed": 0,
        "changed": 0,
        "running": 1,
        "page_done": 2,
        "page_size": 3,
    }
    (decoded,) = await DataConverter.default.decode([payload], [RecheckProgress])
    assert decoded == progress
