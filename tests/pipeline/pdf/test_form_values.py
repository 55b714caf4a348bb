"""Sensitive data a page holds outside its text: values filled into its form fields, and
comments. Found like the text's (counts and masked samples), bounded against hostile
pages, on text pages and on scans read by OCR alike. The values of fields that no page
shows are found for the document, once."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf import PdfWriter
from pypdf.generic import ArrayObject
from pypdf.generic import DictionaryObject
from pypdf.generic import NameObject
from pypdf.generic import TextStringObject

from pipeline.facts import DocumentFeatures
from pipeline.pdf import form_values
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.ocr import OcrEngine
from pipeline.pdf.ocr import OcrOptions
from pipeline.pdf.ocr_page import DocumentRenderer
from pipeline.pdf.ocr_page import read_page
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.page_checks import annotation_text
from pipeline.pdf.page_checks import check_pages
from pipeline.reasons import Reason
from tests.support.feature_pdfs import SEEDED
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.pdf_edits import COMMENT
from tests.support.pdf_edits import FILLED
from tests.support.pdf_edits import fill_in
from tests.support.pdf_edits import off_pages
from tests.support.pdf_edits import with_hidden_field
from tests.support.reports import report_of_file

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


def _off_pages(path: Path, data: bytes) -> tuple[DocumentFeatures, PageResult]:
    """What the inspection finds in the fields no page shows, and the page's check."""
    page = _check(path, data)
    return inspect_document(path).features, page


def test_a_value_no_page_shows_is_searched_once_for_the_document(tmp_path: Path) -> None:
    filled = fill_in(make_feature_pdf(["form"]), FILLED)
    # The e-mail field's one widget is off the page; the address keeps one of its two.
    features, page = _off_pages(tmp_path / "a.pdf", off_pages(filled, {"email": 1, "address": 1}))
    assert features.field_sensitive == {"email": 1}
    assert features.field_sensitive_samples == {"email": [MASKED[FILLED["email"]]]}
    assert features.fields_off_pages == 1
    assert page.sensitive == {"iban": 1}
    # The address's value sits on its field, shown by neither widget once both are off.
    features, page = _off_pages(tmp_path / "b.pdf", off_pages(filled, {"address": 2}))
    assert (features.field_sensitive, page.sensitive) == ({"iban": 1}, {"email": 1})
    # A field that never had a widget, as a form's script fills one.
    ssn, masked_ssn = SEEDED["us_ssn"][0]
    hidden = with_hidden_field(filled, "ssn", f"SSN {ssn}")
    features, page = _off_pages(tmp_path / "c.pdf", hidden)
    assert features.field_sensitive_samples == {"us_ssn": [masked_ssn]}
    assert page.sensitive == {"email": 1, "iban": 1}

    report = report_of_file(tmp_path / "c.pdf")
    assert report["checks"]["sensitive_data"]["form_fields"] == {
        "total": 1,
        "by_type": {"us_ssn": {"count": 1, "samples": [masked_ssn]}},
        "read": 1,
    }
    assert ssn not in json.dumps(report)
    # Only a field no page shows holds it: still sensitive_data.
    plain = with_hidden_field(make_feature_pdf(["text"]), "ssn", ssn)
    (tmp_path / "d.pdf").write_bytes(plain)
    assert Reason.SENSITIVE_DATA in report_of_file(tmp_path / "d.pdf")["verdict"]["reasons"]


def test_fields_looped_or_past_the_annotation_bound_are_read_within_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    filled = fill_in(make_feature_pdf(["form"]), FILLED)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(filled)))
    # Two fields, each the other's kid: read once each, and the walk ends.
    looped = DictionaryObject({NameObject("/T"): TextStringObject("a")})
    first = writer._add_object(looped)
    second = writer._add_object(
        DictionaryObject(
            {
                NameObject("/T"): TextStringObject("b"),
                NameObject("/V"): TextStringObject(SEEDED["email"][1][0]),
                NameObject("/Kids"): ArrayObject([first]),
            }
        )
    )
    looped[NameObject("/Kids")] = ArrayObject([second])
    form: Any = writer.root_object["/AcroForm"]
    form["/Fields"].append(first)
    # A page whose annotations are not an array shows no field.
    writer.pages[0][NameObject("/Annots")] = TextStringObject("not an array")
    out = io.BytesIO()
    writer.write(out)
    path = tmp_path / "looped.pdf"
    path.write_bytes(out.getvalue())
    features = inspect_document(path).features
    assert features.read_error is None
    assert features.field_sensitive == {"email": 2, "iban": 1}
    assert features.fields_off_pages == 4  # name, email, address and b; agree is a name

    # Past the bound of annotations looked up (the form page has 5), no value is read as
    # one that no page shows.
    path.write_bytes(with_hidden_field(filled, "note", "hidden"))
    assert inspect_document(path).features.fields_off_pages == 1
    monkeypatch.setattr(form_values, "_MAX_PLACED", 4)
    assert inspect_document(path).features.fields_off_pages == 0
