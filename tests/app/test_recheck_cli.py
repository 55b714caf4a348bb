"""``docpipe recheck``'s options: parsed strictly, every one documented in its help."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from app.cli import build_parser
from app.cli import run
from app.recheck import RecheckError
from app.recheck import RecheckOptions
from app.recheck import RecheckStatus
from app.recheck import new_recheck_id
from app.recheck import parse_prefix
from app.recheck import parse_priority
from app.recheck import parse_rate
from app.recheck import recheck_request
from app.recheck import render_status
from app.recheck import selection_query
from infra.settings import Settings
from infra.settings import TemporalSettings
from pipeline.recheck.models import RecheckPhase
from pipeline.recheck.models import RecheckProgress
from pipeline.recheck.models import RecheckSelection
from pipeline.recheck.models import RecheckTotals
from pipeline.recheck.models import check_recheck_id


def _recheck_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    sub: argparse.ArgumentParser = commands.choices["recheck"]
    return sub


def test_help_documents_every_option() -> None:
    parser = _recheck_parser()
    undocumented = [
        action.option_strings
        for action in parser._actions
        if action.option_strings and not action.help
    ]
    assert undocumented == []
    text = parser.format_help()
    for option in ("--query", "--prefix", "--reason", "--since", "--rate", "--priority", "--wait"):
        assert option in text
    assert "show" in text and "cancel" in text


def test_rates_priorities_and_prefixes_are_parsed_strictly() -> None:
    settings = Settings()
    assert parse_rate("5/s") == 5.0 and parse_rate("0.5 /s") == 0.5 and parse_rate("20") == 20
    for bad in ("0/s", "-1/s", "fast"):
        with pytest.raises(ValueError):
            parse_rate(bad)
    assert parse_priority(settings, "low") == 5 and parse_priority(settings, "high") == 1
    assert parse_priority(settings, "3") == 3
    with pytest.raises(ValueError):
        parse_priority(settings, "urgent")
    assert parse_prefix("s3://documents/acme/2026/") == ("documents", "acme/2026/")
    with pytest.raises(ValueError):
        parse_prefix("documents/acme")
    check_recheck_id(new_recheck_id())


def test_query_selects_checks_by_reason_and_time() -> None:
    query = selection_query(
        query="DocpipeBucket = 'documents'", reason="blank_pages", since=None, hash_keys=False
    )
    assert query == (
        "WorkflowType = 'DocumentCheckWorkflow' AND ((DocpipeBucket = 'documents') AND "
        "DocpipeReasons = 'blank_pages')"
    )


def _options(bucket: str) -> RecheckOptions:
    """The options of a re-check of every document in ``bucket``."""
    return RecheckOptions(
        recheck_id="rc-1",
        selection=RecheckSelection(bucket=bucket, prefix=""),
        priority_key=5,
        rate_per_s=1,
        max_concurrent=1,
    )


def test_only_documents_buckets_can_be_listed() -> None:
    with pytest.raises(RecheckError, match="not a documents bucket"):
        recheck_request(Settings(), _options("elsewhere"))


def test_a_bulk_recheck_checks_as_the_settings_check_any_document() -> None:
    temporal = TemporalSettings(page_task_queue="pages", ocr_task_queue="scans")
    settings = dataclasses.replace(Settings(), temporal=temporal)
    request = recheck_request(settings, _options("documents"))
    assert (request.page_task_queue, request.ocr_task_queue) == ("pages", "scans")


def test_a_selection_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["recheck"]) == 2
    assert "needs --prefix, or --query and/or --reason" in capsys.readouterr().err
    assert run(["recheck", "--prefix", "s3://documents/a/", "--since", "2h"]) == 2


def test_a_running_recheck_shows_its_progress_as_it_always_did() -> None:
    progress = RecheckProgress.of(
        RecheckTotals(pages=2, matched=150, rechecked=120, already=10, failed=1),
        phase=RecheckPhase.RECHECKING,
        running=4,
        page_done=25,
        page_size=50,
    )
    status = RecheckStatus(recheck_id="rc-a", state="running", progress=progress)
    assert render_status(status) == (
        "re-check rc-a: running\n"
        "  re-checking: page 2, 150 matched, 120 re-checked, 10 done before, 1 failed, "
        "4 running"
    )
    assert status.to_json() == {
        "recheck_id": "rc-a",
        "state": "running",
        "phase": "re-checking",
        "pages": 2,
        "matched": 150,
        "rechecked": 120,
        "already": 10,
        "failed": 1,
        "changed": 0,
        "running": 4,
        "page_done": 25,
        "page_size": 50,
    }
    # Without an answer (no worker, or not running) only the state is known.
    unanswered = RecheckStatus(recheck_id="rc-a", state="running")
    assert render_status(unanswered) == "re-check rc-a: running"
    assert unanswered.to_json() == {"recheck_id": "rc-a", "state": "running"}
