"""The OCR engine of a parser process: its data found, one Tesseract reused, one thread."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from PIL import Image

from pipeline.pdf.ocr import OcrEngine
from pipeline.pdf.ocr import OcrError
from pipeline.pdf.ocr import OcrOptions
from pipeline.pdf.ocr import tessdata_dir
from tests.support.scans import CLEAN
from tests.support.scans import NOISY
from tests.support.scans import ScanStyle
from tests.support.scans import known_pages
from tests.support.scans import scan_images


@pytest.fixture(scope="module")
def page_text() -> str:
    return known_pages(1, lines=6)[0].text


def _recall(read: str, expected: str) -> float:
    seen = read.split()
    words = expected.split()
    return sum(1 for word in words if word in seen) / len(words)


def test_the_language_data_is_found_in_the_environment_it_was_installed_in() -> None:
    directory = tessdata_dir(("eng",))
    assert (directory / "eng.traineddata").is_file()
    assert directory == Path(sys.prefix) / "share" / "tessdata"


def test_missing_language_data_is_an_engine_error_that_names_it() -> None:
    with pytest.raises(OcrError) as raised:
        tessdata_dir(("eng", "xxx"))
    assert raised.value.cause == "engine_unavailable"
    assert "xxx" in str(raised.value)


def test_an_engine_without_its_data_cannot_read() -> None:
    with pytest.raises(OcrError, match="engine_unavailable"):
        OcrEngine(OcrOptions(languages=("xxx",))).read(Image.new("L", (64, 64), 255))


@pytest.mark.parametrize(("style", "least"), [(CLEAN, 0.97), (NOISY, 0.9)], ids=["clean", "noisy"])
def test_a_scanned_page_is_read_with_its_words_and_a_confidence(
    engine: OcrEngine, page_text: str, style: ScanStyle, least: float
) -> None:
    (image,) = scan_images([page_text], style)
    read = engine.read(image)
    assert _recall(read.text, page_text) >= least
    assert 60 < read.confidence <= 100
    assert read.engine.startswith("tesseract 5.")
    assert read.data == "eng"


def test_one_tesseract_is_created_and_reused_with_one_thread(engine: OcrEngine) -> None:
    engine.read(Image.new("L", (64, 64), 255))
    first = engine._api
    engine.read(Image.new("L", (64, 64), 255))
    assert engine._api is first is not None
    assert os.environ["OMP_THREAD_LIMIT"] == "1"


def test_a_picture_with_no_words_reads_as_empty_with_no_confidence(engine: OcrEngine) -> None:
    read = engine.read(Image.new("L", (800, 600), 255))
    assert (read.text.strip(), read.confidence) == ("", 0.0)
