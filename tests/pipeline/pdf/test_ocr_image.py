"""Which picture OCR reads, and hostile images: each bounded and classified, none decoded
beyond the pixel budget."""

from __future__ import annotations

import io
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from PIL import ImageStat
from pypdf import PdfReader
from pypdf import PdfWriter

from pipeline.pdf.ocr import OcrError
from pipeline.pdf.ocr import OcrOptions
from pipeline.pdf.ocr_image import EMBEDDED
from pipeline.pdf.ocr_image import MIN_SIDE_PX
from pipeline.pdf.ocr_image import RENDERED
from pipeline.pdf.ocr_image import page_picture
from pipeline.pdf.ocr_page import DocumentRenderer
from tests.support.scans import A4_PT
from tests.support.scans import CLEAN
from tests.support.scans import FAX
from tests.support.scans import PageImage
from tests.support.scans import encode
from tests.support.scans import image_pdf
from tests.support.scans import scan_images

FULL_PAGE = (0.0, 0.0, *A4_PT)
OPTIONS = OcrOptions()


class _Renders:
    """A renderer that records what it was asked and renders nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []

    def __call__(self, index: int, dpi: float) -> Any:
        self.calls.append((index, dpi))
        return Image.new("L", (100, 100), 255)


def _page(pdf: bytes, tmp_path: Path, number: int = 1) -> tuple[Any, Path]:
    path = tmp_path / "scan.pdf"
    path.write_bytes(pdf)
    return PdfReader(path).pages[number - 1], path


def _gray(width: int, height: int, entries: bytes = b"") -> bytes:
    return b"/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 %s" % (
        width,
        height,
        entries,
    )


def _flate_gray(
    width: int, height: int, rect: tuple[float, float, float, float] = FULL_PAGE
) -> PageImage:
    data = zlib.compress(bytes([255]) * (width * height))
    return PageImage(_gray(width, height, b"/Filter /FlateDecode"), data, rect)


def _jpeg(image: Image.Image, mode: str = "L", **save: Any) -> bytes:
    out = io.BytesIO()
    image.convert(mode).save(out, format="JPEG", **save)
    return out.getvalue()


@pytest.fixture(scope="module")
def scan() -> Image.Image:
    (image,) = scan_images(["Invoice 2026-17\nPlease pay within thirty days."])
    return image


def test_one_image_covering_the_page_is_decoded_as_it_is(scan: Image.Image, tmp_path: Path) -> None:
    page, _ = _page(image_pdf([[encode(scan, CLEAN)]]), tmp_path)
    renders = _Renders()
    picture = page_picture(page, 0, renders, OPTIONS)
    assert (picture.source, picture.image.size, picture.image.mode) == (EMBEDDED, scan.size, "L")
    assert renders.calls == []


def test_a_ccitt_fax_is_decoded_as_it_is_black_on_white(scan: Image.Image, tmp_path: Path) -> None:
    page, _ = _page(image_pdf([[encode(scan, FAX)]]), tmp_path)
    picture = page_picture(page, 0, _Renders(), OPTIONS)
    assert picture.source == EMBEDDED
    assert ImageStat.Stat(picture.image).mean[0] > 200  # mostly white paper


def test_an_image_on_part_of_the_page_is_rendered_at_the_configured_dpi(tmp_path: Path) -> None:
    half = _flate_gray(400, 300, (50.0, 50.0, 300.0, 200.0))
    page, _ = _page(image_pdf([[half]]), tmp_path)
    renders = _Renders()
    picture = page_picture(page, 0, renders, OcrOptions(dpi=150))
    assert picture.source == RENDERED
    assert renders.calls == [(0, 150.0)]


def test_a_rotated_page_is_rendered_upright(scan: Image.Image, tmp_path: Path) -> None:
    page, _ = _page(image_pdf([[encode(scan, CLEAN)]]), tmp_path)
    page.rotate(90)
    renders = _Renders()
    assert page_picture(page, 0, renders, OPTIONS).source == RENDERED


# Encodings decoded by pdfium (rendered), each with real data pdfium draws.
def _cmyk_jpeg(scan: Image.Image) -> PageImage:
    entries = b"/Width %d /Height %d /ColorSpace /DeviceCMYK /BitsPerComponent 8 " % scan.size
    # Pillow writes Adobe's inverted CMYK, which PDF producers mark with a decode array.
    entries += b"/Decode [1 0 1 0 1 0 1 0] "
    return PageImage(entries + b"/Filter /DCTDecode", _jpeg(scan, "CMYK"), FULL_PAGE)


def _jpx(scan: Image.Image) -> PageImage:
    out = io.BytesIO()
    scan.resize((scan.width // 2, scan.height // 2)).save(out, format="JPEG2000")
    entries = b"/Width %d /Height %d /Filter /JPXDecode" % (scan.width // 2, scan.height // 2)
    return PageImage(entries, out.getvalue(), FULL_PAGE)


def _sixteen_bit(scan: Image.Image) -> PageImage:
    small = scan.resize((scan.width // 4, scan.height // 4))
    data = zlib.compress(b"".join(bytes([value, value]) for value in small.tobytes()))
    entries = b"/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 16 " % small.size
    return PageImage(entries + b"/Filter /FlateDecode", data, FULL_PAGE)


def _masked(scan: Image.Image) -> PageImage:
    entries = _gray(*scan.size, b"/Filter /DCTDecode /SMask 10000 0 R")
    return PageImage(entries, _jpeg(scan), FULL_PAGE)


def _stencil(scan: Image.Image) -> PageImage:
    fax = encode(scan, FAX)
    entries = fax.entries.replace(b"/ColorSpace /DeviceGray /BitsPerComponent 1", b"")
    return PageImage(entries + b" /ImageMask true", fax.data, FULL_PAGE)


_SOFT_MASK = b"<< /Type /XObject /Subtype /Image /Width 1 /Height 1 /ColorSpace /DeviceGray"
_SOFT_MASK += b" /BitsPerComponent 8 /Length 1 >>\nstream\n\xff\nendstream"


@pytest.mark.parametrize(
    "make", [_cmyk_jpeg, _jpx, _sixteen_bit, _masked, _stencil], ids=lambda f: f.__name__
)
def test_encodings_pdfium_decodes_are_rendered_and_read(
    make: Any, scan: Image.Image, tmp_path: Path
) -> None:
    pdf = image_pdf([[make(scan)]], extra={10000: _SOFT_MASK})
    page, path = _page(pdf, tmp_path)
    renderer = DocumentRenderer(path)
    try:
        picture = page_picture(page, 0, renderer.render, OcrOptions(dpi=72))
    finally:
        renderer.close()
    assert picture.source == RENDERED
    # The page was really drawn: some ink on paper, not an empty or black page.
    assert 100 < ImageStat.Stat(picture.image).mean[0] < 254.9


def test_a_jbig2_image_is_left_to_pdfium(tmp_path: Path) -> None:
    entries = _gray(2480, 3508, b"/Filter /JBIG2Decode").replace(b"/BitsPerComponent 8", b"")
    jbig2 = PageImage(entries + b" /BitsPerComponent 1", b"\x00" * 64, FULL_PAGE)
    page, _ = _page(image_pdf([[jbig2]]), tmp_path)
    renders = _Renders()
    assert page_picture(page, 0, renders, OPTIONS).source == RENDERED
    assert len(renders.calls) == 1


@pytest.mark.parametrize(
    ("width", "height", "cause"),
    [
        (30_000, 30_000, "too_many_pixels"),
        (0, 0, "too_few_pixels"),
        (1, 1, "too_few_pixels"),
        (MIN_SIDE_PX - 1, 3000, "too_few_pixels"),
    ],
)
def test_an_image_out_of_the_budget_is_refused_before_decoding(
    width: int, height: int, cause: str, tmp_path: Path
) -> None:
    # The data is a few bytes whatever the size declared: decoding would fail otherwise.
    image = PageImage(_gray(width, height, b"/Filter /FlateDecode"), b"x", FULL_PAGE)
    page, _ = _page(image_pdf([[image]]), tmp_path)
    renders = _Renders()
    with pytest.raises(OcrError) as raised:
        page_picture(page, 0, renders, OPTIONS)
    assert raised.value.cause == cause
    assert renders.calls == []


def test_a_jpeg_larger_than_its_dictionary_declares_is_refused_before_decoding(
    tmp_path: Path,
) -> None:
    data = _jpeg(Image.new("L", (2000, 2000), 255))
    image = PageImage(_gray(500, 500, b"/Filter /DCTDecode"), data, FULL_PAGE)
    page, _ = _page(image_pdf([[image]]), tmp_path)
    with pytest.raises(OcrError, match="too_many_pixels: the image's JPEG data"):
        page_picture(page, 0, _Renders(), OcrOptions(max_pixels=1_000_000))


def test_a_large_image_anywhere_on_a_rendered_page_is_refused(tmp_path: Path) -> None:
    small = PageImage(_gray(30_000, 30_000, b"/Filter /FlateDecode"), b"x", (0, 0, 10.0, 10.0))
    page, _ = _page(image_pdf([[_flate_gray(100, 100, (0, 0, 50, 50)), small]]), tmp_path)
    with pytest.raises(OcrError, match="too_many_pixels"):
        page_picture(page, 0, _Renders(), OPTIONS)


def test_a_huge_page_is_rendered_at_a_resolution_within_the_budget(tmp_path: Path) -> None:
    huge = _flate_gray(100, 100, (0, 0, 50, 50))
    page, _ = _page(image_pdf([[huge]], page_size=(14_400.0, 14_400.0)), tmp_path)
    renders = _Renders()
    page_picture(page, 0, renders, OcrOptions(max_pixels=4_000_000))
    ((_, dpi),) = renders.calls
    assert (14_400 / 72 * dpi) ** 2 <= 4_000_000
    assert dpi == pytest.approx(10.0, rel=0.01)


@pytest.mark.parametrize(
    ("filters", "data"),
    [
        (b"/Filter /DCTDecode", b"\xff\xd8\xff\xe0 not really a JPEG"),
        (b"/Filter /FlateDecode", b"not zlib at all"),
        (b"/Filter /FlateDecode", b""),
        (b"/Filter /FlateDecode", zlib.compress(b"\x80" * 1000)),  # far fewer bytes than pixels
    ],
    ids=["garbled-jpeg", "garbled-flate", "empty-stream", "short-data"],
)
def test_a_malformed_image_stream_is_an_unreadable_image(
    filters: bytes, data: bytes, tmp_path: Path
) -> None:
    image = PageImage(_gray(1000, 1400, filters), data, FULL_PAGE)
    page, _ = _page(image_pdf([[image]]), tmp_path)
    with pytest.raises(OcrError) as raised:
        page_picture(page, 0, _Renders(), OPTIONS)
    assert raised.value.cause == "image_unreadable"


def test_a_page_of_a_thousand_tiny_images_is_rendered_once_in_bounded_time(
    tmp_path: Path,
) -> None:
    tiles = [
        _flate_gray(MIN_SIDE_PX, MIN_SIDE_PX, (20.0 + 17 * (n % 32), 20.0 + 25 * (n // 32), 12, 12))
        for n in range(1000)
    ]
    page, path = _page(image_pdf([tiles]), tmp_path)
    renderer = DocumentRenderer(path)
    started = time.monotonic()
    try:
        picture = page_picture(page, 0, renderer.render, OPTIONS)
    finally:
        renderer.close()
    elapsed = time.monotonic() - started
    assert picture.source == RENDERED
    assert picture.image.size == (round(A4_PT[0] / 72 * 200), round(A4_PT[1] / 72 * 200))
    # Measured at about 0.3 s on a shared 2-core machine; far below the OCR timeout.
    assert elapsed < OPTIONS.timeout_s / 4


@pytest.mark.parametrize(
    "matrix", [b"/a /b /c /d /e /f", b"(1) 0 0 1 0 0", b"null 0 0 1 0 0", b"1e999 0 0 1 0 0"]
)
def test_a_drawing_matrix_that_is_not_six_numbers_is_ignored_as_viewers_do(
    matrix: bytes, scan: Image.Image, tmp_path: Path
) -> None:
    writer = PdfWriter(clone_from=io.BytesIO(image_pdf([[encode(scan, CLEAN)]])))
    page = writer.pages[0]
    contents = page.get_contents()  # a copy: put back below
    assert contents is not None
    contents.set_data(b"q " + matrix + b" cm\n" + contents.get_data() + b"\nQ")
    page.replace_contents(contents)
    path = tmp_path / "scan.pdf"
    writer.write(path)
    picture = page_picture(PdfReader(path).pages[0], 0, _Renders(), OPTIONS)
    assert (picture.source, picture.image.size) == (EMBEDDED, scan.size)
