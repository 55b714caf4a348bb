"""The Temporal worker process: the workflow and its activities."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from collections.abc import Callable
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import Protocol

from temporalio.client import Client
from temporalio.worker import ResourceBasedSlotConfig
from temporalio.worker import Worker
from temporalio.worker import WorkerTuner

from infra.clients import kafka_kwargs
from infra.clients import s3_client
from infra.clients import temporal_client_waiting
from infra.logs import parser_logging
from infra.settings import Settings
from infra.settings import SettingsError
from pipeline.check.activities import DocumentActivities
from pipeline.check.decision_writer import DecisionWriter
from pipeline.check.metrics import PipelineMetrics
from pipeline.check.pool import PagePool
from pipeline.check.progress import ProgressReporter
from pipeline.check.publish import ResultPublisher
from pipeline.check.review_gauges import watch_review_queue
from pipeline.check.spool import Spooler
from pipeline.check.spool import sweep_stale_spools
from pipeline.check.takeover import TakeoverActivities
from pipeline.check.workflow import DocumentCheckWorkflow
from pipeline.models import CheckPlan
from pipeline.pdf.ocr import OcrOptions
from pipeline.pdf.parser_process import ParserLimits
from pipeline.recheck.activities import RecheckActivities
from pipeline.recheck.workflow import RecheckWorkflow

if TYPE_CHECKING:
    from infra.telemetry import Telemetry

log = logging.getLogger(__name__)

# What a worker process polls: the workflows and page checks, only page checks, all but
# page checks, or only the page checks of the OCR queue.
Role = Literal["all", "pages", "workflows", "ocr"]


def result_publisher(settings: Settings, metrics: PipelineMetrics | None = None) -> ResultPublisher:
    """The results-event publisher of one worker process (its producer starts on first use)."""
    return ResultPublisher(
        topic=settings.kafka.results_topic,
        producer_kwargs=kafka_kwargs(settings.kafka),
        metrics=metrics,
    )


def document_activities(
    settings: Settings,
    *,
    client: Client | None = None,
    metrics: PipelineMetrics | None = None,
    role: Role = "all",
    publisher: ResultPublisher | None = None,
) -> DocumentActivities:
    """The activities of one worker process, with its parser processes (not yet started).

    ``client`` lets page checking signal its progress; ``metrics`` records the worker's;
    ``role`` is what the worker polls (only a worker that checks pages as well as
    inspecting keeps inspected documents for their page checks); ``publisher`` sends the
    results events of the documents ``check_document`` sees through.
    """
    pipeline = settings.pipeline
    s3 = s3_client(settings.s3)
    pool = PagePool(
        pipeline.pool_size,
        ParserLimits(
            page_seconds=pipeline.page_timeout_s,
            inspect_seconds=pipeline.inspect_timeout_s,
            memory_mb=pipeline.parser_memory_mb,
            max_stream_bytes=pipeline.max_stream_bytes,
            ocr=OcrOptions(
                enabled=settings.ocr.enabled,
                languages=settings.ocr.languages,
                dpi=settings.ocr.dpi,
                max_pixels=settings.ocr.max_pixels,
                timeout_s=pipeline.ocr_timeout_s,
            ),
        ),
        logging_setup=functools.partial(parser_logging, settings.telemetry.log_format),
    )
    return DocumentActivities(
        s3=s3,
        pool=pool,
        spooler=Spooler(
            s3, directory=pipeline.spool_dir or None, shelve=role == "all", forget=pool.forget
        ),
        plan=CheckPlan(
            chunk_pages=pipeline.chunk_pages,
            heartbeat_timeout_s=pipeline.heartbeat_timeout_s,
            policy=settings.policy.verdict_policy(),
            review=settings.review.review_policy(),
        ),
        max_document_bytes=pipeline.max_document_bytes,
        progress=ProgressReporter(client, pipeline.progress_interval_s),
        metrics=metrics,
        publisher=publisher,
    )


def build_workers(
    settings: Settings,
    client: Client,
    activities: DocumentActivities,
    *,
    role: Role = "all",
    publisher: ResultPublisher | None = None,
) -> list[Worker]:
    """Workers for the settings' task queues.

    Page checks have their own task queue so that their concurrency is limited apart from
    the light work. Role ``all`` polls both queues; in production, ``pages`` workers (the
    CPU-heavy pool) and ``workflows`` workers can be scaled apart. Role ``ocr`` polls only
    the OCR queue (``DOCPIPE_TEMPORAL_OCR_TASK_QUEUE``), where checks that have one send
    their chunks that need OCR; no other role polls it.
    ``publisher`` sends the results events (default: a new one; its owner closes it).

    Raises:
        SettingsError: role ``ocr`` without an OCR queue.
    """
    temporal, pipeline = settings.temporal, settings.pipeline
    shutdown = timedelta(seconds=pipeline.graceful_shutdown_s)
    # Heartbeat details reach the server this promptly, not only every 0.8 x the timeout.
    throttle = timedelta(seconds=pipeline.heartbeat_throttle_s)
    if role == "ocr":
        return [
            Worker(
                client,
                task_queue=ocr_task_queue(settings),
                activities=[activities.check_pages],
                **page_check_slots(settings),
                graceful_shutdown_timeout=shutdown,
                max_heartbeat_throttle_interval=throttle,
            )
        ]
    publisher = publisher or result_publisher(settings, activities.metrics)
    page_queue = temporal.effective_page_task_queue
    workers = []
    if role != "pages":
        # Bulk re-checks run beside the checks they start (docpipe recheck).
        rechecks = RecheckActivities(client, activities.s3)
        takeover = TakeoverActivities(client)
        decisions = DecisionWriter(s3=activities.s3, metrics=activities.metrics)
        main_activities: list[Callable[..., Any]] = [
            activities.check_document,
            # Checks started before check_document existed still inspect first.
            activities.inspect,
            activities.finalize,
            publisher.publish_result,
            publisher.publish_review,
            decisions.write_decision,
            rechecks.list_matches,
            takeover.supersede_waiting,
            rechecks.compare_page,
            rechecks.write_diff,
        ]
        if page_queue == temporal.task_queue:
            main_activities.append(activities.check_pages)
        workers.append(
            Worker(
                client,
                task_queue=temporal.task_queue,
                workflows=[DocumentCheckWorkflow, RecheckWorkflow],
                activities=main_activities,
                graceful_shutdown_timeout=shutdown,
                max_heartbeat_throttle_interval=throttle,
            )
        )
    if role != "workflows" and (role == "pages" or page_queue != temporal.task_queue):
        workers.append(
            Worker(
                client,
                task_queue=page_queue,
                activities=[activities.check_pages],
                **page_check_slots(settings),
                graceful_shutdown_timeout=shutdown,
                max_heartbeat_throttle_interval=throttle,
            )
        )
    return workers


def ocr_task_queue(settings: Settings) -> str:
    """The OCR queue a ``--role ocr`` worker polls.

    Raises:
        SettingsError: none is set: no check would ever send work there.
    """
    queue = settings.temporal.ocr_task_queue
    if not queue:
        raise SettingsError(
            "a worker with role ocr polls DOCPIPE_TEMPORAL_OCR_TASK_QUEUE, which is not set "
            "(set it alike where checks start, so that they send their scanned chunks there)"
        )
    return queue


# Page checks at once when the setting leaves it to the machine: at least two (one can
# download or list while the other parses), more while CPU and memory stay below these
# shares, never more than this many per core (each check shares the parser processes).
PAGE_CHECKS_AT_LEAST = 2
PAGE_CHECKS_PER_CORE = 2
TARGET_CPU_USAGE = 0.9
TARGET_MEMORY_USAGE = 0.8


def page_check_slots(settings: Settings) -> dict[str, Any]:
    """``Worker`` options bounding the page checks one worker process runs at once:
    ``DOCPIPE_PIPELINE_MAX_CONCURRENT_CHECKS`` when set, else as CPU and memory allow
    (Temporal's resource-based slot supplier)."""
    fixed = settings.pipeline.max_concurrent_checks
    if fixed:
        return {"max_concurrent_activities": fixed}
    cores = os.cpu_count() or 1
    return {
        "tuner": WorkerTuner.create_resource_based(
            target_memory_usage=TARGET_MEMORY_USAGE,
            target_cpu_usage=TARGET_CPU_USAGE,
            activity_config=ResourceBasedSlotConfig(
                minimum_slots=PAGE_CHECKS_AT_LEAST,
                maximum_slots=max(PAGE_CHECKS_AT_LEAST, PAGE_CHECKS_PER_CORE * cores),
                # A new check loads the cores only after its download: look before the next.
                ramp_throttle=timedelta(seconds=1),
            ),
        )
    }


class WorkerStoppedError(RuntimeError):
    """A part of the worker process stopped on its own: the process stops whole, so that
    its supervisor starts it again instead of leaving it half alive."""


class _Part(Protocol):
    @property
    def task_queue(self) -> str: ...

    async def run(self) -> None: ...

    async def shutdown(self) -> None: ...


async def run_parts(parts: Sequence[_Part], stop: asyncio.Event) -> None:
    """Run every part until ``stop`` is set or one of them stops; then shut the others
    down gracefully.

    Raises:
        WorkerStoppedError: a part stopped on its own (its error, if any, is the cause).
    """
    runs = {asyncio.create_task(part.run()): part for part in parts}
    stopped = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([*runs, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    ended = [task for task in runs if task in done]
    for task in ended:
        error = task.exception()
        log.error("the worker for %s stopped: %r", runs[task].task_queue, error)
    log.info("worker stopping")
    await asyncio.gather(
        *(part.shutdown() for task, part in runs.items() if task not in ended),
        return_exceptions=True,
    )
    await asyncio.gather(*runs, return_exceptions=True)
    if ended:
        first = ended[0]
        raise WorkerStoppedError(
            f"the worker for {runs[first].task_queue} stopped on its own; the others were shut "
            "down, and the process stops for its supervisor to start it again"
        ) from first.exception()


async def run_worker(
    settings: Settings,
    stop: asyncio.Event,
    *,
    role: Role = "all",
    telemetry: Telemetry | None = None,
) -> None:
    """Poll Temporal until ``stop`` is set, then shut down gracefully. Started before
    Temporal, it waits for it with backoff.

    ``telemetry``: where metrics go and what the Temporal client needs for tracing.

    Raises:
        SettingsError: role ``ocr`` without an OCR queue.
        WorkerStoppedError: one of its task-queue workers stopped on its own.
    """
    if role == "ocr":
        ocr_task_queue(settings)
    for stale in sweep_stale_spools(settings.pipeline.spool_dir or None):
        log.info("removed %s, left by a worker that was killed", stale.name)
    client = await temporal_client_waiting(
        settings.temporal, settings.codec, stop, **(telemetry.client_options() if telemetry else {})
    )
    if client is None:
        return
    metrics = PipelineMetrics(telemetry.registry) if telemetry else None
    publisher = result_publisher(settings, metrics)
    activities = document_activities(
        settings, client=client, metrics=metrics, role=role, publisher=publisher
    )
    workers = build_workers(settings, client, activities, role=role, publisher=publisher)
    gauges: asyncio.Task[None] | None = None
    try:
        # Parser processes take a moment to start: start them before taking work.
        pids = await activities.pool.warm()
        log.info(
            "worker polling %s with %d parser processes (pids %s)",
            ", ".join(w.task_queue for w in workers),
            len(pids),
            ", ".join(map(str, pids)),
        )
        if metrics is not None and role != "pages":
            gauges = asyncio.create_task(
                watch_review_queue(client, metrics, settings.review.metrics_interval_s)
            )
        await run_parts(workers, stop)
    finally:
        if gauges is not None:
            gauges.cancel()
        await publisher.close()
        await asyncio.to_thread(activities.close)
        log.info("worker stopped")
