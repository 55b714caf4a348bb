"""Damaged PDFs, built from a good one byte by byte: the cases repair must recover.

Each builder names the damage and keeps the good document's pages, so a test knows the
page count a repair must find (``PAGES``) from the document it started from.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tests.support.pdfs import make_pdf

PAGES = 5


def good() -> bytes:
    return make_pdf(["text"] * PAGES)


def _xref_start(data: bytes) -> int:
    return data.rindex(b"\nxref") + 1


def broken_xref() -> bytes:
    """The cross-reference table cut off after a few entries, then a fresh trailer."""
    data = good()
    xref = _xref_start(data)
    root = re.search(rb"/Root (\d+) 0 R", data[xref:])
    assert root is not None
    trailer = b"\ntrailer\n<< /Size 4 /Root %s 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        root.group(1),
        xref,
    )
    return data[: xref + 60] + trailer


def missing_root() -> bytes:
    """The trailer has no /Root entry: the catalog is there, nothing points to it."""
    data = good()
    xref = _xref_start(data)
    tail = re.sub(rb"/Root \d+ 0 R", b"", data[xref:])
    assert b"/Root" not in tail
    return data[:xref] + tail


def truncated() -> bytes:
    """The last fifth of the file is gone: the cross-reference table and trailer with it."""
    data = good()
    return data[: len(data) * 4 // 5]


def junk_before_header(lines: int = 30) -> bytes:
    """Lines of junk (within the first KiB) before %PDF-: every offset is off.

    pypdf finds its way through most such files by itself; with 30 lines its search for
    the cross-reference table goes astray (the tests check that it does).
    """
    junk = b"%!PS junk line\n" * lines
    assert len(junk) < 1000
    return junk + good()


def complete_pages(data: bytes) -> int:
    """Page objects whose ``endobj`` survived in ``data``: what a repair can find."""
    objects = re.findall(rb"\d+ \d+ obj\b(.*?)\bendobj", data, flags=re.S)
    return sum(1 for body in objects if re.search(rb"/Type\s*/Page(?![a-zA-Z])", body))


DAMAGED: dict[str, Callable[[], bytes]] = {
    "broken-xref": broken_xref,
    "missing-root": missing_root,
    "truncated": truncated,
    "junk-before-header": junk_before_header,
}


def not_xmp_metadata() -> bytes:
    """Broken cross-references (so qpdf repairs it), and a /Metadata stream of XML that is
    not XMP: pikepdf logged a traceback for it when it updated the metadata on save."""
    from tests.support.hostile import build_pdf
    from tests.support.hostile import stream

    xml = b'<?xml version="1.0"?><notes><note>not XMP</note></notes>'
    data = build_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R /Metadata 6 0 R >>",
            2: b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
            4: stream(b"BT /F1 12 Tf 72 720 Td (metadata) Tj ET"),
            5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            6: b"<< /Type /Metadata /Subtype /XML " + stream(xml)[2:],
        }
    )
    return data[: _xref_start(data) + 60] + b"\ntrailer\n<< /Size 3 >>\n%%EOF\n"
