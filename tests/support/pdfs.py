"""Generate PDFs with known content: the demo samples and test documents.

Run ``python -m tests.support.pdfs`` to rewrite the committed demo samples. Needs the
dev extra (fpdf2).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from fpdf import FPDF
from fpdf.enums import EncryptionMethod

from app.demo import SAMPLES_DIR

SAMPLE_PASSWORD = "docpipe-demo"

TEXT = (
    "docpipe sample document. This paragraph is ordinary text so that every page has "
    "characters and words to count. "
)


def _png(width: int = 200, height: int = 120) -> bytes:
    from PIL import Image
    from PIL import ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i in range(0, width, 20):
        draw.rectangle([i, 0, i + 9, height], fill=(30, 60, 120))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def make_pdf(
    pages: Sequence[str],
    *,
    user_password: str | None = None,
    page_format: str = "A4",
) -> bytes:
    """A PDF whose pages are described by one word each.

    ``"text"``: a paragraph; ``"blank"``: nothing at all; ``"image"``: one image and no
    text (a scan that needs OCR); ``"mixed"``: text and an image; ``"rotated"``: text on
    a page rotated by 90 degrees.
    """
    pdf = FPDF(format=page_format)
    pdf.set_compression(True)
    pdf.set_font("helvetica", size=11)
    # Deterministic bytes: fixed creation date.
    pdf.set_creation_date(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    image = _png()
    for number, kind in enumerate(pages, start=1):
        pdf.add_page()
        if kind in ("text", "mixed", "rotated"):
            pdf.multi_cell(0, 6, f"Page {number}. " + TEXT * 3)
        if kind in ("image", "mixed"):
            pdf.image(io.BytesIO(image), x=20, y=60 if kind == "mixed" else 20, w=120)
    if user_password is not None:
        pdf.set_encryption(
            owner_password=user_password + "-owner",
            user_password=user_password,
            encryption_method=EncryptionMethod.AES_256,
        )
    data = bytes(pdf.output())
    rotated = [i for i, kind in enumerate(pages) if kind == "rotated"]
    if rotated and user_password is None:
        data = _rotate(data, rotated)
    return data


def _rotate(data: bytes, indexes: Sequence[int]) -> bytes:
    from pypdf import PdfReader
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    for index in indexes:
        writer.pages[index].rotate(90)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


SAMPLES: dict[str, dict[str, object]] = {
    "contract.pdf": {"pages": ["text"] * 6},
    "with-blank-page.pdf": {"pages": ["text", "blank", "text"]},
    # A scanned letter with a fake IBAN and e-mail address, and a photo with no words.
    "scanned.pdf": {"pages": ["scan", "photo"], "scanned": True},
    "protected.pdf": {"pages": ["text", "text"], "user_password": SAMPLE_PASSWORD},
    # Seeded e-mail addresses, phone numbers, IBANs, card numbers and an SSN (all fake).
    "invoice.pdf": {"pages": ["text", "sensitive"], "features": True},
}


def write_samples(directory: Path = SAMPLES_DIR) -> list[Path]:
    """Rewrite the committed demo samples (their content is known, so tests can rely on it)."""
    written = []
    for name, spec in SAMPLES.items():
        pages = spec["pages"]
        password = spec.get("user_password")
        assert isinstance(pages, list)
        assert password is None or isinstance(password, str)
        path = directory / name
        if spec.get("features"):
            from tests.support.feature_pdfs import make_feature_pdf

            path.write_bytes(make_feature_pdf(pages))
        elif spec.get("scanned"):
            from tests.support.scans import scanned_letter

            path.write_bytes(scanned_letter())
        else:
            path.write_bytes(make_pdf(pages, user_password=password))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_samples():
        print(f"wrote {path.name} ({path.stat().st_size} bytes)")


def make_large_pdf(page_count: int, *, lines_per_page: int = 20, path: Path | None = None) -> bytes:
    """A plain-text PDF of any size, written directly (fpdf2 takes ~7 ms a page).

    Every page has its own content stream with a page-specific text, as a real long
    document would, so parsing cost and memory grow with the page count like theirs do.
    Written to ``path`` as it goes when given (and then returns b"").
    """
    out: IO[bytes]
    out = path.open("wb") if path is not None else io.BytesIO()
    offsets: list[int] = []
    position = 0

    def emit(data: bytes) -> None:
        nonlocal position
        out.write(data)
        position += len(data)

    def obj(number: int, body: bytes) -> None:
        offsets.append(position)
        assert len(offsets) == number
        emit(b"%d 0 obj\n" % number + body + b"\nendobj\n")

    emit(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    first_page = 4
    kids = b" ".join(b"%d 0 R" % (first_page + 2 * i) for i in range(page_count))
    obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    obj(2, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (page_count, kids))
    obj(3, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i in range(page_count):
        page_obj = first_page + 2 * i
        lines = b"".join(
            b"(Page %d line %d: docpipe generated text for page checks.) Tj T*\n" % (i + 1, n)
            for n in range(lines_per_page)
        )
        stream = b"BT /F1 10 Tf 14 TL 56 780 Td\n" + lines + b"ET"
        obj(
            page_obj,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595.28 841.89] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (page_obj + 1),
        )
        obj(page_obj + 1, b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    xref = position
    emit(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
    for offset in offsets:
        emit(b"%010d 00000 n \n" % offset)
    size = len(offsets) + 1
    emit(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref))
    if path is not None:
        out.close()
        return b""
    assert isinstance(out, io.BytesIO)
    return out.getvalue()
