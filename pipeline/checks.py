"""Pure document and page checks: a PDF in, plain results out.

Nothing here knows about Temporal, S3 or Kafka, so every check is testable on a local file.
Results never carry document text: only counts and facts.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pypdf import PageObject, PdfReader
from pypdf.errors import FileNotDecryptedError

# pypdf logs every recoverable oddity of a broken file at WARNING; they are recorded as
# page errors where they matter.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# A content stream shorter than this (without whitespace) paints nothing worth seeing.
_BLANK_CONTENT_BYTES = 16
_PDF_MAGIC = b"%PDF-"


@dataclass(frozen=True)
class PageResult:
    """The checks of one page. ``page`` is 1-based, as people count pages."""

    page: int
    text_chars: int = 0
    image_count: int = 0
    width_pt: float = 0.0
    height_pt: float = 0.0
    rotation: int = 0
    blank: bool = False
    image_only: bool = False
    error_type: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DocumentFacts:
    """Document-level facts; ``problem`` says why pages cannot be checked, if they cannot."""

    pdf_version: str | None
    page_count: int
    encrypted: bool
    problem: str | None = None
    problem_detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def open_pdf(path: Path) -> PdfReader:
    """Open a PDF, decrypting it with the empty password when that works.

    Raises:
        FileNotDecryptedError: the document needs a password.
        Exception: pypdf's errors for unreadable files (``PdfReadError`` and others).
    """
    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    return reader


def inspect_document(path: Path) -> DocumentFacts:
    """Document-level checks that decide whether pages can be checked at all."""
    with path.open("rb") as f:
        head = f.read(1024)
    if _PDF_MAGIC not in head:
        return DocumentFacts(None, 0, False, "not_pdf", "no %PDF- header in the first 1 KiB")
    version = head[head.index(_PDF_MAGIC) + 5 :][:3].decode("ascii", "replace")
    try:
        reader = PdfReader(path)
    except Exception as exc:
        return DocumentFacts(version, 0, False, "unreadable", _describe(exc))
    encrypted = reader.is_encrypted
    if encrypted:
        try:
            if not reader.decrypt(""):
                return DocumentFacts(version, 0, True, "encrypted", "needs a password")
        except Exception as exc:
            return DocumentFacts(version, 0, True, "encrypted", _describe(exc))
    try:
        page_count = len(reader.pages)
    except FileNotDecryptedError:
        return DocumentFacts(version, 0, True, "encrypted", "needs a password")
    except Exception as exc:
        return DocumentFacts(version, 0, encrypted, "unreadable", _describe(exc))
    if page_count == 0:
        return DocumentFacts(version, 0, encrypted, "unreadable", "the document has no pages")
    return DocumentFacts(version, page_count, encrypted)


def check_page(page: PageObject, number: int) -> PageResult:
    """Check one page. Errors are raised to the caller, which records them per page."""
    box = page.mediabox
    text = page.extract_text() or ""
    text_chars = sum(1 for ch in text if not ch.isspace())
    image_count = len(page.images)
    blank = text_chars == 0 and image_count == 0 and _paints_nothing(page)
    return PageResult(
        page=number,
        text_chars=text_chars,
        image_count=image_count,
        width_pt=round(float(box.width), 2),
        height_pt=round(float(box.height), 2),
        rotation=int(page.rotation) % 360,
        blank=blank,
        image_only=text_chars == 0 and image_count > 0,
    )


def _paints_nothing(page: PageObject) -> bool:
    contents = page.get_contents()
    if contents is None:
        return True
    data = contents.get_data()
    return len(bytes(data).translate(None, b" \t\r\n")) < _BLANK_CONTENT_BYTES


def check_pages(reader: PdfReader, first: int, last: int) -> list[PageResult]:
    """Check pages ``first``..``last`` (1-based, inclusive); a broken page gets an error."""
    results = []
    for number in range(first, last + 1):
        try:
            results.append(check_page(reader.pages[number - 1], number))
        except Exception as exc:
            results.append(
                PageResult(page=number, error_type=type(exc).__name__, error=_describe(exc))
            )
    return results


def _describe(exc: BaseException) -> str:
    # Messages from pypdf describe structure, not content; cap them all the same.
    return (str(exc) or type(exc).__name__)[:200]
