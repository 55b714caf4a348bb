"""Sensitive data in files attached to a document: the text files, PDFs and office
documents of its EmbeddedFiles name tree (reported apart from the pages) and those
attached to a page (counted on that page). Other files are counted as not read; a
hostile number or size of files, or a PDF slow to read, is read up to its bound."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.errors import LimitReachedError

from pipeline.pdf import attachments
from pipeline.pdf.attachments import MAX_ATTACHED_PDF_PAGES
from pipeline.pdf.attachments import MAX_ATTACHMENT_BYTES
from pipeline.pdf.attachments import MAX_ATTACHMENTS
from pipeline.pdf.attachments import decoded
from pipeline.pdf.attachments import embedded_files
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.page_checks import check_pages
from pipeline.reasons import Reason
from tests.support.feature_pdfs import SEEDED
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.hostile import slow_to_read
from tests.support.office_files import archive
from tests.support.office_files import docx
from tests.support.office_files import odt
from tests.support.office_files import xlsx
from tests.support.pdf_edits import with_attached
from tests.support.pdfs import _png
from tests.support.pdfs import make_pdf
from tests.support.reports import report_of_file
from tests.support.reports import seeded_found

EMAIL = SEEDED["email"][0][0]
(IBAN, MASKED_IBAN), _ = SEEDED["iban"]
(PHONE, MASKED_PHONE), _ = SEEDED["phone"]


def _attached(path: Path, files: list[tuple[str, bytes]], on_page: bytes | None = None) -> Path:
    path.write_bytes(with_attached(make_feature_pdf(["text"]), files, on_page))
    return path


def test_text_files_attached_to_the_document_are_searched_and_others_counted_unread(
    tmp_path: Path,
) -> None:
    note = codecs.BOM_UTF16_LE + f"Write to {EMAIL}".encode("utf-16-le")
    path = _attached(
        tmp_path / "attached.pdf",
        [
            ("refunds.csv", f"name;iban\nJane;{IBAN}\n".encode()),
            ("note.txt", note),
            ("scan.png", _png()),
            ("latin1.txt", f"Müller {PHONE}".encode("latin-1")),
        ],
    )
    features = inspect_document(path).features
    assert features.attachment_sensitive == {"email": 1, "iban": 1}
    assert (features.attachments_read, features.attachments_not_read) == (2, 2)

    report = report_of_file(path)
    attachments = report["checks"]["sensitive_data"]["attachments"]
    assert attachments == {**seeded_found("email", "iban"), "read": 2, "not_read": 2}
    # Nothing on the page: the attached files alone make the document sensitive.
    assert report["checks"]["sensitive_data"]["total"] == 0
    assert Reason.SENSITIVE_DATA in report["verdict"]["reasons"]
    assert Reason.EMBEDDED_FILES in report["verdict"]["reasons"]
    written = json.dumps(report)
    assert EMAIL not in written and IBAN not in written


def test_a_text_file_attached_to_a_page_counts_on_that_page(tmp_path: Path) -> None:
    path = _attached(tmp_path / "page.pdf", [], on_page=f"call {PHONE}\n".encode())
    (page,) = check_pages(open_pdf(path), 1, 1)
    assert page.sensitive == {"phone": 1}
    assert page.sensitive_samples == {"phone": [MASKED_PHONE]}
    assert inspect_document(path).features.attachments_read == 0


def test_many_or_large_attachments_are_read_up_to_their_bound(tmp_path: Path) -> None:
    late = [(f"late{n}.txt", EMAIL.encode()) for n in range(5)]
    many = [(f"plain{n}.txt", b"nothing") for n in range(MAX_ATTACHMENTS)]
    features = inspect_document(_attached(tmp_path / "many.pdf", many + late)).features
    assert features.attachment_sensitive == {}
    assert (features.attachments_read, features.attachments_not_read) == (MAX_ATTACHMENTS, 5)

    # The largest read holds an IBAN at its end. One byte more, and a file is not read:
    # a compressed one (a bomb of 50 MB among them) stops decoding at the limit.
    tail = f"\n{IBAN}".encode()
    largest = b"x" * (MAX_ATTACHMENT_BYTES - len(tail)) + tail
    files = [
        ("largest.txt", largest),
        ("larger.txt", b"y" + largest),
        ("bomb.txt", b"z" * 50_000_000),
    ]
    path = tmp_path / "large.pdf"
    path.write_bytes(with_attached(make_feature_pdf(["text"]), files, compressed=True))
    features = inspect_document(path).features
    assert features.attachment_sensitive == {"iban": 1}
    assert (features.attachments_read, features.attachments_not_read) == (1, 2)
    # pypdf itself stops the bomb: it never decodes past the limit.
    names: Any = PdfReader(path).root_object["/Names"]
    bomb: Any = list(embedded_files(names["/EmbeddedFiles"]))[-1]
    with pytest.raises(LimitReachedError, match="while decompressing"):
        decoded(bomb["/EF"]["/F"])


def test_pdfs_attached_to_the_document_are_read_for_the_text_of_their_first_pages(
    tmp_path: Path,
) -> None:
    past_the_bound = [*["nothing"] * MAX_ATTACHED_PDF_PAGES, f"pay to {EMAIL}"]
    path = _attached(
        tmp_path / "attached-pdfs.pdf",
        [
            ("invoice.pdf", slow_to_read(["Invoice", f"IBAN {IBAN}"])),
            ("long.pdf", slow_to_read(past_the_bound)),
            ("locked.pdf", make_pdf(["text"], user_password="secret")),
            ("broken.pdf", b"%PDF-1.7\n" + b"\x00" * 64),
        ],
    )
    features = inspect_document(path).features
    assert features.attachment_sensitive == {"iban": 1}
    assert features.attachment_sensitive_samples == {"iban": [MASKED_IBAN]}
    # One that needs a password, and one that does not open, are not read.
    assert (features.attachments_read, features.attachments_not_read) == (2, 2)


def test_a_pdf_attached_to_a_page_counts_on_that_page(tmp_path: Path) -> None:
    path = _attached(tmp_path / "page-pdf.pdf", [], on_page=slow_to_read([f"call {PHONE}"]))
    (page,) = check_pages(open_pdf(path), 1, 1)
    assert page.sensitive == {"phone": 1}


def test_an_attached_pdf_slow_to_read_is_read_for_its_time_and_the_document_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Eighteen pages that take pypdf a quarter of a second each (a few KB in the file)
    # stand between the IBAN on the first page and the e-mail address on the last: the
    # time runs out among them. A shorter budget than the default's spares the suite's
    # CPU (test_pool.py checks the default's, in a parser process, for a page's files).
    monkeypatch.setattr(attachments, "ATTACHED_PDF_SECONDS", 0.5)
    pages = [f"IBAN {IBAN}", *[None] * (MAX_ATTACHED_PDF_PAGES - 2), EMAIL]
    slow = slow_to_read(pages, operators=30_000)
    features = inspect_document(_attached(tmp_path / "slow.pdf", [("slow.pdf", slow)])).features
    assert features.attachment_sensitive == {"iban": 1}
    assert features.attachments_read == 1


def test_office_documents_attached_are_read_and_other_archives_counted_unread(
    tmp_path: Path,
) -> None:
    first, rest = IBAN[:9], IBAN[9:]
    path = _attached(
        tmp_path / "office.pdf",
        [
            ("refunds.docx", docx([["Refund to ", first, rest]])),
            ("contacts.xlsx", xlsx([EMAIL], ["nothing"])),
            ("refunds.zip", archive({"refunds.csv": IBAN})),
        ],
        on_page=odt([f"call {PHONE}"]),
    )
    features = inspect_document(path).features
    assert features.attachment_sensitive == {"email": 1, "iban": 1}
    assert (features.attachments_read, features.attachments_not_read) == (2, 1)
    (page,) = check_pages(open_pdf(path), 1, 1)
    assert page.sensitive == {"phone": 1}
