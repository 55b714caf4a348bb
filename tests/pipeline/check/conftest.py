"""Fixtures of the activity tests (``test_activities_*.py``): moto's in-process S3 with
the ``PAGES``-page document, and no parser process left running after a test; and of the
workflow tests (``test_workflow*.py``): a time-skipping server per module.

Test modules with an S3 or a document of their own define fixtures of the same names,
which take precedence there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from pipeline.models import DocumentRef
from tests.support.activities import DOCS, PAGES, close_tracked_activities, in_process_s3
from tests.support.pdfs import make_pdf
from tests.support.time_skipping import time_skipping_environment


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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server with docpipe's search attributes, one per test module."""
    async with time_skipping_environment() as started:
        yield started
