"""The picture of an image-only page that OCR reads, chosen and bounded before decoding.

A scan is usually one image covering the page: that image is decoded as it is (pypdf and
Pillow, no rendering), when its encoding is a plain one (JPEG, Flate, CCITT fax; gray or
RGB; 8 bits, or 1 for fax; no mask, no decode array) and it stands upright. Everything
else (several images, a JBIG2, JPEG 2000, CMYK, 16-bit, indexed or masked image, a
rotated page) is rendered by pdfium (pypdfium2) at the configured resolution: pdfium
decodes all of these itself.

Each picture is sized from the image dictionary or from the page size before anything is
decoded: more pixels than the budget (or a side under ``MIN_SIDE_PX``) is an
``OcrError``, never an allocation. Every image drawn on a page that is rendered is held
to the same budget, since pdfium decodes each at full size.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pypdf import PageObject
from pypdf.generic import ArrayObject
from pypdf.generic import ContentStream
from pypdf.generic import DictionaryObject
from pypdf.generic import StreamObject

from pipeline.pdf.objects import as_dict
from pipeline.pdf.objects import resolve
from pipeline.pdf.ocr import OcrError
from pipeline.pdf.ocr import OcrOptions

EMBEDDED, RENDERED = "embedded", "rendered"
# Fewer pixels than this on a side holds no legible word (Tesseract refuses under 3).
MIN_SIDE_PX = 16
# An image covers the page when it spans this share of the page's area.
_COVERING_SHARE = 0.9
# Filters whose images are decoded here; pdfium renders the others (JBIG2, JPX, ...).
_PLAIN_FILTERS = ("/DCTDecode", "/FlateDecode", "/CCITTFaxDecode")
_PLAIN_SPACES = ("/DeviceGray", "/DeviceRGB")
_Matrix = tuple[float, float, float, float, float, float]

# Renders page ``index`` (0-based) at ``dpi`` as a grayscale PIL image.
PageRenderer = Callable[[int, float], Any]


@dataclass(frozen=True)
class PagePicture:
    """The picture OCR reads, and where it came from (``embedded`` or ``rendered``)."""

    image: Any
    source: str


def _multiply(first: _Matrix, second: _Matrix) -> _Matrix:
    a, b, c, d, e, f = first
    a2, b2, c2, d2, e2, f2 = second
    return (
        a * a2 + b * c2,
        a * b2 + b * d2,
        c * a2 + d * c2,
        c * b2 + d * d2,
        e * a2 + f * c2 + e2,
        e * b2 + f * d2 + f2,
    )


@dataclass(frozen=True)
class _Drawn:
    """An image XObject drawn on a page, and the matrix it was drawn with."""

    image: StreamObject
    matrix: _Matrix


def _drawn_images(page: PageObject) -> tuple[list[_Drawn], bool]:
    """The image XObjects the page's content draws, and whether it draws anything else
    that matters here (forms, inline images)."""
    resources = as_dict(page.get("/Resources"))
    xobjects = as_dict(resources.get("/XObject")) if resources is not None else None
    contents = page.get("/Contents")
    if contents is None or xobjects is None:
        return [], True
    contents = contents.get_object()
    if not isinstance(contents, (ArrayObject, StreamObject)):
        return [], True
    matrix: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
    saved: list[_Matrix] = []
    drawn: list[_Drawn] = []
    other = False
    for operands, operator in ContentStream(contents, page.pdf).operations:
        if operator == b"q":
            saved.append(matrix)
        elif operator == b"Q" and saved:
            matrix = saved.pop()
        elif operator == b"cm" and len(operands) == 6:
            given = _numbers(operands)
            if given is not None:  # other operands make no matrix: ignored, as viewers do
                matrix = _multiply(given, matrix)
        elif operator == b"Do" and operands:
            xobject = resolve(xobjects.get(str(operands[0])))
            if isinstance(xobject, StreamObject) and xobject.get("/Subtype") == "/Image":
                drawn.append(_Drawn(xobject, matrix))
            else:
                other = True
        elif operator == b"INLINE IMAGE":
            other = True
    return drawn, other


def _numbers(operands: list[Any]) -> _Matrix | None:
    """A ``cm`` operator's six operands as a matrix; None when one is not a finite number."""
    try:
        a, b, c, d, e, f = (float(value) for value in operands)
    except (TypeError, ValueError, OverflowError):
        return None
    matrix = (a, b, c, d, e, f)
    return matrix if all(map(math.isfinite, matrix)) else None


def _pixels(image: DictionaryObject) -> tuple[int, int]:
    width, height = resolve(image.get("/Width", 0)), resolve(image.get("/Height", 0))
    try:
        return int(width), int(height)
    except (TypeError, ValueError):
        return 0, 0


def _check_budget(width: int, height: int, options: OcrOptions, what: str) -> None:
    if width * height > options.max_pixels:
        raise OcrError(
            "too_many_pixels",
            f"{what} of {width}x{height} px is over the budget of {options.max_pixels} px",
        )
    if min(width, height) < MIN_SIDE_PX:
        raise OcrError("too_few_pixels", f"{what} of {width}x{height} px holds no legible text")


def _covers(drawn: _Drawn, page: PageObject) -> bool:
    """Upright (no rotation, no flip) and spanning most of the page."""
    a, b, c, d, _, _ = drawn.matrix
    box = page.mediabox
    area = float(box.width) * float(box.height)
    return b == 0 and c == 0 and a > 0 and d > 0 and area > 0 and a * d >= _COVERING_SHARE * area


def _plain(image: StreamObject) -> bool:
    """Encoded so that pypdf and Pillow decode it to what the page shows."""
    filters = resolve(image.get("/Filter"))
    if isinstance(filters, ArrayObject):
        filters = filters[0] if len(filters) == 1 else None
    bits = resolve(image.get("/BitsPerComponent"))
    fax = filters == "/CCITTFaxDecode"
    return (
        filters in _PLAIN_FILTERS
        and resolve(image.get("/ColorSpace")) in _PLAIN_SPACES
        and bits == (1 if fax else 8)
        and not any(name in image for name in ("/SMask", "/Mask", "/Decode", "/ImageMask"))
    )


def _decode(image: StreamObject, options: OcrOptions) -> Any:
    """The image, decoded as pypdf and Pillow do, in gray.

    A JPEG's own header is sized too before it is decoded: its dictionary may declare far
    fewer pixels than the data holds.
    """
    try:
        if resolve(image.get("/Filter")) == "/DCTDecode":
            from PIL import Image

            with Image.open(io.BytesIO(image.get_data())) as header:
                _check_budget(*header.size, options, "the image's JPEG data")
        picture = image.decode_as_image()
        return picture.convert("L")
    except OcrError:
        raise
    except Exception as exc:
        raise OcrError("image_unreadable", f"the page's image: {type(exc).__name__}") from None


def page_picture(
    page: PageObject, index: int, render: PageRenderer, options: OcrOptions
) -> PagePicture:
    """The picture of an image-only page that OCR reads.

    Args:
        page: the page (its images are sized from their dictionaries first).
        index: the page's 0-based index, for ``render``.
        render: renders a page of the same document with pdfium.
        options: the resolution and pixel budget.

    Raises:
        OcrError: the picture is over or under the budget, or cannot be decoded.
    """
    drawn, other = _drawn_images(page)
    for item in drawn:
        _check_budget(*_pixels(item.image), options, "an image")
    if (
        len(drawn) == 1
        and not other
        and int(page.rotation) % 360 == 0
        and _covers(drawn[0], page)
        and _plain(drawn[0].image)
    ):
        width, height = _pixels(drawn[0].image)
        picture = _decode(drawn[0].image, options)
        if picture.size != (width, height):
            raise OcrError("image_unreadable", "the image's size is not what it declares")
        return PagePicture(picture, EMBEDDED)
    box = page.mediabox
    dpi = float(options.dpi)
    width_in, height_in = abs(float(box.width)) / 72, abs(float(box.height)) / 72
    rendered = (round(width_in * dpi), round(height_in * dpi))
    # A page larger than the budget at this resolution is rendered at a lower one.
    if rendered[0] * rendered[1] > options.max_pixels:
        dpi = (options.max_pixels / (width_in * height_in)) ** 0.5
        rendered = (int(width_in * dpi), int(height_in * dpi))
    _check_budget(*rendered, options, "the rendered page")
    try:
        return PagePicture(render(index, dpi), RENDERED)
    except Exception as exc:
        raise OcrError("render_failed", f"pdfium: {type(exc).__name__}") from None
