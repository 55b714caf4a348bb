"""The review page's renderer: pages drawn as PNG in a bounded process, never in the
server's event loop.

One render process per slot (``spawn``ed, bounded by ``pipeline.pdf.render``'s limits):
a page that takes longer than ``RenderLimits.seconds`` gets its process killed and
replaced, as does a process that dies; the server goes on serving meanwhile. The
document's bytes go to the process through a pipe and the PNG comes back the same way:
nothing is written to disk.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pipeline.check.parser_slot import kill_executor
from pipeline.pdf import render
from pipeline.pdf.render import RenderLimits
from pipeline.pdf.render import RenderRefusedError

log = logging.getLogger(__name__)


class RenderFailedError(RuntimeError):
    """The page could not be drawn in time or its process died; the message says which."""


class _RenderProcess:
    """One render process, as a single-worker executor (it starts on first use)."""

    def __init__(self, limits: RenderLimits) -> None:
        self.executor = ProcessPoolExecutor(
            max_workers=1,
            # fork is unsafe in a process that runs other threads (Temporal's client).
            mp_context=multiprocessing.get_context("spawn"),
            initializer=render.init_render_process,
            initargs=(os.getpid(), limits.memory_mb),
        )

    def kill(self) -> None:
        kill_executor(self.executor)


class PageRenderer:
    """Renders pages in ``processes`` bounded processes; use from one event loop.

    Args:
        limits: time, memory and pixel bounds of each render.
        processes: how many pages may be drawn at once.
    """

    def __init__(self, limits: RenderLimits | None = None, processes: int = 1) -> None:
        self.limits = limits or RenderLimits()
        self._processes = [_RenderProcess(self.limits) for _ in range(max(1, processes))]
        self._free: asyncio.Queue[int] | None = None

    def _queue(self) -> asyncio.Queue[int]:
        if self._free is None:
            self._free = asyncio.Queue()
            for index in range(len(self._processes)):
                self._free.put_nowait(index)
        return self._free

    async def render(self, pdf: bytes, page_number: int, turn: int = 0) -> bytes:
        """Page ``page_number`` (1-based) of ``pdf`` as PNG bytes, turned ``turn`` degrees
        clockwise.

        Raises:
            RenderRefusedError: the page cannot be drawn within the limits, or is not there.
            RenderFailedError: it took too long, or its process died (it was replaced).
        """
        free = self._queue()
        index = await free.get()
        process = self._processes[index]
        loop = asyncio.get_running_loop()
        try:
            try:
                # A new process starts before the clock does: the limit is the page's alone.
                await loop.run_in_executor(process.executor, render.pid)
                future = loop.run_in_executor(
                    process.executor, render.render_page, pdf, page_number, self.limits, turn
                )
                return await asyncio.wait_for(future, timeout=self.limits.seconds)
            except TimeoutError:
                self._replace(index)
                log.warning(
                    "a page took over %.0f s to render: process replaced", self.limits.seconds
                )
                raise RenderFailedError(
                    f"the page took longer than {self.limits.seconds:g} s to render"
                ) from None
            except BrokenProcessPool:
                self._replace(index)
                raise RenderFailedError("the render process died on the page") from None
            except MemoryError:
                raise RenderRefusedError(
                    f"the page needs more than {self.limits.memory_mb} MB to render"
                ) from None
        except asyncio.CancelledError:
            # Nobody waits for the page any more: stop drawing it.
            self._replace(index)
            raise
        finally:
            free.put_nowait(index)

    async def pids(self) -> list[int]:
        """The PIDs of the render processes (each starts if it has not yet)."""
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(p.executor, render.pid) for p in self._processes)
            )
        )

    def _replace(self, index: int) -> None:
        self._processes[index].kill()
        self._processes[index] = _RenderProcess(self.limits)

    def shutdown(self) -> None:
        """Kill every render process now."""
        for process in self._processes:
            process.kill()
