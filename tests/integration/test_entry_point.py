"""How the program is started decides what its parser processes load: multiprocessing
imports the parent's main module again in each of them, forked from the fork server or
spawned (``app/__main__.py``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client

from infra.processes import ManagedProcess
from infra.processes import parser_pids
from infra.processes import stop_all
from infra.settings import Settings
from infra.settings_env import to_env
from tests.support.checks import start_check
from tests.support.crashes import upload
from tests.support.pdfs import make_pdf

# The Temporal SDK's native library: mapped into any process that imported the client.
_TEMPORAL_LIBRARY = "temporal_sdk_bridge"

_LAUNCHES = {
    "python -m app": [sys.executable, "-m", "app", "worker"],
    "the docpipe script": [str(Path(sys.executable).parent / "docpipe"), "worker"],
}


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.fixture(params=sorted(_LAUNCHES))
def worker(request: pytest.FixtureRequest, settings: Settings, tmp_path: Path) -> Iterator[int]:
    """A worker started one way the program is started; its PID."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCPIPE_")}
    process = ManagedProcess(
        "worker",
        _LAUNCHES[request.param],
        log_path=tmp_path / "worker.log",
        env={**env, **to_env(settings)},
    )
    yield process.pid
    stop_all([process], timeout=15)


async def test_a_workers_parser_processes_load_none_of_the_application(
    worker: int, settings: Settings, client: Client
) -> None:
    document = upload(settings, make_pdf(["one page of text"]), "entry-point.pdf")
    summary = await (await start_check(client, settings, document)).result()
    assert summary.page_count == 1

    parsers = parser_pids(worker)
    assert parsers, "the worker's parser processes outlive the check"
    assert _TEMPORAL_LIBRARY in _maps(worker)
    for pid in parsers:
        assert _TEMPORAL_LIBRARY not in _maps(pid), f"parser process {pid} loaded the client"
