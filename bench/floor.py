"""The floor of ``bench/small.py``: a workflow of N no-op activities, run by a plain worker.

A module of its own, so that its worker runs the workflow in Temporal's sandbox, as
docpipe's worker runs its own (the sandbox imports a workflow's module afresh).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

FLOOR_QUEUE = "bench-floor"


@activity.defn(name="noop")
async def noop(step: int) -> int:
    """Does nothing: the activity's cost is the engine's alone."""
    return step


@workflow.defn(name="BenchFloor")
class FloorWorkflow:
    """``activities`` no-op activities one after the other, as docpipe's steps are."""

    @workflow.run
    async def run(self, activities: int) -> int:
        for step in range(activities):
            await workflow.execute_activity(noop, step, start_to_close_timeout=timedelta(minutes=1))
        return activities


async def floor_worker(address: str) -> None:
    """The floor's worker process, with the SDK's defaults (no payload codec: the floor is
    the engine's alone): polls until killed."""
    client = await Client.connect(address)
    worker = Worker(client, task_queue=FLOOR_QUEUE, workflows=[FloorWorkflow], activities=[noop])
    await worker.run()
