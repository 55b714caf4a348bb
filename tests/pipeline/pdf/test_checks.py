"""Document and page checks, on generated PDFs with known content and a real-world corpus."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from pypdf import PageObject
from pypdf import PasswordType
from pypdf import PdfReader
from pypdf.errors import PdfReadError
from pypdf.generic import ContentStream
from pypdf.generic import IndirectObject

from pipeline.pdf import page_checks
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.page_checks import check_pages
from tests.support.corpus import CORPUS
from tests.support.hostile import one_page
from tests.support.hostile import stream
from tests.support.pdfs import make_pdf

KINDS = ["text", "blank", "image", "mixed", "rotated"]
A4 = (595.28, 841.89)


@pytest.fixture(scope="module")
def mixed_pdf(pdf_dir: Path) -> Path:
    path = pdf_dir / "mixed.pdf"
    path.write_bytes(make_pdf(KINDS))
    return path


@pytest.fixture(scope="module")
def mixed_results(mixed_pdf: Path) -> list[PageResult]:
    return check_pages(open_pdf(mixed_pdf), 1, len(KINDS))


# --- pages of a generated document -------------------------------------------------------


def test_pages_are_numbered_in_order(mixed_results: list[PageResult]) -> None:
    assert [r.page for r in mixed_results] == [1, 2, 3, 4, 5]
    assert all(r.error_type is None and r.error is None for r in mixed_results)


def test_text_pages_have_text(mixed_results: list[PageResult]) -> None:
    by_kind = dict(zip(KINDS, mixed_results, strict=True))
    for kind in ("text", "mixed", "rotated"):
        assert by_kind[kind].text_chars > 100, kind
    for kind in ("blank", "image"):
        assert by_kind[kind].text_chars == 0, kind


def test_only_the_blank_page_is_blank(mixed_results: list[PageResult]) -> None:
    assert [r.blank for r in mixed_results] == [k == "blank" for k in KINDS]


def test_only_the_image_page_is_image_only(mixed_results: list[PageResult]) -> None:
    assert [r.image_only for r in mixed_results] == [k == "image" for k in KINDS]
    assert [r.image_count for r in mixed_results] == [0, 0, 1, 1, 0]


def test_rotation(mixed_results: list[PageResult]) -> None:
    assert [r.rotation for r in mixed_results] == [0, 0, 0, 0, 90]


def test_a4_page_size(mixed_results: list[PageResult]) -> None:
    for result in mixed_results:
        # The mediabox is not swapped by /Rotate: the rotated page is still A4 portrait.
        assert result.width_pt == pytest.approx(595, abs=1)
        assert result.height_pt == pytest.approx(842, abs=1)
        assert (result.width_pt, result.height_pt) == A4


def test_letter_page_size(pdf_dir: Path) -> None:
    path = pdf_dir / "letter.pdf"
    path.write_bytes(make_pdf(["text"], page_format="Letter"))
    (result,) = check_pages(open_pdf(path), 1, 1)
    assert (result.width_pt, result.height_pt) == (612.0, 792.0)


def test_page_results_serialise_without_text(mixed_results: list[PageResult]) -> None:
    data = mixed_results[0].to_json()
    assert data["page"] == 1
    assert data["text_chars"] == mixed_results[0].text_chars
    assert set(data) == {
        "page",
        "text_chars",
        "words",
        "image_count",
        "width_pt",
        "height_pt",
        "paper_size",
        "rotation",
        "blank",
        "image_only",
        "annotations",
        "links",
        "external_links",
        "link_hosts",
        "form_widgets",
        "file_attachments",
        "javascript_actions",
        "launch_actions",
        "sensitive",
        "sensitive_samples",
        "error_type",
        "error",
        "text_source",
        "ocr_confidence",
        "ocr_engine",
        "ocr_data",
        "ocr_image",
        "ocr_rotation",
        "ocr_error",
    }
    assert data["text_source"] == "text"
    assert "docpipe sample" not in str(data)


# --- document facts ----------------------------------------------------------------------


def test_inspect_generated_document(mixed_pdf: Path) -> None:
    facts = inspect_document(mixed_pdf)
    assert facts.problem is None
    assert facts.problem_detail is None
    assert facts.page_count == len(KINDS)
    assert facts.encrypted is False
    header = re.match(rb"%PDF-(\d\.\d)", mixed_pdf.read_bytes())
    assert header is not None
    assert facts.pdf_version == header.group(1).decode()


def test_password_protected_pdf_is_encrypted(pdf_dir: Path) -> None:
    path = pdf_dir / "protected.pdf"
    path.write_bytes(make_pdf(["text", "text"], user_password="x"))
    facts = inspect_document(path)
    assert facts.problem == "encrypted"
    assert facts.encrypted is True
    assert facts.page_count == 0


def test_empty_user_password_is_checked_like_any_pdf(pdf_dir: Path) -> None:
    path = pdf_dir / "owner-only.pdf"
    path.write_bytes(make_pdf(["text", "blank"], user_password=""))
    facts = inspect_document(path)
    assert facts.problem is None
    assert facts.encrypted is True
    assert facts.page_count == 2
    results = check_pages(open_pdf(path), 1, 2)
    assert results[0].text_chars > 0
    assert results[1].blank is True


@pytest.mark.parametrize(
    "data", [b"hello, this is not a PDF", b"", b"\x89PNG\r\n\x1a\n" + b"\x00" * 2000]
)
def test_not_a_pdf(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "not.pdf"
    path.write_bytes(data)
    facts = inspect_document(path)
    assert facts.problem == "not_pdf"
    assert facts.page_count == 0
    assert facts.pdf_version is None


def test_header_without_a_body_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "header-only.pdf"
    path.write_bytes(b"%PDF-1.4\n this is not a PDF body\n")
    facts = inspect_document(path)
    assert facts.problem == "unreadable"
    assert facts.pdf_version == "1.4"
    assert facts.problem_detail


def test_truncated_pdf_is_unreadable_or_has_page_errors(mixed_pdf: Path, tmp_path: Path) -> None:
    data = mixed_pdf.read_bytes()
    path = tmp_path / "truncated.pdf"
    path.write_bytes(data[: len(data) // 2])
    facts = inspect_document(path)
    if facts.problem is None:
        results = check_pages(open_pdf(path), 1, facts.page_count)
        assert any(r.error_type is not None for r in results)
    else:
        assert facts.problem == "unreadable"
        assert facts.page_count == 0


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.6, 0.8, 0.95, 0.99])
def test_truncation_never_raises(mixed_pdf: Path, tmp_path: Path, fraction: float) -> None:
    data = mixed_pdf.read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: int(len(data) * fraction)])
    facts = inspect_document(path)
    assert facts.problem in (None, "unreadable")
    if facts.problem is None:
        results = check_pages(open_pdf(path), 1, facts.page_count)
        assert [r.page for r in results] == list(range(1, facts.page_count + 1))


# --- per-page errors ---------------------------------------------------------------------


def test_a_failing_page_is_recorded_and_others_kept(
    mixed_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_check_page = page_checks.check_page

    def flaky(page: PageObject, number: int) -> PageResult:
        if number == 2:
            raise RuntimeError("broken content stream on page two")
        return real_check_page(page, number)

    monkeypatch.setattr(page_checks, "check_page", flaky)
    results = check_pages(open_pdf(mixed_pdf), 1, 3)
    assert [r.page for r in results] == [1, 2, 3]
    assert results[1].error_type == "RuntimeError"
    assert results[1].error == "broken content stream on page two"
    assert results[1].text_chars == 0
    assert results[0].error_type is None and results[0].text_chars > 0
    assert results[2].error_type is None and results[2].image_only is True


def test_page_error_messages_are_capped(mixed_pdf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(page: PageObject, number: int) -> PageResult:
        raise ValueError("x" * 5000)

    monkeypatch.setattr(page_checks, "check_page", fail)
    (result,) = check_pages(open_pdf(mixed_pdf), 4, 4)
    assert result.page == 4
    assert result.error_type == "ValueError"
    assert result.error is not None and len(result.error) == 200


def test_a_page_beyond_the_document_is_an_error(mixed_pdf: Path) -> None:
    results = check_pages(open_pdf(mixed_pdf), 5, 6)
    assert results[0].error_type is None
    assert results[1].page == 6
    assert results[1].error_type == "IndexError"


# --- real-world corpus -------------------------------------------------------------------


def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(CORPUS.glob("*.pdf"))


def _count_page_leaves(node: Any, seen: set[int]) -> int:
    """Count ``/Type /Page`` nodes by walking the page tree, guarding against cycles."""
    if isinstance(node, IndirectObject):
        if node.idnum in seen:
            raise AssertionError(f"page tree cycle at object {node.idnum}")
        seen.add(node.idnum)
        node = node.get_object()
    kind = node.get("/Type")
    if kind == "/Page":
        return 1
    assert kind == "/Pages", f"unexpected node type {kind!r} in the page tree"
    return sum(_count_page_leaves(kid, seen) for kid in node["/Kids"])


def _independent_page_count(path: Path) -> int:
    reader = PdfReader(path)
    if reader.is_encrypted:
        assert reader.decrypt("") != PasswordType.NOT_DECRYPTED
    root: Any = reader.trailer["/Root"]
    root_pages = root.raw_get("/Pages")
    declared = int(root["/Pages"]["/Count"])
    walked = _count_page_leaves(root_pages, set())
    assert walked == declared, f"{path.name}: tree has {walked} pages, /Count says {declared}"
    return walked


def _needs_a_password(path: Path) -> bool:
    reader = PdfReader(path)
    return reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED


@pytest.fixture(scope="module")
def corpus_files() -> list[Path]:
    files = _corpus_files()
    if not files:
        pytest.skip(f"corpus not found at {CORPUS}")
    return files


def test_corpus_is_not_trivial(corpus_files: list[Path]) -> None:
    assert len(corpus_files) >= 10


@pytest.mark.parametrize("name", [p.name for p in _corpus_files()] or ["<no corpus>"])
def test_corpus_document(name: str, corpus_files: list[Path]) -> None:
    path = CORPUS / name
    facts = inspect_document(path)
    header = re.search(rb"%PDF-(\d\.\d)", path.read_bytes()[:1024])
    assert header is not None
    assert facts.pdf_version == header.group(1).decode()
    if _needs_a_password(path):
        assert facts.problem == "encrypted"
        assert facts.page_count == 0
        return
    assert facts.problem is None, facts.problem_detail
    assert facts.page_count == _independent_page_count(path)
    # Page checks are not run here: text and image extraction on some of these files takes
    # seconds per page, which belongs in a slow test, not in the unit tests.


# --- text and images from one reading of the content stream ------------------------------


_INLINE_IMAGE = b"q BI /W 2 /H 2 /CS /G /BPC 8 ID \x00\xff\x00\xff EI Q"
_IMAGE = (
    b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray "
    b"/BitsPerComponent 8 /Length 1 >>\nstream\n\x00\nendstream"
)


def _form(xobjects: bytes) -> bytes:
    return (
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 10 10] /Resources << /XObject << "
        + xobjects
        + b" >> >> /Length 0 >>\nstream\n\nendstream"
    )


def _first_page(data: bytes) -> PageObject:
    return PdfReader(io.BytesIO(data)).pages[0]


def test_each_page_content_stream_is_parsed_once(
    mixed_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pypdf's extract_text() and images each parse it; the checks share one parse.
    parsed: list[int] = []
    real_parse = ContentStream._parse_content_stream

    def parse(stream: ContentStream, data: Any) -> None:
        parsed.append(1)
        real_parse(stream, data)

    monkeypatch.setattr(ContentStream, "_parse_content_stream", parse)
    reader = open_pdf(mixed_pdf)
    for number, kind in enumerate(KINDS, start=1):
        parsed.clear()
        result = page_checks.check_page(reader.pages[number - 1], number)
        assert len(parsed) <= 1, kind
        if kind != "blank":
            assert len(parsed) == 1, kind
            assert result.text_chars > 0 or result.image_count > 0


def test_inline_images_are_counted_next_to_the_text() -> None:
    page = _first_page(
        one_page(stream(b"BT /F1 12 Tf 10 10 Td (hello world) Tj ET " + _INLINE_IMAGE * 2))
    )
    result = page_checks.check_page(page, 1)
    assert (result.image_count, result.text_chars, result.words) == (2, 10, 2)
    assert not result.image_only


def test_an_inline_image_with_an_unknown_colour_space_is_counted_not_an_error() -> None:
    # pypdf's page.images decodes inline images and raises for a colour space missing
    # from the resources, which made the whole page an error; counting needs no decoding.
    data = one_page(
        stream(b"q BI /W 2 /H 2 /CS /Nowhere /BPC 8 ID \x00\xff\x00\xff EI Q"), resources=b""
    )
    with pytest.raises(PdfReadError, match="Nowhere"):
        len(_first_page(data).images)
    [result] = check_pages(PdfReader(io.BytesIO(data)), 1, 1)
    assert (result.error_type, result.image_count, result.image_only) == (None, 1, True)


def test_images_in_forms_count_by_name_and_a_form_cycle_ends() -> None:
    nested = one_page(
        stream(b"/Fm1 Do " + _INLINE_IMAGE),
        resources=b"/XObject << /Fm1 6 0 R /Im1 7 0 R >>",
        objects={6: _form(b"/Im2 7 0 R"), 7: _IMAGE},
    )
    # /Im1, /Fm1's /Im2 (the same object under another name), and the inline image.
    assert page_checks.check_page(_first_page(nested), 1).image_count == 3
    assert len(_first_page(nested).images) == 3
    cycle = one_page(
        stream(b"/Fm1 Do"),
        resources=b"/XObject << /Fm1 6 0 R >>",
        objects={6: _form(b"/Fm1 6 0 R /Im 7 0 R"), 7: _IMAGE},
    )
    assert page_checks.check_page(_first_page(cycle), 1).image_count == 1


def test_text_and_images_are_what_pypdf_reads_on_every_corpus_page(
    corpus_files: list[Path],
) -> None:
    compared = 0
    for path in corpus_files:
        if _needs_a_password(path):
            continue
        for page in open_pdf(path).pages:
            try:
                expected = (page.extract_text() or "", len(page.images))
            except Exception:
                continue  # a page error either way
            assert page_checks._text_and_images(page) == expected, path.name
            compared += 1
    assert compared > 50


def test_text_counts_treat_every_kind_of_white_space_alike() -> None:
    spaces = "".join(chr(code) for code in range(0x3100) if chr(code).isspace())
    assert len(spaces) > 20  # tabs, line breaks, no-break and em spaces, separators...
    text = f"one{spaces}two{spaces[::-1]}three\u00a0four "
    assert page_checks.text_counts(text) == (sum(not ch.isspace() for ch in text), 4)
    assert page_checks.text_counts("") == (0, 0)
