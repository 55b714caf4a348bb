"""docpipe review's pieces that need no server: the queue's table and JSON, the IDs of
bulk decisions, the decision a command line makes, what a page to look at takes from its
result in the chunk files."""

from __future__ import annotations

import argparse
import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest

from app import cli
from app.review import decision_from_args
from app.review import render_item
from app.review import render_waiting
from app.review import waiting_json
from app.review_queue import PageToReview
from app.review_queue import ReviewItem
from app.review_queue import bulk_decision_id
from app.review_queue import pages_to_review
from app.review_queue import with_page_results
from pipeline.check.results import ResultStore
from pipeline.check.results import chunk_key
from pipeline.models import DocumentRef
from pipeline.review import ReviewAction
from pipeline.review import ReviewState
from pipeline.review import ReviewStatus
from pipeline.review_visibility import WaitingReview
from pipeline.review_visibility import document_id_of
from tests.support.activities import RESULTS
from tests.support.activities import in_process_s3

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _waiting(workflow_id: str, hours: float, overdue: bool = False) -> WaitingReview:
    since = NOW - timedelta(hours=hours)
    return WaitingReview(
        workflow_id=workflow_id,
        document_id=document_id_of(workflow_id),
        reasons=["blank_pages", "needs_ocr"],
        waiting_since=since,
        deadline=since + timedelta(days=7),
        overdue=overdue,
        page_count=12,
    )


def test_the_queue_table_shows_age_pages_reasons_and_overdue() -> None:
    rows = [_waiting("docpipe/docs/a.pdf@v1", 0.5), _waiting("docpipe/docs/b.pdf@v2", 200, True)]
    table = render_waiting(rows, NOW).splitlines()
    assert table[0].split() == ["waiting", "pages", "reasons", "workflow"]
    assert table[1].split() == ["30m", "12", "blank_pages,needs_ocr", "docpipe/docs/a.pdf@v1"]
    assert table[2].split()[:2] == ["8.3d", "OVERDUE"]
    assert render_waiting([], NOW) == "no check waits for review"


def test_the_queue_json_names_times_in_iso_8601() -> None:
    shown = waiting_json(_waiting("docpipe/docs/a.pdf@v1#recheck-2", 1))
    assert json.loads(json.dumps(shown))["waiting_since"] == "2026-03-01T11:00:00+00:00"
    assert shown["document_id"] == "docs/a.pdf@v1"


def test_a_bulk_decision_id_is_the_same_for_the_same_check_and_request_only() -> None:
    first = bulk_decision_id("docpipe/docs/a.pdf@v1", '["q", "approve"]')
    assert first == bulk_decision_id("docpipe/docs/a.pdf@v1", '["q", "approve"]')
    assert first != bulk_decision_id("docpipe/docs/b.pdf@v1", '["q", "approve"]')
    assert first != bulk_decision_id("docpipe/docs/a.pdf@v1", '["q", "reject"]')


def test_a_decision_from_the_command_line_names_the_os_user_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("getpass.getuser", lambda: "operator")
    args = argparse.Namespace(reviewer=None, note="torn", pages="2, 3", reason="illegible")
    decision = decision_from_args(args, ReviewAction.REJECT, "d-1")
    assert decision.reviewer == "operator" and decision.pages_viewed == [2, 3]
    assert decision.reject_reason == "illegible" and decision.note == "torn"


def test_reject_asks_for_a_reason_from_the_short_list() -> None:
    parser = cli.build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["review", "reject", "docpipe/x@v", "--reason", "bored"])
    args = parser.parse_args(["review", "reject", "docpipe/x@v", "--reason", "tampered"])
    assert args.reason == "tampered"


def test_the_pages_to_look_at_come_from_the_report_per_reason() -> None:
    report = {
        "checks": {
            "blank_pages": {"count": 1, "pages": [4]},
            "page_errors": {
                "count": 1,
                "pages": [2],
                "samples": [{"page": 2, "type": "PdfReadError", "message": "bad xref"}],
            },
            "sensitive_data": {"total": 2, "pages": {"count": 2, "pages": [2, 7]}},
        }
    }
    reasons = ["page_errors", "blank_pages", "sensitive_data", "repaired"]
    pages, document_wide = pages_to_review(report, reasons)
    assert [(p.page, p.reasons, p.samples) for p in pages] == [
        (2, ["page_errors", "sensitive_data"], ["PdfReadError: bad xref"]),
        (4, ["blank_pages"], []),
        (7, ["sensitive_data"], []),
    ]
    assert document_wide == ["repaired"]


def test_scanned_pages_ocr_could_not_read_well_are_pages_to_look_at() -> None:
    report = {
        "checks": {
            "ocr": {
                "failed": {"count": 1, "pages": [3]},
                "low_confidence": {"count": 1, "pages": [5]},
                "not_read": {"count": 0, "pages": []},
            },
            "rotated_pages": {"count": 1, "pages": [5]},
        }
    }
    reasons = ["ocr_failed", "ocr_low_confidence", "rotated_pages"]
    pages, document_wide = pages_to_review(report, reasons)
    assert [(p.page, p.reasons) for p in pages] == [
        (3, ["ocr_failed"]),
        (5, ["ocr_low_confidence", "rotated_pages"]),
    ]
    assert document_wide == []


def test_a_page_to_look_at_gets_its_masked_samples_and_the_turn_of_a_lying_scan() -> None:
    lines: list[dict[str, Any]] = [
        {"page": 1, "sensitive_samples": {"iban": ["DE** **** **** **** **30 00"]}},
        {"page": 2, "text_source": "ocr", "ocr_rotation": 90, "sensitive_samples": {}},
        {"page": 3, "text_source": "ocr", "ocr_rotation": None},
        # Written before the field existed, or by a hand that cannot be trusted.
        {"page": 4, "text_source": "ocr"},
        {"page": 5, "ocr_rotation": 45},
    ]
    with in_process_s3() as s3:
        store = ResultStore(s3, RESULTS)
        store.write_chunk("results/doc", lines)
        report = {"pages": {"chunk_pages": 10, "chunks": [chunk_key("results/doc", 1)]}}
        shown = [PageToReview(page=n, reasons=["r"]) for n in range(1, 6)]
        pages = with_page_results(store, report, shown)
    assert [(p.page, p.samples, p.turn) for p in pages] == [
        (1, ["iban: DE** **** **** **** **30 00"], 0),
        (2, [], 90),
        (3, [], 0),
        (4, [], 0),
        (5, [], 0),
    ]


def test_docpipe_review_show_says_which_pages_lay_and_how_to_turn_them() -> None:
    item = ReviewItem(
        workflow_id="docpipe/documents/scan.pdf@v1",
        document_id="documents/scan.pdf@v1",
        document=DocumentRef("documents", "scan.pdf", version_id="v1"),
        status=ReviewStatus(state=ReviewState.AWAITING),
        verdict="review",
        reasons=["sensitive_data"],
        page_count=2,
        pages=[
            PageToReview(page=1, reasons=["sensitive_data"], samples=["email: j***@e***.com"]),
            PageToReview(page=2, reasons=["sensitive_data"], turn=180),
        ],
        document_reasons=[],
        report_bucket="results",
        report_key="r/report.json",
        outside_pages={
            "metadata": ["phone 1 (+** ** **** **78)"],
            "attachments": ["iban 1 (DE** **** **** **** **30 00)"],
            "form_fields": ["email 1 (j***@e***.com)"],
            "outline": ["us_ssn 1 (***-**-6789)"],
        },
    )
    lines = render_item(item).splitlines()
    assert "metadata       phone 1 (+** ** **** **78)" in lines
    assert "attachments    iban 1 (DE** **** **** **** **30 00)" in lines
    assert "form fields    email 1 (j***@e***.com)" in lines
    assert "bookmarks      us_ssn 1 (***-**-6789)" in lines
    assert "  page 1: sensitive_data" in lines
    assert "    email: j***@e***.com" in lines
    assert "  page 2: sensitive_data (scanned lying: turn 180 degrees clockwise)" in lines
