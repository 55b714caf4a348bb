"""One parser process of the pool, as a single-worker executor, and how it fails.

The slot shares numbers with its process (``pipeline.pdf.parser_process``): the page being
parsed, since when, the job the worker wants abandoned, and whether the page is being read
by OCR. The pool (``pipeline.check.pool``) watches them.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from pipeline.pdf import parser_process
from pipeline.pdf.parser_process import ABANDON
from pipeline.pdf.parser_process import PAGE
from pipeline.pdf.parser_process import PHASE
from pipeline.pdf.parser_process import PROGRESS_SLOTS
from pipeline.pdf.parser_process import READING
from pipeline.pdf.parser_process import SINCE
from pipeline.pdf.parser_process import ParserLimits
from pipeline.pdf.parser_process import ParserLogging


def kill_executor(executor: ProcessPoolExecutor) -> None:
    """Kill the processes of ``executor`` now (work in flight is abandoned), reap them, and
    free the executor's queues."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=5)
    # With its processes dead, this returns within milliseconds, once the executor's thread
    # has ended and let go of its queues: their named semaphores are then released. Left to
    # that thread, a process that exits right after (``os._exit``, as ``docpipe`` does) would
    # leave them to the resource tracker, which warns of leaked semaphores on stderr.
    executor.shutdown(wait=True, cancel_futures=True)


# What the fork server imports first, by name: importing it binds a process to its parent,
# which only the fork server may do.
_FORK_SERVER = "pipeline.pdf.fork_server"


def parser_context() -> (
    multiprocessing.context.SpawnContext | multiprocessing.context.ForkServerContext
):
    """How parser processes start: forked from a fork server that has loaded the parsing
    code (``pipeline.pdf.fork_server``) on Linux, spawned elsewhere. Never forked from the
    worker itself: fork is unsafe in a process that runs Temporal's threads."""
    if sys.platform != "linux":
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Read when the worker's fork server starts, at its first parser process.
    context.set_forkserver_preload([_FORK_SERVER])
    return context


class ParserSlot:
    """One parser process, as a single-worker executor (the process starts on first use)."""

    def __init__(self, owner_pid: int, limits: ParserLimits, logs: ParserLogging) -> None:
        context = parser_context()
        # Lock-free: a process killed mid-write must not leave a lock held.
        self.progress: Any = context.RawArray("q", PROGRESS_SLOTS)
        self.executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=context,
            initializer=parser_process.init_process,
            initargs=(owner_pid, self.progress, limits, logs),
        )

    def abandon(self, job: int) -> None:
        """Ask the process to stop ``job`` before its next page."""
        self.progress[ABANDON] = job

    def busy_with(self) -> tuple[int, float]:
        """(page being parsed or -1 when inspecting, seconds on it); (0, 0) when idle."""
        page, since = self.progress[PAGE], self.progress[SINCE]
        if not page:
            return 0, 0.0
        return page, (time.monotonic_ns() - since) / 1e9

    def reading(self) -> bool:
        """Whether the page it is on is being read by OCR (rather than parsed)."""
        return bool(self.progress[PAGE]) and self.progress[PHASE] == READING

    def pids(self) -> list[int]:
        return list(getattr(self.executor, "_processes", None) or {})

    def kill(self) -> None:
        kill_executor(self.executor)


class PageHung(Exception):
    """A parser process spent longer than its limit on one page (and was replaced)."""

    def __init__(self, page: int, seconds: float, reading: bool = False) -> None:
        super().__init__(f"page {page}: {seconds:.0f} s")
        self.page = page
        self.seconds = seconds
        # It was OCR that took too long.
        self.reading = reading


class ProcessDied(Exception):
    """A parser process died (and was replaced), on the page it names."""

    def __init__(self, page: int, reading: bool = False) -> None:
        super().__init__(f"page {page}")
        self.page = page
        # It died while OCR read the page.
        self.reading = reading
