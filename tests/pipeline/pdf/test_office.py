"""The text of office documents attached to PDFs: Word, Excel, PowerPoint and OpenDocument
files read a paragraph or cell at a time; other archives and parts not read; hostile
archives read within their bounds."""

from __future__ import annotations

import tracemalloc

from pipeline.pdf.office import MAX_ENTRIES
from pipeline.pdf.office import MAX_XML_BYTES
from pipeline.pdf.office import office_text
from tests.support.office_files import WORD_NS
from tests.support.office_files import archive
from tests.support.office_files import docx
from tests.support.office_files import odt
from tests.support.office_files import pptx
from tests.support.office_files import word_part
from tests.support.office_files import xlsx


def test_each_format_is_read_a_paragraph_or_cell_at_a_time() -> None:
    # A value split across runs of formatting is read whole; headers are read too.
    text = docx(
        [["IBAN DE89 3704 ", "0044 0532", " 0130 00"], ["Kind regards"]],
        extra={"word/header1.xml": word_part("jane.doe@example.com")},
    )
    assert office_text(text) == (
        "IBAN DE89 3704 0044 0532 0130 00\nKind regards\njane.doe@example.com"
    )
    workbook = xlsx(["billing@acme-corp.example.org"], ["+49 30 1234 5678"])
    assert office_text(workbook) == "billing@acme-corp.example.org\n+49 30 1234 5678\n1"
    assert office_text(pptx(["Agenda", "Card 4111 1111 1111 1111"])) == (
        "Agenda\nCard 4111 1111 1111 1111"
    )
    letter = odt(["Dear Jane,", "SSN 123-45-6789"], header="jane.doe@example.com")
    assert office_text(letter) == "Dear Jane,\nSSN 123-45-6789\njane.doe@example.com"


def test_parts_that_hold_no_writing_and_other_archives_are_not_read() -> None:
    styled = docx([["Report"]], extra={"word/styles.xml": word_part("jane.doe@example.com")})
    assert office_text(styled) == "Report"
    assert office_text(archive({"refunds.csv": "DE89 3704 0044 0532 0130 00"})) is None
    assert office_text(odt(["a book"], mimetype="application/epub+zip")) is None
    assert office_text(docx([["cut short"]])[:-30]) is None
    assert office_text(b"PK\x03\x04 not an archive") is None


def test_hostile_archives_are_read_within_their_bounds() -> None:
    # A part that inflates to ten times the bound (the archive is about 60 KB) is not
    # read, nor anything after it; what came before is. Inflating stops at the bound.
    bomb = archive(
        {
            "[Content_Types].xml": "<Types/>",
            "word/header1.xml": word_part("before the bomb"),
            "word/document.xml": f"<w:document {WORD_NS}>{'x' * 10 * MAX_XML_BYTES}</w:document>",
            "word/footer1.xml": word_part("after the bomb"),
        }
    )
    assert len(bomb) < 100_000
    tracemalloc.start()
    try:
        assert office_text(bomb) == "before the bomb"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * MAX_XML_BYTES

    # Billion laughs: nine levels of entities, each ten of the one below.
    entities = "".join(
        f'<!ENTITY {name} "{f"&{below};" * 10}">'
        for below, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    laughs = (
        f'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">{entities}]>'
        f"<w:document {WORD_NS}><w:p><w:r><w:t>&i;</w:t></w:r></w:p></w:document>"
    )
    expanded = archive(
        {
            "[Content_Types].xml": "<Types/>",
            "word/document.xml": laughs,
            "word/footer1.xml": word_part("read"),
        }
    )
    assert office_text(expanded) == "read"
    # A part in an encoding the parser does not know is passed over like a broken one.
    unknown = archive(
        {
            "[Content_Types].xml": "<Types/>",
            "word/document.xml": '<?xml version="1.0" encoding="bogus"?><d/>',
            "word/header1.xml": '<?xml version="1.0" encoding="shift_jis"?><d/>',
            "word/footer1.xml": word_part("read"),
        }
    )
    assert office_text(unknown) == "read"

    deep = 100_000
    nested = archive(
        {
            "[Content_Types].xml": "<Types/>",
            "word/document.xml": "<d>" * deep + "<p>deep</p>" + "</d>" * deep,
        }
    )
    assert office_text(nested) == "deep"

    crowded = archive(
        {
            "[Content_Types].xml": "<Types/>",
            **{f"junk/{n}.bin": b"" for n in range(MAX_ENTRIES)},
            "word/document.xml": f"<w:document {WORD_NS}><w:p><w:t>late</w:t></w:p></w:document>",
        }
    )
    assert office_text(crowded) == ""
