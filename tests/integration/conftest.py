"""Fixtures of the full-stack tests beside the session's stack (``tests/conftest.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from infra.clients import temporal_client
from infra.settings import KafkaSettings
from infra.settings import PipelineSettings
from infra.settings import Settings
from infra.settings import TemporalSettings
from infra.stack import EmbeddedStack
from infra.stack import StackConfig
from tests.conftest import StartComponent
from tests.support.settings import with_pipeline
from tests.support.settings import with_review


@pytest.fixture(scope="module")
def private_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    """A stack of the test module's own, for tests that stop one of its servers: the
    session's stack serves every other test."""
    # Readable workflow IDs, as on the session's stack (tests/conftest.py).
    base = Settings(
        kafka=KafkaSettings(session_timeout_ms=2000),
        temporal=TemporalSettings(hash_object_keys=False),
    )
    config = StackConfig.on_free_ports(tmp_path_factory.mktemp("outage-stack"))
    with EmbeddedStack(config, base) as running:
        yield running


@pytest.fixture
async def client(settings: Settings) -> Client:
    """A Temporal client of the session's stack."""
    return await temporal_client(settings.temporal, settings.codec)


@pytest.fixture
def default_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The stack's settings with docpipe's default pipeline settings (own spool dir)."""
    defaults = dataclasses.asdict(PipelineSettings())
    del defaults["spool_dir"]
    return with_pipeline(settings, tmp_path, **defaults)


@pytest.fixture
def reviewing(settings: Settings, start_component: StartComponent) -> Settings:
    """This test's settings with review verdicts waiting, and a worker running on them."""
    reviewing = with_review(settings)
    start_component(["worker"], reviewing)
    return reviewing
