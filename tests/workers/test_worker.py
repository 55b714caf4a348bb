"""A worker process whose one part stops shuts the others down and stops whole."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workers.worker import WorkerStoppedError, run_parts

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal"
    async with await WorkflowEnvironment.start_local(dev_server_existing_path=str(server)) as env:
        yield env


@activity.defn
async def _nothing() -> None:
    return None


class _Failing:
    """A part that fails once running, as a task-queue worker does when its polling or
    the core gives up for good."""

    task_queue = "failing-part"

    def __init__(self) -> None:
        self.shut_down = False

    async def run(self) -> None:
        await asyncio.sleep(0.2)
        raise RuntimeError("Worker failed")

    async def shutdown(self) -> None:
        self.shut_down = True


async def test_a_part_that_fails_shuts_the_others_down_and_stops_the_worker(
    env: WorkflowEnvironment,
) -> None:
    healthy = Worker(env.client, task_queue=f"healthy-{uuid.uuid4()}", activities=[_nothing])
    failing = _Failing()
    with pytest.raises(WorkerStoppedError, match="failing-part stopped on its own") as error:
        await asyncio.wait_for(run_parts([healthy, failing], asyncio.Event()), 60)
    assert isinstance(error.value.__cause__, RuntimeError)
    # The healthy worker was shut down gracefully (its run returned), not left polling.
    assert healthy.is_shutdown
    assert not failing.shut_down, "a part that stopped is not asked to stop again"


async def test_a_stop_shuts_every_part_down_without_an_error(env: WorkflowEnvironment) -> None:
    parts = [
        Worker(env.client, task_queue=f"part-{n}-{uuid.uuid4()}", activities=[_nothing])
        for n in range(2)
    ]
    stop = asyncio.Event()
    running = asyncio.create_task(run_parts(parts, stop))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(running, 60)
    assert all(part.is_shutdown for part in parts)
