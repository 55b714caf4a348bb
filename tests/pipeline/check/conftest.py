"""Fixtures of the activity tests (``test_activities_*.py``): moto's in-process S3 with
the ``PAGES``-page document, and no parser process left running after a test; and of the
workflow tests (``test_workflow*.py``): a time-skipping server per module.

Test modules with an S3 or a document of their own define fixtures of the same names,
which take precedence there.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from pipeline import search_attributes as sa
from pipeline.models import DocumentRef
from tests.support.activities import DOCS, PAGES, close_tracked_activities, in_process_s3
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server with docpipe's search attributes, one per test module."""
    server = Path(sys.executable).parent / "temporal-test-server"
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server)
    ) as started:
        await started.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace="default",
                search_attributes={
                    key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
                    for key in sa.ALL
                },
            )
        )
        yield started
