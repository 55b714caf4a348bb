"""Fixtures of the activity tests (``test_activities_*.py``): moto's in-process S3 with
the ``PAGES``-page document, and no parser process left running after a test. The workflow
tests' time-skipping server is ``tests/pipeline/conftest.py``'s ``env``.

Test modules with an S3 or a document of their own define fixtures of the same names,
which take precedence there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.models import DocumentRef
from tests.support.activities import DOCS
from tests.support.activities import PAGES
from tests.support.activities import close_tracked_activities
from tests.support.activities import in_process_s3
from tests.support.pdfs import make_pdf


@pytest.fixture
def s3() -> Iterator[Any]:
    with in_process_s3() as client:
        yield client


@pytest.fixture
def document(s3: Any) -> DocumentRef:
    body = make_pdf(["text"] * 20 + ["blank"] + ["text"] * (PAGES - 21))
    put = s3.put_object(Bucket=DOCS, Key="big.pdf", Body=body)
    return DocumentRef(bucket=DOCS, key="big.pdf", version_id=put["VersionId"])


@pytest.fixture(autouse=True)
def _stop_parsers() -> Iterator[None]:
    yield
    close_tracked_activities()
