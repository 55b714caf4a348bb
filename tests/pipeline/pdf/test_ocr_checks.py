"""The page checks on what OCR reads: sensitive data as masked samples, blank sheets,
pictures with no words, scans lying sideways or upside down, and the reasons the report
gives them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pipeline.check.pool import PagePool
from pipeline.pdf import parser_process
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.ocr import OcrEngine
from pipeline.pdf.ocr import OcrOptions
from pipeline.pdf.ocr_page import DocumentRenderer
from pipeline.pdf.ocr_page import read_page
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.page_checks import check_pages
from pipeline.pdf.parser_process import ParserLimits
from pipeline.policy import VerdictPolicy
from tests.support.reports import report_of_results
from tests.support.scans import CLEAN
from tests.support.scans import LETTER
from tests.support.scans import LETTER_EMAIL
from tests.support.scans import LETTER_IBAN
from tests.support.scans import PageImage
from tests.support.scans import ScanStyle
from tests.support.scans import degrade
from tests.support.scans import encode
from tests.support.scans import image_pdf
from tests.support.scans import photo
from tests.support.scans import scan_images
from tests.support.scans import scanned_letter


def _dust() -> Image.Image:
    """A scan of a white sheet: paper and a little dust."""
    return degrade(Image.new("L", (1654, 2339), 250), ScanStyle(noise=0.002))


def _photo_page() -> PageImage:
    out = io.BytesIO()
    photo().save(out, format="JPEG")
    entries = b"/Width 1200 /Height 900 /ColorSpace /DeviceGray /BitsPerComponent 8 "
    return PageImage(entries + b"/Filter /DCTDecode", out.getvalue(), (0.0, 0.0, 595.28, 841.89))


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's letter and photo, a white sheet, and a text page."""
    directory = tmp_path_factory.mktemp("scans")
    (directory / "letter.pdf").write_bytes(scanned_letter())
    (directory / "sheets.pdf").write_bytes(image_pdf([[encode(_dust(), CLEAN)], [_photo_page()]]))
    return directory


def _read(path: Path, engine: OcrEngine, number: int = 1) -> PageResult:
    reader = open_pdf(path)
    (checked,) = check_pages(reader, number, number)
    renderer = DocumentRenderer(path)
    try:
        return read_page(
            reader.pages[number - 1],
            checked,
            renderer=renderer,
            engine=engine,
            options=OcrOptions(),
        )
    finally:
        renderer.close()


def test_sensitive_data_on_a_scan_is_found_and_only_masked_samples_leave(
    scans: Path, engine: OcrEngine
) -> None:
    result = _read(scans / "letter.pdf", engine)
    assert result.sensitive == {"email": 1, "iban": 1}
    assert result.sensitive_samples == {
        "email": ["c***@e***.com"],
        "iban": ["DE** **** **** **** **30 00"],
    }
    recorded = json.dumps(result.to_json())
    for raw in (LETTER_IBAN, LETTER_IBAN.replace(" ", ""), LETTER_EMAIL, "Lindqvist"):
        assert raw not in recorded
    assert (result.text_source, result.ocr_image, result.ocr_error) == ("ocr", "embedded", None)
    assert result.words > 50 and result.text_chars > 300
    assert result.ocr_confidence is not None and result.ocr_confidence > 70
    assert result.ocr_engine is not None and result.ocr_engine.startswith("tesseract 5.")
    assert result.ocr_data == "eng"
    assert result.image_only and not result.blank


def test_a_scanned_white_sheet_is_a_blank_page(scans: Path, engine: OcrEngine) -> None:
    result = _read(scans / "sheets.pdf", engine, 1)
    assert (result.blank, result.words, result.ocr_error) == (True, 0, None)


def test_a_photo_with_no_words_is_a_page_ocr_could_not_read(scans: Path, engine: OcrEngine) -> None:
    result = _read(scans / "sheets.pdf", engine, 2)
    assert (result.blank, result.words, result.ocr_error) == (False, 0, "no_text")


class _CountingEngine(OcrEngine):
    """Tesseract, counting how often it was asked which way is up."""

    def __init__(self) -> None:
        super().__init__(OcrOptions())
        self.orientation_asked = 0

    def upright_turn(self, image: Any) -> int:
        self.orientation_asked += 1
        return super().upright_turn(image)


@pytest.mark.parametrize(
    ("lying", "turned"),
    # Counter-clockwise on the scanner. Tesseract reads text lying 270 degrees that way
    # as it is; the other two it reads only turned back.
    [(90, 90), (180, 180), (270, None)],
    ids=["sideways", "upside-down", "sideways-the-other-way"],
)
def test_a_scan_lying_sideways_or_upside_down_is_read_upright(
    tmp_path: Path, engine: OcrEngine, lying: int, turned: int | None
) -> None:
    style = ScanStyle(lying_deg=lying)
    (letter,) = scan_images([LETTER], style, font_size=13)
    path = tmp_path / "lying.pdf"
    path.write_bytes(image_pdf([[encode(letter, style)]]))
    result = _read(path, engine)
    assert result.ocr_rotation == turned
    assert result.sensitive == {"email": 1, "iban": 1}
    # As well as the letter read upright (about 90); lying, it read at about 30.
    assert result.ocr_confidence is not None and result.ocr_confidence > 80


def test_only_a_page_read_with_low_confidence_is_checked_for_orientation(scans: Path) -> None:
    counting = _CountingEngine()
    try:
        letter = _read(scans / "letter.pdf", counting, 1)
        assert (letter.ocr_rotation, counting.orientation_asked) == (None, 0)
        # A photo reads no word: asked, Tesseract cannot tell, and it stays unread.
        unread = _read(scans / "letter.pdf", counting, 2)
        assert (unread.ocr_rotation, unread.ocr_error) == (None, "no_text")
        assert counting.orientation_asked == 1
    finally:
        counting.close()


def _report(path: Path, results: list[PageResult], **policy: Any) -> dict[str, Any]:
    return report_of_results(path, inspect_document(path), results, VerdictPolicy(**policy))


def test_the_report_says_what_ocr_found_and_could_not_read(scans: Path, engine: OcrEngine) -> None:
    path = scans / "letter.pdf"
    results = [_read(path, engine, 1), _read(path, engine, 2)]
    report = _report(path, results)
    assert report["verdict"]["verdict"] == "review"
    assert report["verdict"]["reasons"] == ["ocr_failed", "sensitive_data"]
    ocr = report["checks"]["ocr"]
    assert ocr["pages_read"] == {"count": 1, "pages": [1]}
    assert ocr["failed"] == {"count": 1, "pages": [2], "by_cause": {"no_text": 1}}
    assert ocr["not_read"] == {"count": 0, "pages": []}
    assert ocr["engine"].startswith("tesseract 5.") and ocr["data"] == "eng"
    assert ocr["mean_confidence"] == results[0].ocr_confidence
    # Above the policy's threshold, then below it.
    assert ocr["low_confidence"]["count"] == 0
    strict = _report(path, results, ocr_min_confidence=100)
    assert strict["checks"]["ocr"]["low_confidence"] == {"count": 1, "pages": [1]}
    assert "ocr_low_confidence" in strict["verdict"]["reasons"]
    assert strict["policy"]["ocr_min_confidence"] == 100


def test_image_only_pages_without_ocr_still_need_it(scans: Path) -> None:
    path = scans / "letter.pdf"
    report = _report(path, check_pages(open_pdf(path), 1, 2))
    assert report["verdict"]["reasons"] == ["needs_ocr"]
    assert report["checks"]["ocr"]["not_read"] == {"count": 2, "pages": [1, 2]}


def test_a_process_with_ocr_off_does_not_read_scans(
    scans: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parser_process, "_ocr", OcrOptions(enabled=False))
    path = str(scans / "letter.pdf")
    try:
        (first, _) = parser_process.check_range(path, 1, 2)
    finally:
        parser_process.forget(path)
    assert (first["text_source"], first["image_only"], first["words"]) == ("text", True, 0)


async def test_an_ocr_that_takes_too_long_leaves_the_page_checked_and_unread(
    scans: Path,
) -> None:
    # No OCR of a page takes under 10 ms (a clean A4 page takes about 0.4 s of a core).
    pool = PagePool(1, ParserLimits(ocr=OcrOptions(timeout_s=0.01)))
    try:
        (result,) = await pool.check_range(scans / "letter.pdf", 1, 1)
    finally:
        pool.shutdown()
    assert result["error_type"] is None
    assert (result["text_source"], result["ocr_error"]) == ("ocr", "timeout")
    assert (result["image_only"], result["paper_size"]) == (True, "A4")
    assert result["sensitive"] == {}


def test_a_picture_that_trips_the_readers_unforeseen_leaves_its_page_unread(
    scans: Path,
    engine: OcrEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def trips(*args: Any) -> Any:
        raise ValueError("could not convert string to float: '(Jane Doe)'")

    monkeypatch.setattr("pipeline.pdf.ocr_page.page_picture", trips)
    result = _read(scans / "letter.pdf", engine)
    assert (result.text_source, result.ocr_error) == ("ocr", "image_unreadable")
    assert "ValueError" in caplog.text and "Jane Doe" not in caplog.text
