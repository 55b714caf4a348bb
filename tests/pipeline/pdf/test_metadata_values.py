"""Sensitive data a document holds in its information entries (author, title, subject,
keywords, custom ones): found like a page's (counts and masked samples), reported apart
from the pages, and enough for the ``sensitive_data`` reason. Dates are not searched, and
a hostile dictionary is read up to its bound."""

from __future__ import annotations

import json
from pathlib import Path

from pypdf.generic import ByteStringObject, NameObject, NumberObject, TextStringObject

from pipeline.pdf.document_checks import inspect_document, metadata_text
from pipeline.pdf.sensitive import find_sensitive
from pipeline.reasons import Reason
from tests.support.feature_pdfs import SEEDED, make_feature_pdf
from tests.support.reports import report_of_file

(EMAIL, MASKED_EMAIL), _ = SEEDED["email"]
(IBAN, MASKED_IBAN), _ = SEEDED["iban"]
# A real date whose digits the card detector would take for a card number.
CARD_LIKE_DATE = "D:20240115093000-05'00'"


def _with_info(path: Path, info: dict[str, str]) -> Path:
    path.write_bytes(make_feature_pdf(["text"], metadata=info))
    return path


def test_an_author_and_keywords_holding_sensitive_data_make_the_document_sensitive(
    tmp_path: Path,
) -> None:
    path = _with_info(
        tmp_path / "meta.pdf",
        {"/Author": f"Jane <{EMAIL}>", "/Keywords": f"refund {IBAN}", "/Title": "Letter"},
    )
    features = inspect_document(path).features
    assert features.metadata_sensitive == {"email": 1, "iban": 1}
    assert features.metadata_sensitive_samples == {"email": [MASKED_EMAIL], "iban": [MASKED_IBAN]}

    report = report_of_file(path)
    found = report["checks"]["sensitive_data"]
    # The page holds nothing; the document's information entries do.
    assert (found["total"], found["pages"]["count"]) == (0, 0)
    assert found["metadata"] == {
        "total": 2,
        "by_type": {
            "email": {"count": 1, "samples": [MASKED_EMAIL]},
            "iban": {"count": 1, "samples": [MASKED_IBAN]},
        },
    }
    assert Reason.SENSITIVE_DATA in report["verdict"]["reasons"]
    written = json.dumps(report)
    assert EMAIL not in written and IBAN not in written


def test_dates_are_not_searched_and_a_plain_document_has_no_metadata_findings(
    tmp_path: Path,
) -> None:
    assert find_sensitive(CARD_LIKE_DATE).counts == {"payment_card": 1}
    path = _with_info(
        tmp_path / "dated.pdf",
        {"/CreationDate": CARD_LIKE_DATE, "/ModDate": CARD_LIKE_DATE, "/Title": "Minutes"},
    )
    assert inspect_document(path).features.metadata_sensitive == {}
    report = report_of_file(path)
    assert report["checks"]["sensitive_data"]["metadata"] == {"total": 0, "by_type": {}}
    assert Reason.SENSITIVE_DATA not in report["verdict"]["reasons"]


def test_a_dictionary_of_huge_entries_is_read_up_to_its_bound() -> None:
    # Entries past the first hundred, and text past 100,000 characters, are not read.
    late = {"/Late": TextStringObject(EMAIL)}
    many = {f"/Custom{n:03}": TextStringObject("x") for n in range(99)}
    assert EMAIL in metadata_text({**many, **late})
    assert EMAIL not in metadata_text({**many, "/Custom099": TextStringObject("x"), **late})
    huge = {"/Subject": TextStringObject("y" * 100_000), "/Author": TextStringObject(EMAIL)}
    assert metadata_text(huge) == "y" * 100_000
    # Names, numbers and binary strings are no one's text.
    others = {
        "/Title": TextStringObject("Letter"),
        "/Count": NumberObject(3),
        "/Kind": NameObject("/Invoice"),
        "/Raw": ByteStringObject(EMAIL.encode()),
    }
    assert metadata_text(others) == "Letter"
