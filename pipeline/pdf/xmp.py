"""A document's XMP metadata, as a parser process reads it (``pipeline.pdf.document_checks``):
what it claims the document conforms to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pypdf import PdfReader

_PDFAID = "http://www.aiim.org/pdfa/ns/id/"
_PDFUAID = "http://www.aiim.org/pdfua/ns/id/"
_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


@dataclass(frozen=True)
class Claims:
    """What the XMP metadata says the document conforms to; never checked against it."""

    pdfa_part: int | None = None
    pdfa_conformance: str | None = None
    pdfua_part: int | None = None


def xmp_claims(reader: PdfReader) -> Claims:
    """PDF/A part and conformance, PDF/UA part, as the document's XMP metadata claims them.

    Raises:
        Exception: the metadata stream cannot be read or parsed.
    """
    xmp = reader.xmp_metadata
    if xmp is None:
        return Claims()
    values: dict[str, str] = {}
    for description in xmp.rdf_root.getElementsByTagNameNS(_RDF, "Description"):
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
