"""Sensitive data a page holds outside its text: values filled into its form fields, and
comments. Found like the text's (counts and masked samples), bounded against hostile
pages, on text pages and on scans read by OCR alike."""

from __future__ import annotations

import io
import json
from pathlib import Path

from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.ocr import OcrEngine, OcrOptions
from pipeline.pdf.ocr_page import DocumentRenderer, read_page
from pipeline.pdf.page_checks import PageResult, annotation_text, check_pages
from tests.support.feature_pdfs import SEEDED, make_feature_pdf
from tests.support.pdf_edits import COMMENT, FILLED, fill_in

MASKED = {value: masked for found in SEEDED.values() for value, masked in found}


def _check(path: Path, data: bytes) -> PageResult:
    path.write_bytes(data)
    (result,) = check_pages(open_pdf(path), 1, 1)
    assert result.error_type is None
    return result


def test_values_filled_into_a_form_and_a_comment_are_searched(tmp_path: Path) -> None:
    result = _check(tmp_path / "filled.pdf", fill_in(make_feature_pdf(["form"]), FILLED, COMMENT))
    # One IBAN although two widgets show it, one phone number although its popup repeats it.
    assert result.sensitive == {"email": 1, "iban": 1, "phone": 1}
    assert result.sensitive_samples == {
        "email": [MASKED[FILLED["email"]]],
        "iban": [MASKED[FILLED["address"]]],
        "phone": [MASKED[SEEDED["phone"][0][0]]],
    }
    recorded = json.dumps(result.to_json())
    for raw in (*FILLED.values(), COMMENT):
        assert raw not in recorded
    # The page's own text, which holds none of it, is counted as before.
    empty = _check(tmp_path / "empty.pdf", make_feature_pdf(["form"]))
    assert empty.sensitive == {}
    assert (result.text_chars, result.words) == (empty.text_chars, empty.words)


def _with_widgets(pdf: bytes, values: list[str], *, first_loops: bool = False) -> bytes:
    """``pdf`` with a text widget on its first page for each of ``values``; with
    ``first_loops``, the first one holds no value and is its own parent field."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    annots = ArrayObject()
    for value in values:
        widget = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Annot"),
                NameObject("/Subtype"): NameObject("/Widget"),
                NameObject("/FT"): NameObject("/Tx"),
                NameObject("/Rect"): ArrayObject(),
                NameObject("/V"): TextStringObject(value),
            }
        )
        annots.append(writer._add_object(widget))
    if first_loops:
        looped = annots[0].get_object()
        del looped["/V"]
        looped[NameObject("/Parent")] = annots[0]
    writer.pages[0][NameObject("/Annots")] = annots
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_flattened_form_counts_a_value_its_page_shows_once(tmp_path: Path) -> None:
    # The page draws every seeded value; a flattened form kept two of them in widgets (one
    # broken over two lines), and a widget holds a value the page does not show.
    email, phone = SEEDED["email"][0][0], SEEDED["phone"][0][0]
    hidden = "flat.form@example.net"
    page = make_feature_pdf(["sensitive"])
    plain = _check(tmp_path / "plain.pdf", page)
    broken = "\n".join(phone.rsplit(" ", 1))
    flattened = _check(tmp_path / "flattened.pdf", _with_widgets(page, [email, broken, hidden]))
    assert plain.sensitive["email"] == 2 and plain.sensitive["phone"] == 2
    assert flattened.sensitive == {**plain.sensitive, "email": 3}


def test_a_page_of_huge_field_values_is_read_up_to_its_bound(tmp_path: Path) -> None:
    # 300 values of 1,000 characters: the first 100,000 are searched, not what follows.
    filler = "x" * 990
    values = ["", f"{SEEDED['email'][0][0]} {filler}"]
    values += [filler + f" {n:08d}" for n in range(296)]
    values += [f"{SEEDED['email'][1][0]} {filler}", SEEDED["iban"][1][0]]
    path = tmp_path / "huge.pdf"
    path.write_bytes(_with_widgets(make_feature_pdf(["text"]), values, first_loops=True))
    read = annotation_text(open_pdf(path).pages[0])
    assert 100_000 <= len(read) <= 100_400  # the bound, and the parts' separators
    result = _check(path, path.read_bytes())
    assert result.sensitive == {"email": 1}
    assert result.sensitive_samples == {"email": [MASKED[SEEDED["email"][0][0]]]}


def test_a_scan_with_a_filled_field_has_the_fields_value_searched_too(
    tmp_path: Path, engine: OcrEngine
) -> None:
    # An image-only page (a scan) with a form field over it, as scanned forms are.
    scan = make_feature_pdf(["image", "form"])
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(scan)))
    writer.pages[0][NameObject("/Annots")] = writer.pages[1]["/Annots"]
    writer.remove_page(1)
    out = io.BytesIO()
    writer.write(out)
    path = tmp_path / "scanned-form.pdf"
    path.write_bytes(fill_in(out.getvalue(), FILLED))
    reader = open_pdf(path)
    (checked,) = check_pages(reader, 1, 1)
    assert checked.image_only
    renderer = DocumentRenderer(path)
    try:
        read = read_page(
            reader.pages[0], checked, renderer=renderer, engine=engine, options=OcrOptions()
        )
    finally:
        renderer.close()
    assert read.text_source == "ocr"
    assert read.sensitive == {"email": 1, "iban": 1}
