"""A pool of parser processes that die with their parent.

pypdf is pure Python and holds the GIL, so pages are parsed in separate processes: the
worker's event loop only coordinates and its heartbeats are never late. A plain
``ProcessPoolExecutor``'s children outlive a killed parent; here each child asks the kernel
to kill it when its parent dies, and also watches the parent itself in case the parent died
before that request was made.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from pipeline.checks import DocumentFacts, check_pages, inspect_document, open_pdf

T = TypeVar("T")

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_reader_cache: dict[str, Any] = {}


def _die_with_parent(parent_pid: int) -> None:
    """Pool initializer: never outlive the worker process that started this one."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Ctrl-C reaches the whole process group; the parent decides when children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def check_range(path: str, first: int, last: int) -> list[dict[str, Any]]:
    """Runs in a pool process: check pages ``first``..``last`` of the spooled file."""
    reader = _reader_cache.get(path)
    if reader is None:
        _reader_cache.clear()
        reader = open_pdf(Path(path))
        _reader_cache[path] = reader
    return [result.to_json() for result in check_pages(reader, first, last)]


class PagePool:
    """Process pool for page checks; replaced transparently when a child dies.

    Args:
        size: number of parser processes; 0 means one per CPU core.
    """

    def __init__(self, size: int = 0) -> None:
        self.size = size or os.cpu_count() or 1
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.size,
                    # fork is unsafe in a process that runs Temporal's threads.
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_die_with_parent,
                    initargs=(os.getpid(),),
                )
            return self._executor

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    async def call(self, what: str, fn: Callable[..., T], *args: Any, attempts: int = 3) -> T:
        """Run ``fn(*args)`` in a pool process, on a fresh pool if a child dies meanwhile.

        Args:
            what: names the work in logs, e.g. ``"pages 51-100"``.
        """
        loop = asyncio.get_running_loop()
        for attempt in range(1, attempts + 1):
            executor = self._get()
            try:
                return await loop.run_in_executor(executor, fn, *args)
            except BrokenProcessPool:
                log.warning(
                    "parser process died during %s (try %d of %d); replacing the pool",
                    what,
                    attempt,
                    attempts,
                )
                self._replace(executor)
        raise BrokenProcessPool(f"{what}: parser process died {attempts} times")

    async def check_range(self, path: Path, first: int, last: int) -> list[dict[str, Any]]:
        """Check pages ``first``..``last`` of a spooled file in a pool process."""
        return await self.call(f"pages {first}-{last}", check_range, str(path), first, last)

    async def inspect(self, path: Path) -> DocumentFacts:
        """Document-level checks of a spooled file in a pool process."""
        return await self.call("inspect", inspect_document, path)

    def pids(self) -> list[int]:
        """PIDs of the live parser processes (for tests and diagnostics)."""
        executor = self._executor
        if executor is None:
            return []
        processes = getattr(executor, "_processes", None) or {}
        return list(processes)

    def shutdown(self) -> None:
        """Stop every parser process now; pending ranges are cancelled."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(timeout=5)
