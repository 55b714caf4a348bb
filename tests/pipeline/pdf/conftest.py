"""Fixtures the parser-process checks' tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.pdf.ocr import OcrEngine
from pipeline.pdf.ocr import OcrOptions


@pytest.fixture(scope="module")
def pdf_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A directory for the generated PDFs of one test module, named after it."""
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="module")
def engine() -> Iterator[OcrEngine]:
    """A Tesseract for the test module, as a parser process keeps one."""
    made = OcrEngine(OcrOptions())
    yield made
    made.close()
