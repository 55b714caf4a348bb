"""Changes to a generated PDF that tests make: a form filled in, widgets taken off the
pages, a hidden field, an XFA form's data, XMP metadata, attached files, bookmarks."""

from __future__ import annotations

import io
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from tests.support import pdf_parts as parts
from tests.support.feature_pdfs import SEEDED

# A ``form`` page filled in: each field's value (the address field shows its one value in
# two widgets), and a comment with its popup, all holding sensitive values the page's
# text does not.
FILLED = {
    "name": "Jane Doe",
    "email": SEEDED["email"][0][0],
    "address": SEEDED["iban"][0][0],
}
COMMENT = f"Call back on {SEEDED['phone'][0][0]}"


def fill_in(pdf: bytes, values: Mapping[str, str], comment: str = "") -> bytes:
    """``pdf`` with ``values`` filled into its fields (by name, on the widget or the field
    it belongs to), its ``agree`` boxes ticked, and ``comment`` as a note with a popup
    on its first page."""
    from pypdf.generic import NameObject

    writer = _writer(pdf)
    for page in writer.pages:
        for reference in page.get("/Annots", []):
            field = _field(reference.get_object())
            name = str(field.get("/T", ""))
            if name in values:
                field[NameObject("/V")] = parts.text_object(values[name])
            elif name == "agree":
                field[NameObject("/V")] = parts.name_object("/Yes")
    if comment:
        page = writer.pages[0]
        note = parts.annotation(
            writer, page, "/Text", parts.rect(20, 20, 40, 40), Contents=parts.text_object(comment)
        )
        # A popup shows its note's text: the same words, found once.
        popup = parts.annotation(
            writer,
            page,
            "/Popup",
            parts.rect(40, 20, 200, 80),
            Parent=note,
            Contents=parts.text_object(comment),
        )
        note.get_object()[NameObject("/Popup")] = popup
    return _written(writer)


def with_xmp(pdf: bytes, packet: str) -> bytes:
    """``pdf`` with ``packet`` as its XMP metadata stream (the catalog's ``/Metadata``)."""
    from pypdf.generic import NameObject
    from pypdf.generic import StreamObject

    writer = _writer(pdf)
    metadata = StreamObject()
    metadata.set_data(packet.encode())
    metadata[NameObject("/Type")] = NameObject("/Metadata")
    metadata[NameObject("/Subtype")] = NameObject("/XML")
    writer.root_object[NameObject("/Metadata")] = writer._add_object(metadata)
    return _written(writer)


def with_attached(
    pdf: bytes,
    files: Sequence[tuple[str, bytes]],
    on_first_page: bytes | None = None,
    compressed: bool = False,
) -> bytes:
    """``pdf`` with ``files`` (name, contents) in its EmbeddedFiles name tree, and with
    ``on_first_page`` attached to its first page by a file attachment annotation; the
    files' streams Flate-compressed if ``compressed``."""
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject

    writer = _writer(pdf)
    if files:
        tree = parts.embedded_files(writer, files, compressed)
        names = DictionaryObject({NameObject("/EmbeddedFiles"): tree})
        writer.root_object[NameObject("/Names")] = writer._add_object(names)
    if on_first_page is not None:
        parts.attach_to_page(writer, writer.pages[0], on_first_page)
    return _written(writer)


def off_pages(pdf: bytes, widgets: Mapping[str, int]) -> bytes:
    """``pdf`` with the first ``widgets[name]`` widgets of each field ``name`` taken off its
    pages; the fields keep them, and their values."""
    from pypdf.generic import ArrayObject
    from pypdf.generic import NameObject

    writer = _writer(pdf)
    left = dict(widgets)
    for page in writer.pages:
        kept = ArrayObject()
        for reference in page.get("/Annots", []):
            name = str(_field(reference.get_object()).get("/T", ""))
            if left.get(name):
                left[name] -= 1
            else:
                kept.append(reference)
        page[NameObject("/Annots")] = kept
    return _written(writer)


def with_hidden_field(pdf: bytes, name: str, value: str) -> bytes:
    """``pdf`` with a text field ``name`` holding ``value`` and no widget: in the form, on
    no page, as a hidden field that a form's script fills."""
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject

    writer = _writer(pdf)
    hidden = DictionaryObject(
        {
            NameObject("/FT"): parts.name_object("/Tx"),
            NameObject("/T"): parts.text_object(name),
            NameObject("/V"): parts.text_object(value),
        }
    )
    _form(writer)["/Fields"].append(writer._add_object(hidden))
    return _written(writer)


def with_xfa(pdf: bytes, datasets: bytes, *, packets: bool = True) -> bytes:
    """``pdf`` with an XFA form whose ``datasets`` packet is ``datasets``: a packet of its
    own among a template's (``packets``), or inside one stream for the whole form."""
    from pypdf.generic import ArrayObject
    from pypdf.generic import NameObject
    from pypdf.generic import StreamObject

    template = b'<template xmlns="http://www.xfa.org/schema/xfa-template/3.3/"/>'
    writer = _writer(pdf)

    def stream(data: bytes) -> Any:
        packet = StreamObject()
        packet.set_data(data)
        return writer._add_object(packet)

    if packets:
        xfa = ArrayObject()
        for name, data in (("template", template), ("datasets", datasets)):
            xfa.extend([parts.text_object(name), stream(data)])
    else:
        xfa = stream(
            b'<xdp:xdp xmlns:xdp="http://ns.adobe.com/xdp/">%s%s</xdp:xdp>' % (template, datasets)
        )
    _form(writer)[NameObject("/XFA")] = xfa
    return _written(writer)


def with_bookmarks(pdf: bytes, titles: Sequence[str], *, nested: bool = True) -> bytes:
    """``pdf`` with a bookmark for each of ``titles``, all to the first page: each one
    nested in the one before (an outline of several levels), or side by side."""
    writer = _writer(pdf)
    parent = None
    for title in titles:
        added = writer.add_outline_item(title=title, page_number=0, parent=parent)
        parent = added if nested else None
    return _written(writer)


def _form(writer: Any) -> Any:
    """The document's AcroForm, made empty where it has none."""
    from pypdf.generic import ArrayObject
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject

    root = writer.root_object
    if "/AcroForm" not in root:
        form = DictionaryObject({NameObject("/Fields"): ArrayObject()})
        root[NameObject("/AcroForm")] = writer._add_object(form)
    return root["/AcroForm"].get_object()


def _writer(pdf: bytes) -> Any:
    from pypdf import PdfReader
    from pypdf import PdfWriter

    return PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))


def _written(writer: Any) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _field(widget: Any) -> Any:
    """The field a widget belongs to: its parent, or itself."""
    return widget["/Parent"].get_object() if "/Parent" in widget else widget
