"""The data filled into a document's XFA form, as a parser process reads it for the
sensitive-data search.

An XFA form keeps what people filled in as XML, in the ``datasets`` packet of the
AcroForm's ``/XFA`` entry: no page shows it as the form is drawn in a PDF viewer without
XFA. A hybrid form keeps its values in AcroForm fields too; those are read with the
fields (``pipeline.pdf.form_values``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.etree import ElementTree

from pypdf.generic import ArrayObject

from pipeline.pdf.attachments import decoded
from pipeline.pdf.objects import resolve
from pipeline.pdf.untrusted_xml import parse_xml

_XFA_DATA = "{http://www.xfa.org/schema/xfa-data/1.0/}"
# XML elements visited at the most: a packet of a million empty elements is read in
# bounded time (its bytes are bounded as an attached file's, at 1 MB).
MAX_XFA_NODES = 10_000


def xfa_values(xfa: Any) -> list[str]:
    """The values of an XFA form's data (the ``data`` of its ``datasets`` packet), in
    document order, from the AcroForm's ``/XFA`` entry: one XML stream, or the packets as
    name and stream pairs. Empty when there is none, or it cannot be read (not a stream,
    over 1 MB decoded, not XML, or with a DTD)."""
    try:
        data = _datasets_xml(resolve(xfa))
    except Exception:
        return []
    root = None if data is None else parse_xml(data)
    if root is None:
        return []
    datasets = root if root.tag == f"{_XFA_DATA}datasets" else root.find(f".//{_XFA_DATA}datasets")
    form_data = None if datasets is None else datasets.find(f"{_XFA_DATA}data")
    return [] if form_data is None else list(_texts(form_data))


def _datasets_xml(xfa: Any) -> bytes | None:
    """The XML that holds the ``datasets`` packet: its own stream, or the whole form's."""
    if not isinstance(xfa, ArrayObject):
        return decoded(xfa) if xfa is not None else None
    for index in range(0, len(xfa) - 1, 2):
        if str(resolve(xfa[index])) == "datasets":
            return decoded(xfa[index + 1])
    return None


def _texts(form_data: ElementTree.Element) -> Iterator[str]:
    """The text in ``form_data``'s elements (a rich text value's too, between its tags)."""
    for visited, element in enumerate(form_data.iter()):
        if visited >= MAX_XFA_NODES:
            return
        # The tail of ``form_data`` itself is its parent's.
        for text in (element.text, element.tail if visited else None):
            if text and text.strip():
                yield text.strip()
