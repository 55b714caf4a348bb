"""OCR of an image-only page: its picture read, and the page's text checks run on the text.

Runs in a parser process on pages whose check found images and no text layer (the pages
that were reported ``needs_ocr``). The text read is counted and searched for sensitive
data exactly as a text layer is (``pipeline.pdf.sensitive``: counts and masked samples),
and then dropped: only the page result leaves the process.

A page read with a low confidence may lie sideways or upside down: Tesseract's orientation
detection says how far to turn it, and the page is read again turned; the better of the two
reads stands (``ocr_rotation`` says when it was the turned one). Upright pages, read well,
pay nothing for this.

A page OCR reads no word from is one of two things: an empty sheet (almost no dark
pixels: a blank page, as a blank page of a text document is) or a picture (a photo, a
drawing, handwriting Tesseract cannot read), which is ``ocr_failed`` with the cause
``no_text``: its words, if it has any, were not checked.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from pypdf import PageObject

from pipeline.pdf.ocr import OcrEngine
from pipeline.pdf.ocr import OcrError
from pipeline.pdf.ocr import OcrOptions
from pipeline.pdf.ocr import OcrText
from pipeline.pdf.ocr_image import page_picture
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.page_checks import sensitive_on
from pipeline.pdf.page_checks import text_counts

_log = logging.getLogger(__name__)

OCR = "ocr"
NO_TEXT = "no_text"
# A picture with no word and fewer dark pixels than this share is an empty sheet (a scan
# of white paper, with some dust).
BLANK_INK_SHARE = 0.005
# Under this mean word confidence a page is checked for orientation: an upright scan reads
# at about 80-90, one lying sideways or upside down at about 30.
TURN_BELOW_CONFIDENCE = 70
_DARK = 128


class DocumentRenderer:
    """Renders the pages of one PDF file with pdfium, opening it on first use.

    Args:
        path: the file (the spooled document, or its repaired copy).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._document: Any = None

    def render(self, index: int, dpi: float) -> Any:
        """Page ``index`` (0-based) at ``dpi``, as a grayscale PIL image."""
        if self._document is None:
            import pypdfium2

            self._document = pypdfium2.PdfDocument(str(self.path), password="")
        page = self._document[index]
        try:
            bitmap = page.render(scale=dpi / 72, grayscale=True)
            return bitmap.to_pil().convert("L")
        finally:
            page.close()

    def close(self) -> None:
        """Close the file (the spooled document may be removed)."""
        if self._document is not None:
            self._document.close()
            self._document = None


def ink_share(image: Any) -> float:
    """The share of a grayscale picture's pixels that are dark."""
    histogram = image.histogram()
    total = sum(histogram)
    return sum(histogram[:_DARK]) / total if total else 0.0


def unread(result: PageResult, cause: str) -> PageResult:
    """An image-only page OCR could not read, and why (``ocr_failed`` in the report)."""
    return dataclasses.replace(result, text_source=OCR, ocr_error=cause)


def read_page(
    page: PageObject,
    result: PageResult,
    *,
    renderer: DocumentRenderer,
    engine: OcrEngine,
    options: OcrOptions,
) -> PageResult:
    """``result`` (an image-only page's) with the checks of the text OCR reads from it.

    Args:
        page: the page ``result`` is of.
        result: its check, which found images and no text layer.
        renderer: renders pages of its document, when its picture is not one image.
        engine: this process's Tesseract.
        options: resolution and pixel budget.
    """
    try:
        picture = page_picture(page, result.page - 1, renderer.render, options)
        read, rotation = read_upright(engine, picture.image)
    except OcrError as exc:
        return unread(result, exc.cause)
    except MemoryError:
        return unread(result, "out_of_memory")
    except Exception as exc:
        # A picture whose drawing or data trips the readers (pypdf, Pillow, pdfium) in a
        # way not foreseen: this page is unread, not the range of pages it came with.
        # The type only: the message may quote the document.
        _log.warning("page %d: its picture could not be read: %s", result.page, type(exc).__name__)
        return unread(result, "image_unreadable")
    text_chars, words = text_counts(read.text)
    sensitive = sensitive_on(page, read.text)
    empty_sheet = words == 0 and ink_share(picture.image) < BLANK_INK_SHARE
    return dataclasses.replace(
        result,
        text_source=OCR,
        text_chars=text_chars,
        words=words,
        blank=empty_sheet,
        sensitive=sensitive.counts,
        sensitive_samples=sensitive.samples,
        ocr_confidence=round(read.confidence, 1),
        ocr_engine=read.engine,
        ocr_data=read.data,
        ocr_image=picture.source,
        ocr_rotation=rotation,
        ocr_error=NO_TEXT if words == 0 and not empty_sheet else None,
    )


def read_upright(engine: OcrEngine, image: Any) -> tuple[OcrText, int | None]:
    """What OCR reads from ``image``, and the clockwise turn it was read at (None: as it is).

    A read under :data:`TURN_BELOW_CONFIDENCE` is tried again turned upright, if Tesseract
    can tell which way is up; the turned read stands only if it reads better.
    """
    read = engine.read(image)
    if read.confidence >= TURN_BELOW_CONFIDENCE:
        return read, None
    turn = engine.upright_turn(image)
    if not turn:
        return read, None
    turned = engine.read(image.rotate(-turn, expand=True))
    if turned.confidence <= read.confidence:
        return read, None
    return turned, turn
