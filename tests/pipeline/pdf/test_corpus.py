"""docpipe on real-world PDFs (../shared/corpus), against independently computed facts.

For every file: the page count, encryption and whether the empty password opens it, page
rotation, images, form widgets, attachments and the AcroForm/XFA flags are read from the
file by ``tests.support.pdf_facts`` (the specification's algorithms, pypdf's low-level objects),
and docpipe's report must agree. Every report is validated against the JSON Schema.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.page_checks import check_pages
from tests.support.corpus import CORPUS
from tests.support.pdf_facts import PdfFacts
from tests.support.pdf_facts import pdf_facts
from tests.support.pdf_facts import revision_ends
from tests.support.pdf_facts import xmp_claims
from tests.support.reports import report_of_results

# Files whose revisions pyHanko cannot read (their reports say why, in the signatures'
# error): a damaged metadata stream, an object offset that misses, no %%EOF marker.
REVISIONS_UNREAD = {"form_acrobatReader.pdf", "issue-297.pdf", "selenium-pypdf-issue-177.pdf"}
# The corpus README names the password of every file in encryption/ and of two others.
NEEDS_PASSWORD_BY_README = {"crazyones-encrypted-256.pdf", "encrypted-file.pdf"}
OPENS_BY_README = {"unencrypted.pdf"}


def _files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(CORPUS.glob("*.pdf")) + sorted(CORPUS.glob("encryption/*.pdf"))


def _name(path: Path) -> str:
    return str(path.relative_to(CORPUS))


FILES = {_name(path): path for path in _files()}
pytestmark = pytest.mark.skipif(not FILES, reason=f"corpus not found at {CORPUS}")


def _readme_says_needs_password(name: str) -> bool | None:
    """What the corpus README's naming says, where it says anything."""
    base = Path(name).name
    if base.endswith(("-user-password.pdf", "-both-passwords.pdf")):
        return True
    if base.endswith(("-owner-password.pdf", "-empty-password.pdf")):
        return False
    if base in NEEDS_PASSWORD_BY_README:
        return True
    if base in OPENS_BY_README:
        return False
    return None


@cache
def _checked(name: str) -> tuple[PdfFacts, list[PageResult], dict[str, Any]]:
    path = FILES[name]
    facts = inspect_document(path)
    results = [] if facts.problem else check_pages(open_pdf(path), 1, facts.page_count)
    return pdf_facts(path), results, report_of_results(path, facts, results)


@pytest.mark.parametrize("name", sorted(FILES) or ["<no corpus>"])
def test_corpus_file(name: str) -> None:
    expected, pages, report = _checked(name)
    facts = report["facts"]
    assert facts["encrypted"] is expected.encrypted

    needs_password = expected.encrypted and not expected.empty_user_password
    by_readme = _readme_says_needs_password(name)
    if by_readme is not None:
        # The independent password check agrees with the README's naming.
        assert needs_password is by_readme
    if needs_password:
        assert report["verdict"]["verdict"] == "reject"
        assert report["verdict"]["reasons"] == ["encrypted"]
        assert facts["problem"] == "encrypted"
        assert facts["page_count"] == 0
        return

    assert facts["problem"] is None, facts["problem_detail"]
    assert facts["empty_user_password"] is expected.encrypted
    assert facts["pdf_version"] == expected.version
    assert facts["page_count"] == expected.page_count
    checks = report["checks"]
    assert checks["pages_checked"] == expected.page_count
    assert [p.error_type for p in pages] == [None] * expected.page_count

    assert [p.rotation for p in pages] == [p.rotation for p in expected.pages]
    assert [p.image_count for p in pages] == [p.images for p in expected.pages]
    assert [p.form_widgets for p in pages] == [p.widgets for p in expected.pages]
    attachments = sum(p.file_attachments for p in expected.pages)
    assert checks["embedded_files"]["annotations"] == attachments
    assert checks["embedded_files"]["document"] == expected.embedded_files
    assert checks["forms"]["acroform"] is expected.acroform
    assert checks["forms"]["xfa"] is expected.xfa

    found = set(report["verdict"]["reasons"] + report["verdict"]["informational"])
    assert ("rotated_pages" in found) is any(p.rotation for p in expected.pages)
    widgets = sum(p.widgets for p in expected.pages)
    assert ("forms" in found) is (expected.acroform or widgets > 0)
    assert ("embedded_files" in found) is (expected.embedded_files + attachments > 0)
    # An image-only page needs OCR; every such page has at least one image.
    for result, page in zip(pages, expected.pages, strict=True):
        if result.image_only:
            assert page.images > 0 and result.text_chars == 0


# The corpus holds each kind of file the checks must recognise: name them, so that a
# check that silently finds nothing fails here.
KNOWN = {
    "form.pdf": "forms",
    "form_acrobatReader.pdf": "forms",
    "form_evince.pdf": "forms",
    "FormTestFromOo.pdf": "forms",
    "SF424_page2.pdf": "forms",
    "attachment.pdf": "embedded_files",
    "AutoCad_Diagram.pdf": "rotated_pages",
    "AutoCad_Simple.pdf": "rotated_pages",
}


@pytest.mark.parametrize(("name", "reason"), sorted(KNOWN.items()))
def test_known_files_are_recognised(name: str, reason: str) -> None:
    if name not in FILES:
        pytest.skip(f"{name} not in the corpus")
    _, _, report = _checked(name)
    assert reason in report["verdict"]["reasons"] + report["verdict"]["informational"]


def test_image_files_have_images() -> None:
    for name in ("jpeg.pdf", "git.pdf", "box.pdf", "issue-3850-1bit-indexed-flate.pdf"):
        if name in FILES:
            assert _checked(name)[2]["checks"]["images"] > 0, name


def test_the_corpus_covers_every_encryption_outcome() -> None:
    outcomes = {(_checked(n)[0].encrypted, _checked(n)[2]["facts"]["problem"]) for n in FILES}
    assert (True, "encrypted") in outcomes  # needs a password: rejected
    assert (True, None) in outcomes  # opens with the empty password: checked
    assert (False, None) in outcomes


@pytest.mark.parametrize("name", sorted(FILES) or ["<no corpus>"])
def test_corpus_revisions_and_claims(name: str) -> None:
    """Revisions where the file's bytes say they end; XMP claims as its packet writes them."""
    from pypdf import PdfReader

    _, _, report = _checked(name)
    if report["facts"]["problem"]:
        assert report["facts"]["revisions"]["count"] is None
        return
    revisions = report["facts"]["revisions"]
    if Path(name).name in REVISIONS_UNREAD:
        assert revisions["count"] is None
        assert report["checks"]["signatures"]["error"]
    else:
        ends = revision_ends(FILES[name].read_bytes())
        assert revisions == {"count": len(ends), "incremental_updates": len(ends) - 1, "ends": ends}
        assert report["checks"]["signatures"]["error"] is None
    # No file of the corpus is signed.
    assert report["checks"]["signatures"]["signed"] == 0
    reader = PdfReader(FILES[name])
    if reader.is_encrypted:
        reader.decrypt("")
    claims = xmp_claims(reader)
    got = report["facts"]["claims"]
    assert got["validated"] is False
    assert (None if got["pdfa_part"] is None else str(got["pdfa_part"])) == claims["pdfa_part"]
    assert got["pdfa_conformance"] == claims["pdfa_conformance"]
    assert (None if got["pdfua_part"] is None else str(got["pdfua_part"])) == claims["pdfua_part"]


def test_the_corpus_has_files_updated_after_they_were_made() -> None:
    updated = [n for n in FILES if (_checked(n)[2]["facts"]["revisions"]["count"] or 0) > 1]
    assert len(updated) >= 3
