"""Hostile and broken PDFs, built byte by byte (no binary blobs in the repository)."""

from __future__ import annotations

import io
import random
import zlib
from collections.abc import Mapping
from collections.abc import Sequence

from tests.support.pdfs import make_large_pdf
from tests.support.pdfs import make_pdf

_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def build_pdf(objects: Mapping[int, bytes], *, root: int = 1) -> bytes:
    """A PDF with exactly these objects (number -> body) and a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        if number in offsets:
            out += b"%010d 00000 n \n" % offsets[number]
        else:
            out += b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return bytes(out)


def stream(data: bytes, *, compress: bool = False) -> bytes:
    if compress:
        return flate_stream(zlib.compress(data, 9))
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def flate_stream(deflated: bytes) -> bytes:
    """A stream object whose data is ``deflated`` (a zlib stream), with its filter."""
    return (
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(deflated)
        + deflated
        + b"\nendstream"
    )


def one_page(
    content: bytes,
    *,
    resources: bytes = b"/Font << /F1 5 0 R >>",
    objects: Mapping[int, bytes] | None = None,
) -> bytes:
    """A one-page PDF: ``content`` is the content stream object (4), ``resources`` the
    page's resource entries, object 5 a Helvetica font, ``objects`` any further ones."""
    return build_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << " + resources + b" >> /Contents 4 0 R >>",
            4: content,
            5: _FONT,
            **(objects or {}),
        }
    )


def good(pages: int = 3) -> bytes:
    return make_pdf(["text"] * pages)


def truncated() -> bytes:
    data = good(8)
    return data[: len(data) // 2]


def garbled_middle() -> bytes:
    data = bytearray(good(8))
    noise = random.Random(7)
    third = len(data) // 3
    for i in range(third, 2 * third):
        data[i] = noise.randrange(256)
    return bytes(data)


def not_a_pdf() -> bytes:
    return b"PK\x03\x04 this is a zip archive, or pretends to be one\n" * 20


def empty() -> bytes:
    return b""


def flate_bomb(decompressed_mb: int = 200) -> bytes:
    """A page whose content stream inflates from a few hundred KB to ``decompressed_mb``."""
    return one_page(flate_stream(deflated_repeat(b" ", decompressed_mb * 1024 * 1024)))


def deflated_repeat(byte: bytes, total: int, block_size: int = 1 << 20) -> bytes:
    """The zlib stream of ``total`` copies of ``byte``, made without deflating them all.

    One block of ``block_size`` is deflated and fully flushed twice: after a full flush
    the compressor starts over, so the second output stands for every further block.
    The stream ends with the deflated rest and the checksum of the whole. 600 MB: 0.2 s
    of CPU instead of 4.3 s (``zlib.compress``), and 2% larger.
    """
    block = byte * block_size
    count, rest = divmod(total, block_size)
    if count < 2:
        return zlib.compress(byte * total, 9)
    deflate = zlib.compressobj(9)
    first = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    again = deflate.compress(block) + deflate.flush(zlib.Z_FULL_FLUSH)
    raw_tail = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    end = raw_tail.compress(byte * rest) + raw_tail.flush()
    checksum = 1
    for _ in range(count):
        checksum = zlib.adler32(block, checksum)
    checksum = zlib.adler32(byte * rest, checksum)
    return first + again * (count - 1) + end + checksum.to_bytes(4, "big")


def many_operators(count: int = 950_000) -> bytes:
    """A page with hundreds of thousands of text-showing operators: by default, about
    20 s of pypdf's text extraction (about 3 s for each 150,000 on a machine that checks a
    plain page in 2 ms), and just under pypdf's limit of 2,000,000 tokens a stream."""
    body = b"BT /F1 1 Tf " + b"(x) Tj " * count + b"ET"
    return one_page(stream(body, compress=True))


def nested_arrays(depth: int = 100_000) -> bytes:
    """A page whose content stream holds arrays nested ``depth`` deep."""
    return one_page(stream(b"[" * depth + b"]" * depth + b" pop", compress=True))


def self_referencing_tree() -> bytes:
    """A page tree whose /Kids include the tree node itself."""
    return build_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Count 2 /Kids [3 0 R 2 0 R] >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
            4: stream(b"BT /F1 12 Tf 72 720 Td (hello) Tj ET"),
        }
    )


def overstated_page_count(declared: int = 1_000_000) -> bytes:
    """A page tree that declares far more pages than it has (two)."""
    return build_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Count %d /Kids [3 0 R 5 0 R] >>" % declared,
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 6 0 R >> >> /Contents 4 0 R >>",
            4: stream(b"BT /F1 12 Tf 72 720 Td (first page) Tj ET"),
            5: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 6 0 R >> >> /Contents 7 0 R >>",
            6: _FONT,
            7: stream(b"BT /F1 12 Tf 72 720 Td (second page) Tj ET"),
        }
    )


def with_slow_page(pages: int, slow_page: int, operators: int = 400_000) -> bytes:
    """A ``pages``-page plain document whose page ``slow_page`` takes seconds to check
    (:func:`many_operators`; about 5 s for 400,000 operators on a machine that checks a
    plain page in 2 ms)."""
    from pypdf import PdfReader
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(make_large_pdf(pages - 1))))
    writer.insert_page(PdfReader(io.BytesIO(many_operators(operators))).pages[0], slow_page - 1)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def slow_to_read(texts: Sequence[str | None], operators: int = 160_000) -> bytes:
    """A PDF with a page for each of ``texts`` (ASCII) that shows it; a None page is slow to
    read and holds no text: those share one content stream of ``operators`` operators that
    show empty strings, under 1 MB decoded and a few KB in the file (about 1.5 s of pypdf's
    text extraction a page for 160,000 on a machine that checks a plain page in 2 ms)."""
    page_numbers = range(10, 10 + len(texts))
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Count %d /Kids [%s] >>"
        % (len(texts), b" ".join(b"%d 0 R" % number for number in page_numbers)),
        3: _FONT,
        4: stream(b"BT /F1 1 Tf " + b"() Tj " * operators + b"ET", compress=True),
    }
    for index, (number, text) in enumerate(zip(page_numbers, texts, strict=True)):
        content = 4
        if text is not None:
            content = 1000 + index
            objects[content] = stream(b"BT /F1 12 Tf 72 720 Td (%s) Tj ET" % text.encode())
        objects[number] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content
        )
    return build_pdf(objects)


def looping_outline(items: int = 3) -> bytes:
    """A one-page PDF whose outline of ``items`` bookmarks loops: the last one's ``/Next``
    is the first, and the first's ``/First`` is the outline itself."""
    first = 10
    objects: dict[int, bytes] = {
        6: b"<< /Type /Outlines /First %d 0 R /Count %d >>" % (first, items),
    }
    for index in range(items):
        following = first + (index + 1) % items
        kids = b" /First 6 0 R" if index == 0 else b""
        objects[first + index] = b"<< /Title (bookmark %d) /Parent 6 0 R /Next %d 0 R%s >>" % (
            index,
            following,
            kids,
        )
    return build_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R /Outlines 6 0 R >>",
            2: b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            **objects,
        }
    )


def slow_to_draw(lines: int = 300_000) -> bytes:
    """A page of hundreds of thousands of crossing lines: quick to parse, long to draw."""
    body = b"0.1 w " + b"0 0 m 595 842 l 595 0 l 0 842 l S " * lines
    return one_page(stream(body, compress=True))


def page_of_size(width_pt: float, height_pt: float, *, user_unit: float = 1.0) -> bytes:
    """A one-page PDF whose page is ``width_pt`` x ``height_pt`` (times ``user_unit``)."""
    return build_pdf(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /UserUnit %g "
            b"/Resources << >> /Contents 4 0 R >>" % (width_pt, height_pt, user_unit),
            4: stream(b"0 0 m 10 10 l S"),
        }
    )
