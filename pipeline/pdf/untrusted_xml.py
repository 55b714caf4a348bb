"""XML from an untrusted document (an XFA form's data, an attached office document's
parts), parsed as a parser process reads it.

The XML these formats hold has no DTD; one, with its entities, is refused rather than
expanded (billion laughs), before the parser sees it.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree

_DTD = re.compile(rb"<!DOCTYPE", re.IGNORECASE)


def parse_xml(data: bytes) -> ElementTree.Element | None:
    """The root element of ``data``, or None when it declares a DTD or does not parse
    (malformed, or in an encoding the parser does not know or cannot read)."""
    if _DTD.search(data):
        return None
    try:
        return ElementTree.fromstring(data)
    except Exception:
        # ParseError, and LookupError or ValueError for an encoding it cannot read.
        return None
