"""Generate PDFs with known content: the demo samples and test documents.

Run ``python -m infra.samples.generate`` to rewrite the committed demo samples. Needs the
dev extra (fpdf2).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import EncryptionMethod

SAMPLES_DIR = Path(__file__).parent
SAMPLE_PASSWORD = "docpipe-demo"

TEXT = (
    "docpipe sample document. This paragraph is ordinary text so that every page has "
    "characters and words to count. "
)


def _png(width: int = 200, height: int = 120) -> bytes:
    from PIL import Image, ImageDraw

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
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    for index in indexes:
        writer.pages[index].rotate(90)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


SAMPLES: dict[str, dict[str, object]] = {
    "contract.pdf": {"pages": ["text"] * 6},
    "with-blank-page.pdf": {"pages": ["text", "blank", "text"]},
    "scanned.pdf": {"pages": ["text", "image", "mixed"]},
    "protected.pdf": {"pages": ["text", "text"], "user_password": SAMPLE_PASSWORD},
}


def write_samples(directory: Path = SAMPLES_DIR) -> list[Path]:
    written = []
    for name, spec in SAMPLES.items():
        pages = spec["pages"]
        password = spec.get("user_password")
        assert isinstance(pages, list)
        assert password is None or isinstance(password, str)
        path = directory / name
        path.write_bytes(make_pdf(pages, user_password=password))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_samples():
        print(f"wrote {path.name} ({path.stat().st_size} bytes)")
