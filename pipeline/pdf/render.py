"""What runs inside the page renderer's process: one page of a PDF to a PNG image.

pdfium is C code with no time limit of its own, and a hostile page can ask it for an
image of any size or for millions of drawing operations. So pages are rendered in a
process of their own (started and watched by ``app.page_images``), bounded three ways:
its address space (``RenderLimits.memory_mb``), a pixel budget checked here before any
bitmap is allocated, and wall time (the parent kills the process when a page takes too
long). The process gets the document's bytes and hands back the PNG's: nothing of the
document is written to disk.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

from pipeline.pdf.bounds import bind_to_parent
from pipeline.pdf.bounds import limit_memory

# An image narrower than this shows nothing a reviewer can read.
MIN_WIDTH_PX = 100


@dataclass(frozen=True, kw_only=True)
class RenderLimits:
    """Bounds of the page renderer.

    Attributes:
        seconds: wall time one page may take before its process is killed.
        memory_mb: address-space limit of the render process.
        max_pixels: the largest image rendered; a larger page is drawn smaller.
        width_px: the width pages are drawn at, within ``max_pixels``.
        max_document_bytes: documents larger than this are not rendered at all.
    """

    seconds: float = 15.0
    memory_mb: int = 1024
    max_pixels: int = 4_000_000
    width_px: int = 1000
    max_document_bytes: int = 100_000_000


class RenderRefusedError(ValueError):
    """The page cannot be shown within the limits (or is not there); the message says why
    for the reviewer."""


def init_render_process(parent_pid: int, memory_mb: int) -> None:
    """Process initializer: never outlive the server that started us, and cap memory."""
    bind_to_parent(parent_pid)
    limit_memory(memory_mb)


def pid() -> int:
    """This process's PID (for tests that watch it being replaced)."""
    return os.getpid()


# The turns pdfium draws a page at, clockwise.
_TURNS = (0, 90, 180, 270)


def render_scale(width_pt: float, height_pt: float, limits: RenderLimits) -> float:
    """The scale (pixels per point) a page of this size is drawn at.

    ``limits.width_px`` wide, made smaller if that would exceed the pixel budget.

    Raises:
        RenderRefusedError: the page has no area, or fits the budget only as a sliver.
    """
    if not (width_pt > 0 and height_pt > 0 and math.isfinite(width_pt * height_pt)):
        raise RenderRefusedError(f"the page has no drawable size ({width_pt} x {height_pt} pt)")
    scale = min(limits.width_px / width_pt, math.sqrt(limits.max_pixels / (width_pt * height_pt)))
    if width_pt * scale < MIN_WIDTH_PX:
        raise RenderRefusedError(
            f"the page ({width_pt:.0f} x {height_pt:.0f} pt) fits the pixel budget of "
            f"{limits.max_pixels} only {width_pt * scale:.0f} px wide"
        )
    return scale


def render_page(pdf: bytes, page_number: int, limits: RenderLimits, turn: int = 0) -> bytes:
    """Runs in the render process: page ``page_number`` (1-based) of ``pdf`` as PNG bytes,
    turned ``turn`` degrees clockwise (0, 90, 180 or 270: a scan that lies sideways or
    upside down, shown upright).

    Raises:
        RenderRefusedError: not a PDF pdfium can open, no such page, or a page that does
            not fit the pixel budget.
    """
    import pypdfium2 as pdfium

    if len(pdf) > limits.max_document_bytes:
        raise RenderRefusedError(
            f"the document ({len(pdf)} bytes) is larger than {limits.max_document_bytes}"
        )
    try:
        document = pdfium.PdfDocument(pdf)
    except pdfium.PdfiumError as exc:
        raise RenderRefusedError(f"pdfium cannot open the document: {exc}") from None
    try:
        if not 1 <= page_number <= len(document):
            raise RenderRefusedError(f"the document has no page {page_number}")
        page = document[page_number - 1]
        try:
            width_pt, height_pt = page.get_size()
            bitmap = page.render(
                scale=render_scale(width_pt, height_pt, limits),
                rotation=turn if turn in _TURNS else 0,
            )
            try:
                image = bitmap.to_pil()
                out = io.BytesIO()
                image.save(out, format="PNG", optimize=False)
                return out.getvalue()
            finally:
                bitmap.close()
        finally:
            page.close()
    finally:
        document.close()
