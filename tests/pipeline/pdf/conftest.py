"""Fixtures the parser-process checks' tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.pdf.ocr import OcrEngine
from pipeline.pdf.ocr import OcrOptions
from tests.support.feature_pdfs import METADATA
from tests.support.feature_pdfs import PAGE_KINDS
from tests.support.feature_pdfs import make_feature_pdf


@pytest.fixture(scope="module")
def pdf_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A directory for the generated PDFs of one test module, named after it."""
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])


@pytest.fixture(scope="module")
def everything(pdf_dir: Path) -> Path:
    """A document with a page of every kind (``PAGE_KINDS``, in order) and every
    document feature (``tests.support.feature_pdfs``)."""
    path = pdf_dir / "everything.pdf"
    path.write_bytes(
        make_feature_pdf(
            list(PAGE_KINDS),
            javascript=True,
            launch=True,
            attachment=True,
            xfa=True,
            metadata=METADATA,
        )
    )
    return path


@pytest.fixture(scope="module")
def engine() -> Iterator[OcrEngine]:
    """A Tesseract for the test module, as a parser process keeps one."""
    made = OcrEngine(OcrOptions())
    yield made
    made.close()
