"""Fixtures of the full-stack tests beside the session's stack (``tests/conftest.py``)."""

from __future__ import annotations

import pytest
from temporalio.client import Client

from infra.clients import temporal_client
from infra.settings import Settings


@pytest.fixture
async def client(settings: Settings) -> Client:
    """A Temporal client of the session's stack."""
    return await temporal_client(settings.temporal, settings.codec)
