"""Bulk re-check values: IDs, prefixes, totals and the progress they answer."""

from __future__ import annotations

import json

import pytest
from temporalio.converter import DataConverter

from pipeline.models import original_results_prefix
from pipeline.models import recheck_results_prefix
from pipeline.recheck.models import RecheckOutcome
from pipeline.recheck.models import RecheckPhase
from pipeline.recheck.models import RecheckProgress
from pipeline.recheck.models import RecheckTotals
from pipeline.recheck.models import check_recheck_id
from pipeline.recheck.models import diff_key


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
