"""Fixtures the parser-process checks' tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def pdf_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A directory for the generated PDFs of one test module, named after it."""
    return tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
