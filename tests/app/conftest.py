"""Fixtures the review page's tests share: the page over the module's ``review_loop``, and
a client that keeps its cookies."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.review_pages import MemoryReviewLoop
from tests.support.review_pages import browser_like_session
from tests.support.review_pages import review_page


@pytest.fixture
async def url(review_loop: MemoryReviewLoop) -> AsyncIterator[str]:
    """The review page on loopback, serving the test module's ``review_loop``."""
    async with review_page(review_loop) as url:
        yield url


@pytest.fixture
async def client(url: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with browser_like_session() as client:
        yield client
