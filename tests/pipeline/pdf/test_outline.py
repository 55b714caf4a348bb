"""Sensitive data in a document's bookmarks (its outline): their titles are searched for
the document and reported apart from the pages; a looping or huge outline is read within
its bound."""

from __future__ import annotations

from pathlib import Path

from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.objects import MAX_OUTLINE_ITEMS
from pipeline.reasons import Reason
from tests.support.feature_pdfs import SEEDED
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.hostile import looping_outline
from tests.support.pdf_edits import with_bookmarks
from tests.support.reports import report_of_file
from tests.support.reports import seeded_found

EMAIL = SEEDED["email"][0][0]
IBAN = SEEDED["iban"][0][0]


def test_bookmark_titles_are_searched_and_reported_apart_from_the_pages(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bookmarked.pdf"
    titles = ["Payslips", f"Jane Doe, IBAN {IBAN}", f"Contact {EMAIL}"]
    path.write_bytes(with_bookmarks(make_feature_pdf(["text"]), titles))
    features = inspect_document(path).features
    assert features.outline_sensitive == {"email": 1, "iban": 1}
    assert features.outline_items == 3

    report = report_of_file(path)
    outline = report["checks"]["sensitive_data"]["outline"]
    assert outline == {**seeded_found("email", "iban"), "read": 3}
    # Nothing on the page: the bookmarks alone make the document sensitive.
    assert report["checks"]["sensitive_data"]["total"] == 0
    assert Reason.SENSITIVE_DATA in report["verdict"]["reasons"]


def test_a_document_without_bookmarks_reads_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.pdf"
    path.write_bytes(make_feature_pdf(["text"]))
    report = report_of_file(path)
    assert report["checks"]["sensitive_data"]["outline"] == {"total": 0, "by_type": {}, "read": 0}


def test_a_looping_or_huge_outline_is_read_within_its_bound(tmp_path: Path) -> None:
    looping = tmp_path / "looping.pdf"
    looping.write_bytes(looping_outline(3))
    assert inspect_document(looping).features.outline_items == 3

    huge = tmp_path / "huge.pdf"
    titles = [f"level {n}" for n in range(MAX_OUTLINE_ITEMS + 50)]
    huge.write_bytes(with_bookmarks(make_feature_pdf(["text"]), titles, nested=False))
    # The outline's own dictionary counts among the items looked at.
    assert inspect_document(huge).features.outline_items == MAX_OUTLINE_ITEMS - 1
