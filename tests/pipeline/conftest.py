"""Fixtures the pipeline's tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from pipeline.check.pool import PagePool
from tests.support.workflow_servers import time_skipping_environment


@pytest.fixture
async def pool() -> AsyncIterator[PagePool]:
    """Two warm parser processes, shut down after the test."""
    made = PagePool(2)
    await made.warm()
    yield made
    made.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server with docpipe's search attributes, one per test module (the
    workflow tests, ``test_workflow*.py`` and ``test_review_wait*.py``)."""
    async with time_skipping_environment() as started:
        yield started
