"""``docpipe worker`` and ``docpipe consume``: the long-running processes.

Both run until SIGTERM or Ctrl-C, which let them finish cleanly (activities given their
grace time, offsets committed). The worker and the intake are imported only when their
command runs: every command imports this module, and so does each parser process a worker
spawns (it imports the program's main module).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from collections.abc import Coroutine
from typing import Any

from app.command import Commands
from infra.settings import Settings

log = logging.getLogger("docpipe")


def add_commands(commands: Commands) -> None:
    """``docpipe worker`` and ``docpipe consume``."""
    worker = commands.add("worker", "run a Temporal worker (workflow, activities)", _run_worker)
    worker.add_argument(
        "--role",
        choices=["all", "pages", "workflows", "ocr"],
        default="all",
        help="poll the workflow and page queues (default), only page checks, all but page "
        "checks, or only the OCR queue (DOCPIPE_TEMPORAL_OCR_TASK_QUEUE)",
    )
    commands.add("consume", "consume upload events and start document checks", _run_intake)


def _run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(stop)``; SIGTERM or SIGINT sets ``stop`` for a graceful exit."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def _run_worker(args: argparse.Namespace, settings: Settings) -> int:
    """A worker process until SIGTERM or Ctrl-C."""
    from infra.telemetry import start_telemetry
    from workers.worker import WorkerStoppedError
    from workers.worker import run_worker

    telemetry = start_telemetry(settings.telemetry, "worker")
    try:
        _run_until_signal(
            lambda stop: run_worker(settings, stop, role=args.role, telemetry=telemetry)
        )
    except WorkerStoppedError as exc:
        # Said in the worker's log, where its operators look for why it stopped.
        log.error("%s", exc)
        return 1
    finally:
        telemetry.close()
    return 0


def _run_intake(args: argparse.Namespace, settings: Settings) -> int:
    """The Kafka intake until SIGTERM or Ctrl-C."""
    from consumers.intake import run_intake
    from infra.telemetry import start_telemetry

    telemetry = start_telemetry(settings.telemetry, "consume")
    try:
        _run_until_signal(lambda stop: run_intake(settings, stop, telemetry=telemetry))
    finally:
        telemetry.close()
    return 0
