"""Pages drawn as PNG within the pixel budget, or refused with a reason."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pipeline.pdf.render import RenderLimits
from pipeline.pdf.render import RenderRefusedError
from pipeline.pdf.render import render_page
from pipeline.pdf.render import render_scale
from tests.support.hostile import not_a_pdf
from tests.support.hostile import page_of_size
from tests.support.pdfs import make_pdf


def _size(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


def test_a_page_is_drawn_at_the_configured_width() -> None:
    png = render_page(make_pdf(["one", "two"]), 2, RenderLimits(width_px=600))
    width, height = _size(png)
    assert width == 600
    assert height > width


def test_a_page_is_drawn_turned_clockwise_as_asked() -> None:
    pdf = make_pdf(["one"])
    upright = _size(render_page(pdf, 1, RenderLimits(width_px=600)))
    for turn, size in ((90, upright[::-1]), (180, upright), (270, upright[::-1])):
        assert _size(render_page(pdf, 1, RenderLimits(width_px=600), turn)) == size
    # Only quarter turns: anything else is drawn as it is.
    assert _size(render_page(pdf, 1, RenderLimits(width_px=600), 45)) == upright


def test_a_huge_page_is_drawn_smaller_to_fit_the_pixel_budget() -> None:
    limits = RenderLimits(max_pixels=250_000, width_px=1000)
    png = render_page(page_of_size(14_400, 14_400, user_unit=50), 1, limits)
    width, height = _size(png)
    assert width * height <= limits.max_pixels
    assert width >= 100


def test_a_sliver_page_that_fits_the_budget_only_unreadably_is_refused() -> None:
    with pytest.raises(RenderRefusedError, match="pixel budget"):
        render_scale(10, 14_400_000, RenderLimits(max_pixels=1_000_000))


def test_a_page_without_area_is_refused() -> None:
    with pytest.raises(RenderRefusedError, match="no drawable size"):
        render_scale(0, 842, RenderLimits())


def test_a_page_beyond_the_last_is_refused() -> None:
    with pytest.raises(RenderRefusedError, match="no page 3"):
        render_page(make_pdf(["one", "two"]), 3, RenderLimits())


def test_bytes_that_are_not_a_pdf_are_refused() -> None:
    with pytest.raises(RenderRefusedError, match="cannot open"):
        render_page(not_a_pdf(), 1, RenderLimits())


def test_a_document_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(RenderRefusedError, match="larger than"):
        render_page(make_pdf(["one"]), 1, RenderLimits(max_document_bytes=100))
