"""The Temporal worker process: the workflow and its activities, and the parser pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from infra.clients import s3_client, temporal_client
from infra.settings import Settings
from pipeline.activities import DocumentActivities
from pipeline.pool import PagePool
from pipeline.workflows import DocumentCheckWorkflow

log = logging.getLogger(__name__)


def build_workers(
    settings: Settings, client: Client, pool: PagePool, *, pages_only: bool = False
) -> list[Worker]:
    """Workers for the settings' task queues.

    With a separate page task queue, a plain worker polls both queues and a
    ``pages_only`` worker polls only the page queue (the CPU-heavy pool to scale apart).
    """
    temporal, pipeline = settings.temporal, settings.pipeline
    activities = DocumentActivities(
        s3=s3_client(settings.s3),
        pool=pool,
        chunk_pages=pipeline.chunk_pages,
        heartbeat_timeout_s=pipeline.heartbeat_timeout_s,
    )
    shutdown = timedelta(seconds=pipeline.graceful_shutdown_s)
    page_queue = temporal.effective_page_task_queue
    workers = []
    if not pages_only:
        main_activities: list[Callable[..., Any]] = [activities.inspect, activities.finalize]
        if page_queue == temporal.task_queue:
            main_activities.append(activities.check_pages)
        workers.append(
            Worker(
                client,
                task_queue=temporal.task_queue,
                workflows=[DocumentCheckWorkflow],
                activities=main_activities,
                graceful_shutdown_timeout=shutdown,
            )
        )
    if pages_only or page_queue != temporal.task_queue:
        workers.append(
            Worker(
                client,
                task_queue=page_queue,
                activities=[activities.check_pages],
                # Each check_pages keeps the whole pool busy; more would only queue.
                max_concurrent_activities=2,
                graceful_shutdown_timeout=shutdown,
            )
        )
    return workers


async def run_worker(settings: Settings, stop: asyncio.Event, *, pages_only: bool = False) -> None:
    """Poll Temporal until ``stop`` is set, then shut down gracefully."""
    client = await temporal_client(settings.temporal)
    pool = PagePool(settings.pipeline.pool_size)
    workers = build_workers(settings, client, pool, pages_only=pages_only)
    log.info(
        "worker polling %s with %d parser processes",
        ", ".join(w.task_queue for w in workers),
        pool.size,
    )
    try:
        runs = [asyncio.create_task(w.run()) for w in workers]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*runs, stopped], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopped:
                task.result()
        log.info("worker stopping")
        await asyncio.gather(*(w.shutdown() for w in workers))
    finally:
        pool.shutdown()
        log.info("worker stopped")
