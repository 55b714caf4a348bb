"""A worker process whose one part stops shuts the others down and stops whole; what each
role polls."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import ResourceBasedSlotSupplier
from temporalio.worker import Worker

from infra.settings import PipelineSettings
from infra.settings import Settings
from infra.settings import SettingsError
from infra.settings import TemporalSettings
from workers.worker import PAGE_CHECKS_AT_LEAST
from workers.worker import WorkerStoppedError
from workers.worker import build_workers
from workers.worker import document_activities
from workers.worker import ocr_task_queue
from workers.worker import page_check_slots
from workers.worker import run_parts

pytestmark = pytest.mark.asyncio(loop_scope="module")


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
    dev_server: WorkflowEnvironment,
) -> None:
    healthy = Worker(dev_server.client, task_queue=f"healthy-{uuid.uuid4()}", activities=[_nothing])
    failing = _Failing()
    with pytest.raises(WorkerStoppedError, match="failing-part stopped on its own") as error:
        await asyncio.wait_for(run_parts([healthy, failing], asyncio.Event()), 60)
    assert isinstance(error.value.__cause__, RuntimeError)
    # The healthy worker was shut down gracefully (its run returned), not left polling.
    assert healthy.is_shutdown
    assert not failing.shut_down, "a part that stopped is not asked to stop again"


async def test_a_stop_shuts_every_part_down_without_an_error(
    dev_server: WorkflowEnvironment,
) -> None:
    parts = [
        Worker(dev_server.client, task_queue=f"part-{n}-{uuid.uuid4()}", activities=[_nothing])
        for n in range(2)
    ]
    stop = asyncio.Event()
    running = asyncio.create_task(run_parts(parts, stop))
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.wait_for(running, 60)
    assert all(part.is_shutdown for part in parts)


async def test_page_checks_at_once_follow_cpu_and_memory_unless_fixed() -> None:
    by_machine = page_check_slots(Settings())
    assert set(by_machine) == {"tuner"}
    supplier = by_machine["tuner"]._get_activity_task_slot_supplier()
    assert isinstance(supplier, ResourceBasedSlotSupplier)
    assert supplier.slot_config.minimum_slots == PAGE_CHECKS_AT_LEAST
    assert (supplier.slot_config.maximum_slots or 0) >= PAGE_CHECKS_AT_LEAST
    assert 0 < supplier.tuner_config.target_cpu_usage <= 1
    fixed = Settings(pipeline=PipelineSettings(max_concurrent_checks=3))
    assert page_check_slots(fixed) == {"max_concurrent_activities": 3}


async def test_an_ocr_worker_polls_the_ocr_queue_that_no_other_role_polls(
    dev_server: WorkflowEnvironment,
) -> None:
    polled: dict[str, set[str]] = {}
    for role in ("ocr", "all", "pages", "workflows"):
        # A client takes a queue's workers once: a queue of its own per role.
        queue = f"checks-{role}-{uuid.uuid4()}"
        settings = Settings(temporal=TemporalSettings(task_queue=queue, ocr_task_queue="scans"))
        activities = document_activities(settings)
        try:
            workers = build_workers(settings, dev_server.client, activities, role=role)
        finally:
            activities.close()
        polled[role] = {worker.task_queue.removeprefix(queue) or "main" for worker in workers}
    assert polled == {
        "ocr": {"scans"},
        "all": {"main", "-pages"},
        "pages": {"-pages"},
        "workflows": {"main"},
    }


async def test_an_ocr_worker_without_an_ocr_queue_is_refused() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_TEMPORAL_OCR_TASK_QUEUE"):
        ocr_task_queue(Settings())
    assert ocr_task_queue(Settings(temporal=TemporalSettings(ocr_task_queue="scans"))) == "scans"
