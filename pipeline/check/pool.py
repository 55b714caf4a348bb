"""A pool of parser processes that die with their parent and are replaced when they hang.

pypdf is pure Python and holds the GIL, so pages are parsed in separate processes: the
worker's event loop only coordinates and its heartbeats are never late. Each process is
its own single-worker executor (a slot), so a process that dies or has to be killed costs
only the page it was on, not its siblings' work.

pypdf has no time limit, so each slot shares numbers with its process (the page being
parsed and since when; see ``pipeline.pdf.parser_process``, where everything that runs inside
a process lives): a page that takes longer than the limit gets its process killed and
replaced, and becomes a ``timeout`` page error. A memory limit (``RLIMIT_AS``) and pypdf's
own ``Configuration`` limits are set inside each process.

Work that is cancelled (its check was cancelled) is stopped without killing its process:
the slot names the job to abandon in the same shared numbers, and the process stops at the
next page. Only a process that does not stop within a grace period (it is deep in one
slow page) is killed. Other checks' work on the other processes goes on untouched.

A plain ``ProcessPoolExecutor``'s children outlive a killed parent; here each child asks
the kernel to kill it when its parent dies, and also watches the parent itself in case the
parent died before that request was made.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable
from collections.abc import Mapping
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any
from typing import TypeVar

from pipeline.check.parser_lines import ParserLines
from pipeline.check.parser_slot import PageHung
from pipeline.check.parser_slot import ParserSlot
from pipeline.check.parser_slot import ProcessDied
from pipeline.pdf import parser_process
from pipeline.pdf.document_checks import DocumentFacts
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.parser_process import REPAIRING
from pipeline.pdf.parser_process import Logged
from pipeline.pdf.parser_process import LoggingSetup
from pipeline.pdf.parser_process import ParserLimits
from pipeline.pdf.parser_process import ParserLogging

log = logging.getLogger(__name__)

T = TypeVar("T")


class ParserCrashedError(RuntimeError):
    """A parser process died (killed, out of memory) again and again on the same work."""


class InspectTimeoutError(RuntimeError):
    """The document-level checks took longer than their limit."""


def _ignore_outcome(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


def pool_size(size: int = 0) -> int:
    """How many parser processes a pool set to ``size`` runs: one per CPU core for 0."""
    return size or os.cpu_count() or 1


class PagePool:
    """Parser processes for document and page checks, shared by a worker's activities.

    Must be used from one event loop. Processes start on first use (or :meth:`warm`) and
    stay warm between documents. Page ranges that are cancelled stop at the next page
    (their process is killed only if it does not stop within ``ABANDON_GRACE_S``); other
    work that is cancelled kills its process. Either way a cancelled check leaves no
    parsing behind, and touches no other check's work.

    What libraries log or write to stderr in a parser process is logged by the worker, one
    line each, once per document (``pipeline.check.parser_lines``).

    Args:
        size: number of parser processes; 0 means one per CPU core.
        limits: time, memory and parser limits of each process.
        logging_setup: sets up logging in each parser process (the worker's formats);
            picklable. The processes log at the level of this process's root logger.
    """

    # How long a cancelled page range may take to reach its next page (pages take
    # milliseconds; one that takes longer is cut short by killing its process).
    ABANDON_GRACE_S = 2.0

    def __init__(
        self,
        size: int = 0,
        limits: ParserLimits | None = None,
        logging_setup: LoggingSetup | None = None,
    ) -> None:
        self.size = pool_size(size)
        self.limits = limits or ParserLimits()
        self._slots: list[ParserSlot] = []
        self._free: asyncio.Queue[int] | None = None
        self._closed = False
        self._jobs = itertools.count(1)
        self._log = ParserLogging(logging.getLogger().getEffectiveLevel(), logging_setup)
        self._lines = ParserLines()

    def _ensure(self) -> asyncio.Queue[int]:
        if self._closed:
            raise RuntimeError("the parser pool is shut down")
        if self._free is None:
            pid = os.getpid()
            self._slots = [ParserSlot(pid, self.limits, self._log) for _ in range(self.size)]
            self._free = asyncio.Queue()
            for index in range(self.size):
                self._free.put_nowait(index)
        return self._free

    def _replace(self, index: int, slot: ParserSlot) -> None:
        slot.kill()
        if not self._closed and self._slots[index] is slot:
            self._slots[index] = ParserSlot(os.getpid(), self.limits, self._log)

    async def _run(
        self,
        fn: Callable[..., T],
        *args: Any,
        limit_s: float,
        index: int | None = None,
        abandonable: bool = False,
        log_extra: Mapping[str, Any] | None = None,
    ) -> T:
        """Run ``fn(*args)`` on a free parser process (or slot ``index``, taken), watching it.

        ``abandonable``: ``fn`` takes a job number as its last argument and stops when the
        slot abandons that job; cancelling the call then spares the process if it can.
        ``log_extra``: the IDs of the check, for what libraries said during the job.

        Raises:
            PageHung: the process spent more than ``limit_s`` on one page (it was replaced).
            ProcessDied: the process died (it was replaced).
        """
        free = self._ensure()
        loop = asyncio.get_running_loop()
        if index is None:
            index = await free.get()
        slot = self._slots[index]
        job = next(self._jobs)
        if abandonable:
            args = (*args, job)
        future: asyncio.Future[Logged] | None = None
        try:
            future = loop.run_in_executor(slot.executor, parser_process.run_logged, fn, *args)
            while True:
                done, _ = await asyncio.wait({future}, timeout=min(0.25, limit_s / 4))
                if done:
                    outcome = future.result()
                    self._lines.log(outcome.lines, log_extra)
                    if outcome.error is not None:
                        raise outcome.error
                    result: T = outcome.result
                    return result
                page, seconds = slot.busy_with()
                reading = slot.reading()
                if page and seconds > (self.limits.ocr.timeout_s if reading else limit_s):
                    future.cancel()
                    self._replace(index, slot)
                    raise PageHung(page, seconds, reading)
        except BrokenProcessPool:
            page, _ = slot.busy_with()
            reading = slot.reading()
            self._replace(index, slot)
            raise ProcessDied(page, reading) from None
        except asyncio.CancelledError:
            # The process would go on parsing for nobody: stop it now.
            if future is not None and not future.done():
                spared = abandonable and await self._abandoned(slot, job, future)
                if not spared:
                    # Nobody waits for the failure that its death sets on the future.
                    future.cancel()
                    self._replace(index, slot)
            raise
        finally:
            free.put_nowait(index)

    async def _abandoned(self, slot: ParserSlot, job: int, future: asyncio.Future[Any]) -> bool:
        """Ask ``slot``'s process to abandon ``job``; True once it has, within the grace."""
        slot.abandon(job)
        try:
            done, _ = await asyncio.wait({future}, timeout=self.ABANDON_GRACE_S)
        except asyncio.CancelledError:
            return False
        if not done:
            return False
        if not future.cancelled():
            # Retrieved, so that nothing reports it as never retrieved.
            future.exception()
        return True

    async def warm(self) -> list[int]:
        """Start every parser process now, so the first document does not wait for them.

        Returns:
            The PIDs of the parser processes.
        """
        self._ensure()
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(slot.executor, parser_process.pid) for slot in self._slots)
            )
        )

    async def on_every_process(self, fn: Callable[..., T], *args: Any) -> list[T | BaseException]:
        """Run ``fn(*args)`` on every started parser process, after the work it has, and
        return what each gave (or raised). A slot whose process was replaced has not
        started a new one and is left out."""
        loop = asyncio.get_running_loop()
        started = [slot for slot in self._slots if slot.pids()]
        return await asyncio.gather(
            *(loop.run_in_executor(slot.executor, fn, *args) for slot in started),
            return_exceptions=True,
        )

    async def forget(self, path: Path) -> None:
        """Make every parser process close a document, so its file can really go away."""
        await self.on_every_process(parser_process.forget, str(path))

    async def check_range(
        self,
        path: Path,
        first: int,
        last: int,
        log_extra: Mapping[str, Any] | None = None,
        *,
        ocr: bool = True,
    ) -> list[dict[str, Any]]:
        """Check pages ``first``..``last`` of a spooled file in parser processes.

        A page that hangs becomes a ``timeout`` page error. A process that dies is
        replaced and the page it was on tried once more on its own; if it dies again
        there, that page becomes a ``crashed`` page error. Either way the other pages
        are checked. A process hands a range back after each page it read by OCR; the
        rest goes to the next free process, or is halved between two when more are free.
        ``ocr``: False reads no page by OCR (another worker will).
        """
        results: list[dict[str, Any]] = []
        died_on: set[int] = set()
        start = first
        while start <= last:
            try:
                checked = await self._run(
                    parser_process.check_range,
                    str(path),
                    start,
                    last,
                    ocr,
                    limit_s=self.limits.page_seconds,
                    abandonable=True,
                    log_extra=log_extra,
                )
                results.extend(checked)
                start += len(checked)
                if start < last and self._spare_processes():
                    # It stopped after a scanned page, and another process is idle: the
                    # rest is shared between them.
                    middle = (start + last) // 2
                    halves = await asyncio.gather(
                        self.check_range(path, start, middle, log_extra, ocr=ocr),
                        self.check_range(path, middle + 1, last, log_extra, ocr=ocr),
                    )
                    return results + halves[0] + halves[1]
                continue
            except PageHung as hung:
                failed = hung.page
                what = "OCR" if hung.reading else "parsing"
                limit = self.limits.ocr.timeout_s if hung.reading else self.limits.page_seconds
                error = PageResult(
                    page=failed, error_type="timeout", error=f"{what} took longer than {limit:g} s"
                )
                log.warning(
                    "page %d: %s took over %.0f s: parser replaced",
                    failed,
                    what,
                    hung.seconds,
                    extra=log_extra,
                )
                if hung.reading:
                    error = await self._unread(path, failed, "timeout", error)
            except ProcessDied as died:
                failed = died.page if start <= died.page <= last else start
                log.warning(
                    "parser process died on page %d%s; starting a new one",
                    failed,
                    " (OCR)" if died.reading else "",
                    extra=log_extra,
                )
                if failed not in died_on:
                    died_on.add(failed)
                    # Pages before it were checked but their results died with it.
                    if failed > start:
                        results.extend(
                            await self.check_range(path, start, failed - 1, log_extra, ocr=ocr)
                        )
                    start = failed
                    continue
                error = PageResult(
                    page=failed, error_type="crashed", error="the parser process died twice"
                )
                if died.reading:
                    error = await self._unread(path, failed, "crashed", error)
            if failed > start:
                results.extend(await self.check_range(path, start, failed - 1, log_extra, ocr=ocr))
            results.append(error.to_json())
            start = failed + 1
        return results

    def _spare_processes(self) -> bool:
        """More than one process free: the one a range just left, and another."""
        return self._free is not None and self._free.qsize() > 1

    async def _unread(self, path: Path, page: int, cause: str, otherwise: PageResult) -> PageResult:
        """Page ``page`` checked again without OCR, as a page OCR could not read for
        ``cause``; ``otherwise`` should that check fail too."""
        try:
            (result,) = await self._run(
                parser_process.check_unread,
                str(path),
                page,
                cause,
                limit_s=self.limits.page_seconds,
            )
        except (PageHung, ProcessDied):
            return otherwise
        return PageResult(**result)

    async def inspect(
        self, path: Path, log_extra: Mapping[str, Any] | None = None
    ) -> DocumentFacts:
        """Document-level checks of a spooled file in a parser process.

        The process that inspects keeps the document open with its pages indexed, and
        the other processes that are free open and index it meanwhile, on the cores the
        inspection leaves idle: the document's page ranges then start at once. Should the
        inspection time out or crash its process, that preparation is stopped too (it
        would most likely do the same); a document found not checkable fails it as fast.

        Raises:
            InspectTimeoutError: they took longer than the limit (the process was replaced).
            ParserCrashedError: the process died twice.
        """
        free = self._ensure()
        index = await free.get()
        preloads = []
        while not free.empty():
            preloads.append(
                asyncio.create_task(
                    self._run(
                        parser_process.preload,
                        str(path),
                        limit_s=self.limits.inspect_seconds,
                        index=free.get_nowait(),
                        log_extra=log_extra,
                    )
                )
            )
        failed = True
        try:
            for attempt in range(2):
                try:
                    facts = await self._run(
                        parser_process.inspect,
                        path,
                        limit_s=self.limits.inspect_seconds,
                        index=index if attempt == 0 else None,
                        log_extra=log_extra,
                    )
                    failed = False
                    return facts
                except PageHung as hung:
                    what = (
                        "repairing the damaged document"
                        if hung.page == REPAIRING
                        else "document-level checks"
                    )
                    raise InspectTimeoutError(
                        f"{what} took longer than {self.limits.inspect_seconds:g} s"
                    ) from hung
                except ProcessDied:
                    log.warning(
                        "parser process died inspecting a document; starting a new one",
                        extra=log_extra,
                    )
            raise ParserCrashedError("the parser process died twice inspecting the document")
        finally:
            for preload in preloads:
                if failed:
                    preload.cancel()
                # Its failures are the page ranges' to report, should any be sent.
                preload.add_done_callback(_ignore_outcome)

    def shutdown(self) -> None:
        """Kill every parser process now; work in flight is abandoned."""
        self._closed = True
        slots, self._slots = self._slots, []
        for slot in slots:
            slot.kill()
