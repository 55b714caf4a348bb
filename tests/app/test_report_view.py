"""``docpipe report`` rendering, and the IDs re-checks and reports are found by."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from app.report_view import MAX_PRINTED_PAGES
from app.report_view import ReportLocation
from app.report_view import render_report
from pipeline.models import MAX_WORKFLOW_ID_BYTES
from pipeline.models import DocumentRef
from pipeline.models import original_results_prefix
from pipeline.models import recheck_results_prefix
from pipeline.models import recheck_workflow_id
from pipeline.models import results_prefix_for
from pipeline.models import split_document_id
from pipeline.models import workflow_id_for
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import inspect_or_repair
from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.page_checks import check_pages
from tests.support import damaged
from tests.support import signing
from tests.support.feature_pdfs import METADATA
from tests.support.feature_pdfs import SEEDED
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.pdf_edits import with_attached
from tests.support.pdf_edits import with_bookmarks
from tests.support.pdf_edits import with_hidden_field
from tests.support.pdfs import make_pdf
from tests.support.reports import report_of_file
from tests.support.reports import report_of_results

KINDS = ["text", "blank", "image", "sensitive", "script", "rotated", "attachment"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("view") / "doc.pdf"
    path.write_bytes(make_feature_pdf(KINDS, metadata=METADATA))
    return report_of_file(path)


def test_the_verdict_comes_first_then_where_the_report_is_and_its_policy(
    report: dict[str, Any],
) -> None:
    location = ReportLocation("results", "r/doc/report.json", "docpipe/documents/doc.pdf@v1")
    lines = render_report(report, location).splitlines()
    assert lines[0] == (
        "verdict   REJECT  javascript, embedded_files, blank_pages, needs_ocr, sensitive_data"
    )
    assert lines[1] == "          (also found, not counted: rotated_pages)"
    assert "report    s3://results/r/doc/report.json" in lines
    assert f"policy    {report['policy']['version']}" in lines


def test_pages_that_need_attention_are_listed_with_their_issues_never_raw_values(
    report: dict[str, Any],
) -> None:
    text = render_report(report)
    lines = text.splitlines()
    start = lines.index("pages that need attention (5):")
    listed = lines[start + 1 : start + 6]
    assert listed == [
        "  page     2  blank",
        "  page     3  needs OCR (images, no text)",
        "  page     4  sensitive data: email 2, iban 2, payment_card 2, phone 2, us_ssn 1",
        "  page     5  JavaScript action",
        "  page     7  file attachment",
    ]
    # Ignored findings are not pages to look at.
    assert "rotated" not in "\n".join(listed)
    # Masked samples may be shown; raw values never are (they are not in the report).
    for values in SEEDED.values():
        for value, _ in values:
            assert value not in text


def test_document_facts_show_javascript_producer_and_embedded_files(report: dict[str, Any]) -> None:
    text = render_report(report)
    assert "  JavaScript 1 page(s)" in text
    assert f"producer {METADATA['/Producer']}" in text
    assert "embedded files 1" in text


def test_a_long_page_list_is_cut_with_how_many_more(report: dict[str, Any]) -> None:
    many = copy.deepcopy(report)
    pages = list(range(1, MAX_PRINTED_PAGES + 31))
    many["checks"]["blank_pages"] = {"count": len(pages), "pages": pages}
    text = render_report(many)
    # Pages 1-80, some with more than one issue: 80 pages, 50 of them printed.
    assert f"  ... and {len(pages) - MAX_PRINTED_PAGES} more (see report.json)" in text


def test_a_document_that_was_not_checked_says_why_and_lists_no_pages(tmp_path: Path) -> None:
    path = tmp_path / "locked.pdf"
    path.write_bytes(make_pdf(["text"], user_password="secret"))
    lines = render_report(report_of_file(path)).splitlines()
    assert lines[0] == "verdict   REJECT  encrypted"
    assert "pages that need attention: none" in lines
    assert "  not checked: encrypted (needs a password)" in lines


def test_repair_revisions_signatures_and_claims_are_shown_and_old_reports_render(
    tmp_path: Path,
) -> None:
    signed = tmp_path / "signed.pdf"
    signed.write_bytes(signing.flipped_from(signing.signed()))
    text = render_report(report_of_file(signed))
    assert "  revisions 2 (1 incremental updates)" in text
    assert (
        "  signatures 1 of 1 fields signed: 0 intact, 1 broken (certificate trust not checked)"
        in text
    )
    assert signing.SIGNER_NAME not in text

    broken = tmp_path / "broken.pdf"
    broken.write_bytes(damaged.truncated())
    facts, _, stream = inspect_or_repair(broken)
    assert stream is not None
    stream.close()
    repaired = report_of_results(broken, facts, [])
    assert "  repaired: pypdf said " in render_report(repaired)

    claims = copy.deepcopy(repaired)
    claims["facts"]["claims"].update(pdfa_part=2, pdfa_conformance="B", pdfua_part=1)
    assert "  claims PDF/A-2B, PDF/UA-1 (not validated)" in render_report(claims)
    # A report written before these fields existed still renders.
    old = copy.deepcopy(repaired)
    for name in ("repair", "revisions", "claims"):
        del old["facts"][name]
    del old["checks"]["signatures"]
    assert "  repaired: " not in render_report(old)


def test_page_errors_show_their_message(report: dict[str, Any]) -> None:
    broken = copy.deepcopy(report)
    broken["verdict"]["reasons"] = ["page_errors"]
    broken["checks"]["page_errors"] = {
        "count": 1,
        "pages": [6],
        "by_type": {"ValueError": 1},
        "samples": [{"page": 6, "type": "ValueError", "message": "bad /MediaBox"}],
    }
    assert "  page     6  cannot be read (ValueError: bad /MediaBox)" in render_report(broken)


# --- identities --------------------------------------------------------------------------


def test_document_ids_split_back_into_bucket_key_and_version_or_are_refused() -> None:
    document = DocumentRef(bucket="docs", key="a/b@c.pdf", version_id="v@1x")
    assert split_document_id("docs/a/b@c.pdf@v1") == ("docs", "a/b@c.pdf", "v1")
    assert workflow_id_for(document.document_id) == document.workflow_id
    assert results_prefix_for(document.document_id, "results") == document.results_prefix("results")
    for bad in ("no-slash@v1", "docs/no-version", "/key@v", "docs/@v", "docs/key@"):
        with pytest.raises(ValueError):
            split_document_id(bad)


def test_recheck_names_are_predictable_and_fit() -> None:
    document = DocumentRef(bucket="docs", key="in/a.pdf", version_id="v1")
    assert recheck_workflow_id(document.workflow_id, 3) == "docpipe/docs/in/a.pdf@v1#recheck-3"
    prefix = document.results_prefix("results")
    assert recheck_results_prefix(prefix, 3) == "results/docs/in/a.pdf@v1/rechecks/3"
    assert original_results_prefix(recheck_results_prefix(prefix, 3)) == prefix
    assert original_results_prefix(prefix) == prefix
    long = DocumentRef(bucket="docs", key="k" * 600, version_id="v1")
    ids = {n: recheck_workflow_id(long.workflow_id, n) for n in (1, 2, 10)}
    assert len(set(ids.values())) == 3
    for n, workflow_id in ids.items():
        assert len(workflow_id.encode()) <= MAX_WORKFLOW_ID_BYTES
        assert workflow_id.endswith(f"#recheck-{n}")


def test_scans_show_what_ocr_read_and_the_pages_it_could_not(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf(["text", "image", "image"]))
    facts = inspect_document(path)
    pages = check_pages(open_pdf(path), 1, 3)
    read = dataclasses.replace(
        pages[1],
        text_source="ocr",
        words=40,
        text_chars=200,
        ocr_confidence=88.0,
        ocr_engine="tesseract 5.5.4",
        ocr_data="eng",
    )
    unread = dataclasses.replace(pages[2], text_source="ocr", ocr_error="no_text")
    text = render_report(report_of_results(path, facts, [pages[0], read, unread]))
    assert text.splitlines()[0] == "verdict   REVIEW  ocr_failed"
    assert "  page     3  OCR could not read it" in text
    assert (
        "  OCR (tesseract 5.5.4, eng): 1 page(s) read, mean confidence 88; "
        "1 not readable (no_text 1)"
    ) in text


def test_sensitive_data_outside_the_pages_is_said_masked_with_where_it_was_found(
    tmp_path: Path,
) -> None:
    (email, masked), _ = SEEDED["email"]
    (iban, masked_iban), _ = SEEDED["iban"]
    ((ssn, masked_ssn),) = SEEDED["us_ssn"]
    (phone, masked_phone), _ = SEEDED["phone"]
    path = tmp_path / "authored.pdf"
    pdf = make_feature_pdf(["text"], metadata={"/Author": email})
    pdf = with_hidden_field(pdf, "ssn", ssn)
    pdf = with_bookmarks(pdf, [f"Call {phone}"])
    path.write_bytes(with_attached(pdf, [("refunds.csv", iban.encode())]))
    report = report_of_file(path)
    text = render_report(report)
    assert f"  sensitive data in the document metadata: email 1 ({masked})" in text
    assert f"  sensitive data in attached files: iban 1 ({masked_iban})" in text
    assert f"  sensitive data in form fields no page shows: us_ssn 1 ({masked_ssn})" in text
    assert f"  sensitive data in bookmarks: phone 1 ({masked_phone})" in text
    assert text.splitlines()[0] == "verdict   REVIEW  embedded_files, sensitive_data"
    assert email not in text and iban not in text and ssn not in text and phone not in text
    # Reports from before these parts were searched say nothing of them.
    for part in ("metadata", "attachments", "form_fields", "outline"):
        del report["checks"]["sensitive_data"][part]
    assert "sensitive data in" not in render_report(report)
