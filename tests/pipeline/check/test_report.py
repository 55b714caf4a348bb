"""Folding page results into a summary, the verdict policy, and the report document."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from pipeline.check import page_summary
from pipeline.check.page_summary import MAX_LISTED_PAGES
from pipeline.check.page_summary import PageSummary
from pipeline.check.report import REPORT_SCHEMA_VERSION
from pipeline.check.report import build_report
from pipeline.check.report import decide_verdict
from pipeline.models import CheckPlan
from pipeline.models import DocumentRef
from pipeline.models import InspectResult
from pipeline.pdf.page_checks import PageResult
from pipeline.policy import POLICY_VERSION
from pipeline.reasons import PROBLEMS
from tests.support.reports import assert_valid_report


def _page(page: int, **fields: Any) -> dict[str, Any]:
    base = PageResult(page=page, text_chars=100, width_pt=595.28, height_pt=841.89)
    data = base.to_json()
    data.update(fields)
    return data


def _error(page: int, error_type: str = "PdfReadError") -> dict[str, Any]:
    return PageResult(page=page, error_type=error_type, error="broken").to_json()


def _inspection(page_count: int, problem: str | None = None) -> InspectResult:
    return InspectResult(
        size=12_345,
        pdf_version="1.7",
        page_count=page_count,
        encrypted=False,
        plan=CheckPlan(chunk_pages=50, heartbeat_timeout_s=30.0),
        problem=problem,
        problem_detail="needs a password" if problem else None,
    )


def _verdict(inspection: InspectResult, summary: PageSummary) -> tuple[str, list[str]]:
    verdict = decide_verdict(inspection, summary)
    return verdict.verdict, verdict.reasons


def _summary(*results: dict[str, Any]) -> PageSummary:
    summary = PageSummary()
    for result in results:
        summary.add(result)
    return summary


# --- PageSummary -------------------------------------------------------------------------


def test_add_folds_results() -> None:
    summary = _summary(
        _page(1, text_chars=120),
        _page(2, text_chars=0, blank=True),
        _page(3, text_chars=0, image_count=2, image_only=True),
        _page(4, text_chars=30, rotation=90, width_pt=612.0, height_pt=792.0),
        _error(5, "KeyError"),
        _error(6, "PdfReadError"),
        _error(7, "KeyError"),
    )
    data = summary.to_json()
    assert data["pages_checked"] == 7
    assert data["text_chars"] == 150
    assert data["images"] == 2
    assert data["blank_pages"] == {"count": 1, "pages": [2]}
    assert data["image_only_pages"] == {"count": 1, "pages": [3]}
    assert data["rotated_pages"] == {"count": 1, "pages": [4], "by_angle": {"90": 1}}
    assert data["page_errors"] == {
        "count": 3,
        "pages": [5, 6, 7],
        "by_type": {"KeyError": 2, "PdfReadError": 1},
        "samples": [
            {"page": 5, "type": "KeyError", "message": "broken"},
            {"page": 6, "type": "PdfReadError", "message": "broken"},
            {"page": 7, "type": "KeyError", "message": "broken"},
        ],
    }
    assert data["page_sizes"] == {
        "by_paper": {"A4": 3, "Letter": 1, "Legal": 0, "other": 0},
        "by_size_pt": {"595.28x841.89": 3, "612x792": 1},
        "mixed": True,
    }


@pytest.mark.parametrize("pages", [[2], [1, 3], [1, 2, 2], [1, 1]])
def test_add_rejects_out_of_order_pages(pages: list[int]) -> None:
    summary = PageSummary()
    with pytest.raises(ValueError, match="out of order"):
        for page in pages:
            summary.add(_page(page))


def test_page_lists_cap_but_counts_stay_exact() -> None:
    total = MAX_LISTED_PAGES + 25
    summary = _summary(
        *(_page(n, text_chars=0, blank=True) for n in range(1, total + 1)),
    )
    data = summary.to_json()
    assert data["pages_checked"] == total
    assert data["blank_pages"]["count"] == total
    assert data["blank_pages"]["pages"] == list(range(1, MAX_LISTED_PAGES + 1))
    assert data["page_sizes"]["by_size_pt"] == {"595.28x841.89": total}
    assert data["page_sizes"]["mixed"] is False


def test_cap_applies_to_errors_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_summary, "MAX_LISTED_PAGES", 3)
    summary = _summary(*(_error(n) for n in range(1, 11)))
    assert summary.errors.count == 10
    assert summary.errors.pages == [1, 2, 3]
    assert summary.error_types == {"PdfReadError": 10}


# --- verdicts ----------------------------------------------------------------------------


def test_document_problem_rejects() -> None:
    clean = _summary(_page(1))
    assert _verdict(_inspection(0, "encrypted"), clean) == ("reject", ["encrypted"])
    assert _verdict(_inspection(0, "not_pdf"), PageSummary()) == ("reject", ["not_pdf"])


def test_all_pages_errored_rejects_as_unreadable() -> None:
    summary = _summary(_error(1), _error(2))
    assert _verdict(_inspection(2), summary) == ("reject", ["unreadable"])


def test_some_pages_errored_asks_for_review() -> None:
    summary = _summary(_page(1), _error(2), _page(3))
    assert _verdict(_inspection(3), summary) == ("review", ["page_errors"])


def test_half_the_pages_errored_is_unreadable() -> None:
    # The default policy: too many page errors (timeouts, limits, damage) reject.
    summary = _summary(_page(1), _error(2))
    assert _verdict(_inspection(2), summary) == ("reject", ["unreadable"])


def test_blank_pages_ask_for_review() -> None:
    summary = _summary(_page(1), _page(2, text_chars=0, blank=True))
    assert _verdict(_inspection(2), summary) == ("review", ["blank_pages"])


def test_image_only_pages_need_ocr() -> None:
    summary = _summary(_page(1, text_chars=0, image_count=1, image_only=True), _page(2))
    assert _verdict(_inspection(2), summary) == ("review", ["needs_ocr"])


def test_reasons_accumulate_in_a_fixed_order() -> None:
    summary = _summary(
        _page(1, text_chars=0, image_count=1, image_only=True),
        _page(2, text_chars=0, blank=True),
        _error(3),
    )
    assert _verdict(_inspection(3), summary) == (
        "review",
        ["page_errors", "blank_pages", "needs_ocr"],
    )


def test_clean_document_passes() -> None:
    summary = _summary(_page(1), _page(2, rotation=90))
    assert _verdict(_inspection(2), summary) == ("pass", [])
    # Rotation is reported, but the default policy does not count it.
    assert decide_verdict(_inspection(2), summary).informational == ["rotated_pages"]


# --- report ------------------------------------------------------------------------------


def _build(error_types: list[str]) -> dict[str, Any]:
    document = DocumentRef(bucket="docs", key="in/a.pdf", version_id="v1", etag='"e1"')
    pages = [_page(1), _page(2, text_chars=0, blank=True)]
    pages += [_error(3 + i, kind) for i, kind in enumerate(error_types)]
    return build_report(
        document=document,
        inspection=_inspection(len(pages)),
        summary=_summary(*pages),
        chunk_keys=["r/pages/0000001.jsonl"],
        chunk_pages=50,
    )


def test_build_report_contents() -> None:
    built = _build(["KeyError"])
    assert built["schema_version"] == REPORT_SCHEMA_VERSION == 2
    assert built["document"] == {
        "id": "docs/in/a.pdf@v1",
        "bucket": "docs",
        "key": "in/a.pdf",
        "version_id": "v1",
        "etag": '"e1"',
        "size": 12_345,
    }
    assert built["facts"]["page_count"] == 3
    assert built["facts"]["problem"] is None
    assert built["verdict"] == {
        "verdict": "review",
        "reasons": ["page_errors", "blank_pages"],
        "informational": [],
    }
    assert built["policy"]["version"] == POLICY_VERSION
    assert built["pages"] == {"chunk_pages": 50, "chunks": ["r/pages/0000001.jsonl"]}
    assert built["checks"]["blank_pages"] == {"count": 1, "pages": [2]}


def test_build_report_is_deterministic() -> None:
    first = _build(["PdfReadError", "KeyError", "PdfReadError"])
    second = _build(["PdfReadError", "KeyError", "PdfReadError"])
    assert first == second
    assert json.dumps(first) == json.dumps(second)


def test_build_report_does_not_depend_on_error_arrival_order() -> None:
    # Same errors on different pages in a different order: the by_type map must serialise
    # identically (sorted), whatever order the types were first seen in.
    first = _build(["PdfReadError", "KeyError"])["checks"]["page_errors"]["by_type"]
    second = _build(["KeyError", "PdfReadError"])["checks"]["page_errors"]["by_type"]
    assert json.dumps(first) == json.dumps(second) == '{"KeyError": 1, "PdfReadError": 1}'


def test_build_report_is_json_serialisable() -> None:
    built = _build([])
    assert json.loads(json.dumps(built)) == built


# --- schema, bounds, compatibility -------------------------------------------------------


def test_reports_validate_against_the_schema() -> None:
    assert_valid_report(_build([]))
    assert_valid_report(_build(["KeyError", "PdfReadError"]))
    document = DocumentRef(bucket="docs", key="in/a.pdf", etag='"e1"')
    for problem in PROBLEMS:
        built = build_report(
            document=document,
            inspection=_inspection(0, problem),
            summary=PageSummary(),
            chunk_keys=[],
            chunk_pages=50,
        )
        assert assert_valid_report(built)["verdict"]["reasons"] == [problem]


def test_page_results_of_an_older_docpipe_still_fold() -> None:
    old = {
        "page": 1,
        "text_chars": 10,
        "image_count": 0,
        "width_pt": 595.28,
        "height_pt": 841.89,
        "rotation": 0,
        "blank": False,
        "image_only": False,
        "error_type": None,
        "error": None,
    }
    data = _summary(old).to_json()
    assert data["words"] == 0
    assert data["sensitive_data"]["total"] == 0
    assert data["page_sizes"]["by_paper"]["A4"] == 1


def test_sensitive_findings_fold_by_type_and_page_with_few_samples() -> None:
    pages = [
        _page(
            n,
            sensitive={"email": 2, "iban": 1},
            sensitive_samples={"email": [f"{n}***@e***.com", "x***@e***.com"], "iban": ["DE**"]},
        )
        for n in range(1, 8)
    ]
    data = _summary(*pages, _page(8)).to_json()["sensitive_data"]
    assert data["total"] == 21
    assert data["pages"] == {"count": 7, "pages": list(range(1, 8))}
    assert data["by_type"]["email"]["count"] == 14
    assert data["by_type"]["email"]["samples"] == [
        "1***@e***.com",
        "x***@e***.com",
        "2***@e***.com",
        "3***@e***.com",
        "4***@e***.com",
    ]
    assert data["by_type"]["iban"]["samples"] == ["DE**"]
    assert data["by_type"]["phone"] == {
        "count": 0,
        "pages": {"count": 0, "pages": []},
        "samples": [],
    }
    assert data["by_page"][0] == {"page": 1, "counts": {"email": 2, "iban": 1}}


def test_link_hosts_and_sizes_are_bounded() -> None:
    pages = [
        _page(n, links=1, external_links=1, link_hosts=[f"h{n}.example"], width_pt=100 + n)
        for n in range(1, page_summary.MAX_LINK_HOSTS + 11)
    ]
    data = _summary(*pages).to_json()
    assert len(data["links"]["hosts"]) == page_summary.MAX_LINK_HOSTS
    assert data["links"]["hosts_truncated"] is True
    assert data["links"]["external"] == len(pages)
    sizes = data["page_sizes"]["by_size_pt"]
    assert len(sizes) == page_summary.MAX_DISTINCT_SIZES + 1
    assert sum(sizes.values()) == len(pages)
    assert data["page_sizes"]["mixed"] is True


def _varied_pages(first: int, last: int) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    for n in range(first, last + 1):
        if n % 7 == 0:
            pages.append(_error(n, "timeout"))
            continue
        pages.append(
            _page(
                n,
                blank=n % 5 == 0,
                rotation=90 if n % 6 == 0 else 0,
                annotations={"Link": 1} if n % 3 == 0 else {},
                links=1,
                external_links=n % 3 == 0,
                link_hosts=[f"h{n % 4}.example"] if n % 3 == 0 else [],
                sensitive={"email": 1} if n % 4 == 0 else {},
                sensitive_samples={"email": [f"{n}***@e***.com"]} if n % 4 == 0 else {},
                width_pt=595.28 if n % 9 else 612.0,
                **_scanned(n),
            )
        )
    return pages


def _scanned(n: int) -> dict[str, Any]:
    """Every 8th page read by OCR, every 11th not readable, every 13th not read."""
    scan: dict[str, Any] = {"image_only": True, "image_count": 1}
    if n % 8 == 0:
        confidence = 40.0 + n % 50
        return {**scan, "text_source": "ocr", "ocr_confidence": confidence, "ocr_engine": "t 5"}
    if n % 11 == 0:
        return {**scan, "text_source": "ocr", "ocr_error": "too_many_pixels"}
    return scan if n % 13 == 0 else {}


def test_a_summary_state_survives_json_and_folds_on() -> None:
    summary = _summary(*_varied_pages(1, 60))
    state = json.loads(json.dumps(summary.to_state()))
    restored = PageSummary.from_state(state)
    assert restored == summary
    assert restored.to_json() == summary.to_json()
    assert restored.ocr_json(60) == summary.ocr_json(60)
    # Folding goes on from where it was, with the same result as in one go.
    for page in _varied_pages(61, 90):
        restored.add(page)
    assert restored.to_json() == _summary(*_varied_pages(1, 90)).to_json()
    assert restored.ocr_json(60) == _summary(*_varied_pages(1, 90)).ocr_json(60)


def test_ocr_pages_are_summed_up_by_outcome_and_confidence() -> None:
    ocr = _summary(*_varied_pages(1, 90)).ocr_json(60)
    # Every 7th page is a page error (_varied_pages).
    pages = [n for n in range(1, 91) if n % 7]
    read = [n for n in pages if n % 8 == 0]
    assert ocr["pages_read"] == {"count": len(read), "pages": read}
    low = [n for n in read if 40 + n % 50 < 60]
    assert low and ocr["low_confidence"] == {"count": len(low), "pages": low}
    failed = [n for n in pages if n % 11 == 0 and n % 8]
    assert ocr["failed"]["pages"] == failed
    assert ocr["failed"]["by_cause"] == {"too_many_pixels": len(failed)}
    assert ocr["not_read"]["pages"] == [n for n in pages if n % 13 == 0 and n % 8 and n % 11]
    assert ocr["mean_confidence"] == round(sum(40 + n % 50 for n in read) / len(read), 1)
    assert ocr["engine"] == "t 5"


def test_a_scan_read_below_the_policys_confidence_asks_for_review() -> None:
    read = _page(1, text_chars=80, image_only=True, text_source="ocr", ocr_confidence=59.9)
    summary = _summary(read)
    assert _verdict(_inspection(1), summary) == ("review", ["ocr_low_confidence"])
    lenient = CheckPlan(chunk_pages=50, heartbeat_timeout_s=30.0)
    policy = dataclasses.replace(lenient.policy, ocr_min_confidence=59)
    assert decide_verdict(_inspection(1), summary, policy).verdict == "pass"


def test_a_scan_ocr_could_not_read_asks_for_review_instead_of_needing_ocr() -> None:
    unread = _page(1, text_chars=0, image_only=True, text_source="ocr", ocr_error="timeout")
    assert _verdict(_inspection(1), _summary(unread)) == ("review", ["ocr_failed"])


@pytest.mark.parametrize("state", [{}, {"pages": 3}, {**PageSummary().to_state(), "surprise": 1}])
def test_a_state_with_other_fields_is_refused(state: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="not a page summary state"):
        PageSummary.from_state(state)
