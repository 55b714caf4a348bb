"""A document's XMP metadata, as a parser process reads it (``pipeline.pdf.document_checks``):
what it claims the document conforms to, and the values people wrote into it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pypdf import PdfReader

_PDFAID = "http://www.aiim.org/pdfa/ns/id/"
_PDFUAID = "http://www.aiim.org/pdfua/ns/id/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
# The XML of the packet itself: attributes in these say how to read it, not what it says.
_XML = frozenset(
    {_RDF, "http://www.w3.org/XML/1998/namespace", "http://www.w3.org/2000/xmlns/", None}
)
# Values that software makes, not people: document and instance IDs with their history and
# derivation (their hex digits can pass for a card number), and the conformance claims.
_MACHINE_MADE = frozenset(
    {
        "http://ns.adobe.com/xap/1.0/mm/",
        "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
        "http://ns.adobe.com/xap/1.0/sType/ResourceRef#",
        _PDFAID,
        _PDFUAID,
    }
)
_NOT_VALUES = _XML | _MACHINE_MADE
# XML nodes visited at the most: a packet of a million empty elements is read in bounded time.
MAX_XMP_NODES = 10_000


@dataclass(frozen=True)
class Claims:
    """What the XMP metadata says the document conforms to; never checked against it."""

    pdfa_part: int | None = None
    pdfa_conformance: str | None = None
    pdfua_part: int | None = None


@dataclass(frozen=True)
class Xmp:
    """What a document's XMP metadata says: its claims, and its values in document order
    (the first ``max_values`` of them)."""

    claims: Claims = Claims()
    values: tuple[str, ...] = field(default_factory=tuple)


def read_xmp(reader: PdfReader, max_values: int) -> Xmp:
    """The document's XMP metadata, read once.

    Values are the text of every property (of any schema, custom ones too), in elements or
    attributes, but for those software makes (``_MACHINE_MADE``).

    Raises:
        Exception: the metadata stream cannot be read or parsed.
    """
    xmp = reader.xmp_metadata
    if xmp is None:
        return Xmp()
    return Xmp(_claims(xmp.rdf_root), _values(xmp.rdf_root, max_values))


def _values(rdf_root: Any, max_values: int) -> tuple[str, ...]:
    found: list[str] = []

    def add(text: str) -> None:
        value = text.strip()
        if value and len(found) < max_values:
            found.append(value)

    pending = list(reversed(rdf_root.childNodes))
    visited = 0
    while pending and len(found) < max_values and visited < MAX_XMP_NODES:
        node = pending.pop()
        visited += 1
        if node.nodeType in (node.TEXT_NODE, node.CDATA_SECTION_NODE):
            add(node.data)
        elif node.nodeType == node.ELEMENT_NODE and node.namespaceURI not in _MACHINE_MADE:
            for attribute in node.attributes.values():
                if attribute.namespaceURI not in _NOT_VALUES:
                    add(attribute.value)
            pending.extend(reversed(node.childNodes))
    return tuple(found)


def _claims(rdf_root: Any) -> Claims:
    """PDF/A part and conformance, PDF/UA part, as the XMP metadata claims them."""
    values: dict[str, str] = {}
    for description in rdf_root.getElementsByTagNameNS(_RDF, "Description"):
        for namespace, name, key in (
            (_PDFAID, "part", "pdfa_part"),
            (_PDFAID, "conformance", "pdfa_conformance"),
            (_PDFUAID, "part", "pdfua_part"),
        ):
            if key in values:
                continue
            if description.hasAttributeNS(namespace, name):
                values[key] = description.getAttributeNS(namespace, name)
                continue
            for element in description.getElementsByTagNameNS(namespace, name):
                text = "".join(
                    child.data for child in element.childNodes if child.nodeType == child.TEXT_NODE
                )
                values[key] = text
                break
    conformance = values.get("pdfa_conformance", "").strip().upper()[:4]
    return Claims(
        pdfa_part=_small_int(values.get("pdfa_part")),
        pdfa_conformance=conformance if re.fullmatch(r"[A-Z]{1,4}", conformance) else None,
        pdfua_part=_small_int(values.get("pdfua_part")),
    )


def _small_int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if re.fullmatch(r"\d{1,3}", text) else None
