"""Fixtures the pipeline's tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pipeline.check.pool import PagePool


@pytest.fixture
async def pool() -> AsyncIterator[PagePool]:
    """Two warm parser processes, shut down after the test."""
    made = PagePool(2)
    await made.warm()
    yield made
    made.shutdown()
