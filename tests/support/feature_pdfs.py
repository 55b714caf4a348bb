"""Generate PDFs that exercise every page and document check, with known content.

``make_feature_pdf`` lays out pages with fpdf2 (text, images, paper sizes) and adds the
structures fpdf2 does not make with pypdf (links, annotations, form fields, JavaScript,
Launch actions, attachments, XFA, metadata). Every seeded value is a constant here, so
tests state their expectations from this file, not from docpipe's output.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from fpdf import FPDF

from tests.support import pdf_parts as parts
from tests.support.pdfs import TEXT
from tests.support.pdfs import _png

# Sensitive values seeded on a "sensitive" page, one per line, with their masked forms.
SEEDED: dict[str, list[tuple[str, str]]] = {
    "email": [
        ("jane.doe@example.com", "j***@e***.com"),
        ("billing@acme-corp.example.org", "b***@a***.org"),
    ],
    "phone": [("+49 30 1234 5678", "+** ** **** **78"), ("(555) 123-4567", "(***) ***-**67")],
    "iban": [
        ("DE89 3704 0044 0532 0130 00", "DE** **** **** **** **30 00"),
        ("GB82WEST12345698765432", "GB** **** **** **** **54 32"),
    ],
    "payment_card": [
        ("4111 1111 1111 1111", "**** **** **** 1111"),
        ("5500-0000-0000-0004", "**** **** **** 0004"),
    ],
    "us_ssn": [("123-45-6789", "***-**-6789")],
}
# Look-alikes on a "decoys" page that must not be found.
DECOYS = (
    "Card on file: 4111 1111 1111 1112 (fails the Luhn check).",
    "Old account: DE88 3704 0044 0532 0130 00 (bad IBAN checksum).",
    "Reference 000-12-3456 and 666-12-3456 (never issued as SSNs).",
    "Invoice 2026-01-15, order 12345678, build 1.2.3.4, total 1,234.56 EUR.",
    "Contact: support at example dot com; room 12-345.",
)
LINK_URLS = ("https://www.example.com/terms", "http://Docs.Example.org/guide?x=1")
FIELD_NAMES = ("name", "email", "agree", "address")
ATTACHMENT = ("notes.txt", b"docpipe test attachment\n")
METADATA = {
    "/Producer": "docpipe test producer",
    "/Creator": "docpipe feature generator",
    "/CreationDate": "D:20260102030405+01'00'",
    "/ModDate": "D:20260203040506Z",
    "/Title": "A title that must not reach the report",
}
PAGE_KINDS = (
    "text",
    "blank",
    "image",
    "mixed",
    "rotated",
    "letter",
    "legal",
    "landscape",
    "sensitive",
    "decoys",
    "links",
    "annotated",
    "form",
    "script",
    "launch",
    "attachment",
)
_FORMATS = {"letter": "Letter", "legal": "Legal", "landscape": "A4"}


def _fpdf_pages(pages: Sequence[str]) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_compression(True)
    pdf.set_font("helvetica", size=11)
    pdf.set_creation_date(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    image = _png()
    for number, kind in enumerate(pages, start=1):
        if kind not in PAGE_KINDS:
            raise ValueError(f"unknown page kind {kind!r}; known: {', '.join(PAGE_KINDS)}")
        orientation = "L" if kind == "landscape" else "P"
        pdf.add_page(format=_FORMATS.get(kind, "A4"), orientation=orientation)
        if kind in ("blank", "image"):
            if kind == "image":
                pdf.image(io.BytesIO(image), x=20, y=20, w=120)
            continue
        pdf.multi_cell(0, 6, f"Page {number}. " + TEXT * 2, new_x="LMARGIN", new_y="NEXT")
        if kind == "mixed":
            pdf.image(io.BytesIO(image), x=20, y=80, w=120)
        # One value a line: a wrapped line would split a value in the extracted text.
        if kind == "sensitive":
            for values in SEEDED.values():
                for value, _ in values:
                    pdf.multi_cell(0, 6, f"Value: {value}", new_x="LMARGIN", new_y="NEXT")
        elif kind == "decoys":
            for line in DECOYS:
                pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _link(writer: Any, page: Any, rect: Any, action: Any) -> None:
    """A link annotation that runs an action when clicked."""
    parts.annotation(writer, page, "/Link", rect, A=action)


def _add_links(writer: Any, page: Any, first_page: Any) -> None:
    from pypdf.generic import ArrayObject
    from pypdf.generic import NameObject

    for i, url in enumerate(LINK_URLS):
        _link(
            writer,
            page,
            parts.rect(50, 700 - 20 * i, 250, 715 - 20 * i),
            parts.action("/URI", URI=parts.text_object(url)),
        )
    # A link inside the document, and a mail link: links, but no external host.
    parts.annotation(
        writer,
        page,
        "/Link",
        parts.rect(50, 640, 250, 655),
        Dest=ArrayObject([first_page, NameObject("/Fit")]),
    )
    mail = parts.action("/URI", URI=parts.text_object("mailto:someone@example.com"))
    _link(writer, page, parts.rect(50, 620, 250, 635), mail)


def _add_annotations(writer: Any, page: Any) -> None:
    parts.annotation(
        writer, page, "/Text", parts.rect(300, 700, 320, 720), Contents=parts.text_object("A note")
    )
    parts.annotation(
        writer, page, "/Text", parts.rect(300, 650, 320, 670), Contents=parts.text_object("Another")
    )
    parts.annotation(
        writer,
        page,
        "/FreeText",
        parts.rect(300, 600, 400, 620),
        Contents=parts.text_object("Free text"),
        DA=parts.text_object("/Helv 10 Tf 0 g"),
    )
    parts.annotation(
        writer,
        page,
        "/Highlight",
        parts.rect(50, 750, 250, 765),
        QuadPoints=parts.rect(50, 765, 250, 765, 50, 750, 250, 750),
    )


def _add_form(writer: Any, page: Any, page_ref: Any, fields: list[Any]) -> None:
    from pypdf.generic import ArrayObject
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject

    for i, (name, kind) in enumerate((("name", "/Tx"), ("email", "/Tx"), ("agree", "/Btn"))):
        fields.append(
            parts.annotation(
                writer,
                page,
                "/Widget",
                parts.rect(300, 700 - 30 * i, 500, 720 - 30 * i),
                FT=parts.name_object(kind),
                T=parts.text_object(name),
                P=page_ref,
            )
        )
    # One field with two widgets (the same value shown twice): one field, two widgets.
    kids = ArrayObject()
    parent = DictionaryObject(
        {
            NameObject("/FT"): parts.name_object("/Tx"),
            NameObject("/T"): parts.text_object("address"),
            NameObject("/Kids"): kids,
        }
    )
    parent_ref = writer._add_object(parent)
    for i in range(2):
        kid = parts.annotation(
            writer,
            page,
            "/Widget",
            parts.rect(300, 580 - 30 * i, 500, 600 - 30 * i),
            Parent=parent_ref,
            P=page_ref,
        )
        kids.append(kid)
    fields.append(parent_ref)


def _add_page_script(writer: Any, page: Any) -> None:
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject

    page[NameObject("/AA")] = DictionaryObject(
        {
            NameObject("/O"): parts.action(
                "/JavaScript", JS=parts.text_object("console.println('page open');")
            )
        }
    )
    alert = parts.action("/JavaScript", JS=parts.text_object("app.alert('clicked');"))
    _link(writer, page, parts.rect(50, 700, 250, 715), alert)


def _add_page_launch(writer: Any, page: Any) -> None:
    _link(
        writer,
        page,
        parts.rect(50, 700, 250, 715),
        parts.action("/Launch", F=parts.text_object("calc.exe")),
    )


def make_feature_pdf(
    pages: Sequence[str],
    *,
    javascript: bool = False,
    launch: bool = False,
    attachment: bool = False,
    xfa: bool = False,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """A PDF with the given page kinds and document-level features.

    Page kinds (``PAGE_KINDS``): ``text``, ``blank``, ``image`` (no text: needs OCR),
    ``mixed``, ``rotated`` (90 degrees), ``letter``/``legal``/``landscape`` (text on that
    paper: Letter, Legal, A4 landscape), ``sensitive`` (every ``SEEDED`` value),
    ``decoys`` (the ``DECOYS`` look-alikes), ``links`` (two web links, an internal link,
    a mail link), ``annotated`` (two notes, a free text, a highlight), ``form`` (four
    fields, five widgets), ``script`` (a JavaScript page action and link), ``launch``
    (a link that launches a program), ``attachment`` (a file attachment annotation).

    Args:
        javascript: document JavaScript in the names tree and as the open action.
        launch: a Launch action run when the document opens.
        attachment: ``ATTACHMENT`` in the EmbeddedFiles name tree.
        xfa: an XFA form (in the AcroForm, with any ``form`` pages' fields).
        metadata: document information entries (default: fpdf2's producer and date).
    """
    from pypdf import PdfReader
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject
    from pypdf.generic import StreamObject

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_fpdf_pages(pages))))
    root = writer.root_object
    fields: list[Any] = []
    for index, kind in enumerate(pages):
        page = writer.pages[index]
        page_ref = page.indirect_reference
        if kind == "rotated":
            page.rotate(90)
        elif kind == "links":
            _add_links(writer, page, writer.pages[0].indirect_reference)
        elif kind == "annotated":
            _add_annotations(writer, page)
        elif kind == "form":
            _add_form(writer, page, page_ref, fields)
        elif kind == "script":
            _add_page_script(writer, page)
        elif kind == "launch":
            _add_page_launch(writer, page)
        elif kind == "attachment":
            parts.attach_to_page(writer, page)

    names = DictionaryObject()
    if javascript:
        script = writer._add_object(
            parts.action("/JavaScript", JS=parts.text_object("app.alert('opened');"))
        )
        names[NameObject("/JavaScript")] = DictionaryObject(
            {NameObject("/Names"): ArrayObject([parts.text_object("docpipe-test"), script])}
        )
    open_actions = []
    if javascript:
        open_actions.append(
            parts.action("/JavaScript", JS=parts.text_object("console.println('open');"))
        )
    if launch:
        open_actions.append(parts.action("/Launch", F=parts.text_object("cmd.exe")))
    if open_actions:
        # Chained: the checks must follow /Next to find the second action.
        first = open_actions[0]
        if len(open_actions) > 1:
            first[NameObject("/Next")] = open_actions[1]
        root[NameObject("/OpenAction")] = writer._add_object(first)
    if attachment:
        names[NameObject("/EmbeddedFiles")] = parts.embedded_files(writer, [ATTACHMENT])
    if names:
        root[NameObject("/Names")] = writer._add_object(names)
    if fields or xfa:
        acroform = DictionaryObject({NameObject("/Fields"): ArrayObject(fields)})
        if xfa:
            packet = StreamObject()
            packet.set_data(b'<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/"></xdp:xdp>')
            acroform[NameObject("/XFA")] = writer._add_object(packet)
        root[NameObject("/AcroForm")] = writer._add_object(acroform)
    if metadata is not None:
        writer.add_metadata(dict(metadata))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
