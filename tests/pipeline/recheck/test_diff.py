"""The diff of a bulk re-check, from its rows: counts, bounds, policies."""

from __future__ import annotations

from typing import Any

from pipeline.models import DocumentRef
from pipeline.policy import DEFAULT_IGNORE
from pipeline.policy import VerdictPolicy
from pipeline.recheck.diff import build_diff
from pipeline.recheck.diff import comparison_row
from pipeline.recheck.diff import render_diff
from pipeline.recheck.models import Match
from pipeline.recheck.models import RecheckOutcome
from pipeline.recheck.models import RecheckSelection
from pipeline.recheck.models import RecheckTotals

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
