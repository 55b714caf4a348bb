"""Polling helpers: wait for a condition with a deadline instead of sleeping."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle

from infra.settings import Settings, check_request
from infra.settings_env import to_env
from pipeline import starts
from pipeline.models import CheckSummary, DocumentRef

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], seconds: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)


async def async_wait_for(check: Callable[[], Awaitable[T | None]], seconds: float, what: str) -> T:
    """Async twin of :func:`wait_for`."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def start_check(
    client: Client,
    settings: Settings,
    document: DocumentRef,
    *,
    workflow_id: str | None = None,
    **request_fields: Any,
) -> WorkflowHandle[Any, CheckSummary]:
    """Start a document check the way the intake does (without Kafka); its handle.

    Args:
        workflow_id: default: the request's (the document's, its key hashed if the
            settings hash keys).
        request_fields: further ``CheckRequest`` fields (``max_attempts``, ...).
    """
    request = dataclasses.replace(check_request(settings, document), **request_fields)
    workflow_id = workflow_id or request.workflow_id
    started = await starts.start_check(
        client, request, workflow_id=workflow_id, task_queue=settings.temporal.task_queue
    )
    assert started, f"{workflow_id} ran before"
    return client.get_workflow_handle(workflow_id, result_type=CheckSummary)


def hashing_by_default(settings: Settings) -> Settings:
    """``settings`` with hashed object keys left to their default (on when encrypting);
    the test stack pins them off for readable IDs."""
    temporal = dataclasses.replace(settings.temporal, hash_object_keys=None)
    return dataclasses.replace(settings, temporal=temporal)


def docpipe_stack_command(command: str, state_dir: Path, ports: list[int]) -> list[str]:
    """``docpipe dev`` or ``docpipe demo`` as a child process, on the given five ports
    (Temporal, UI, Kafka, S3, codec server)."""
    return [
        sys.executable,
        "-m",
        "app.cli",
        command,
        "--state-dir",
        str(state_dir),
        "--temporal-port",
        str(ports[0]),
        "--ui-port",
        str(ports[1]),
        "--kafka-port",
        str(ports[2]),
        "--s3-port",
        str(ports[3]),
        "--codec-port",
        str(ports[4]),
    ]


def with_pipeline(settings: Settings, tmp_path: Path, **fields: Any) -> Settings:
    """``settings`` with these pipeline fields and a spool directory of this test's own
    (so that a test can assert nothing is left in it)."""
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    pipeline = dataclasses.replace(settings.pipeline, spool_dir=str(spool), **fields)
    return dataclasses.replace(settings, pipeline=pipeline)


def docpipe_cli(settings: Settings, *args: str, timeout_s: float = 60) -> str:
    """Run ``docpipe ARGS`` as a new process with ``settings`` (and no other DOCPIPE_*
    variables); assert it succeeded and return what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCPIPE_")}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**env, **to_env(settings)},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
