"""One page-checking attempt: the stored chunks read back, every other chunk checked once.

The chunk files in S3 are the durable record of a check's progress. An attempt starts
from the heartbeat checkpoint (chunks the last attempt vouched for) and one listing of the
chunk files (every chunk stored since, in any order), checks only the chunks not stored,
and folds every page into the summary in page order, the stored ones from their files.
So a page whose chunk is stored is never parsed again, whatever the heartbeats said.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pipeline.check.checkpoint import Checkpoint
from pipeline.check.heartbeat import Heartbeater
from pipeline.check.metrics import PipelineMetrics
from pipeline.check.page_summary import PageSummary
from pipeline.check.pool import PagePool
from pipeline.check.results import ResultStore
from pipeline.check.results import StoredChunkError
from pipeline.check.results import chunk_key
from pipeline.models import DocumentRef

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("docpipe.pipeline")

Pages = list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class ChunkLayout:
    """How one check's pages fall into chunk files, and where those files are.

    Attributes:
        document: the document checked.
        results_bucket: the bucket of the check's results.
        results_prefix: where its chunk files go (under ``pages/``).
        page_count: the document's pages.
        chunk_pages: pages per chunk file (fixed for a check once a chunk is stored).
    """

    document: DocumentRef
    results_bucket: str
    results_prefix: str
    page_count: int
    chunk_pages: int

    @property
    def chunks(self) -> int:
        """How many chunk files the document's pages fill."""
        return math.ceil(self.page_count / self.chunk_pages)

    def pages_of(self, index: int) -> tuple[int, int]:
        """The first and last page of chunk ``index`` (0-based)."""
        first = index * self.chunk_pages + 1
        return first, min(first + self.chunk_pages - 1, self.page_count)

    def checkpoint(self, chunks: int) -> Checkpoint:
        """The checkpoint of the first ``chunks`` chunks durable."""
        return Checkpoint(
            next_page=min(chunks * self.chunk_pages, self.page_count) + 1,
            chunks=chunks,
            chunk_pages=self.chunk_pages,
        )


def needs_ocr(page: dict[str, Any]) -> bool:
    """A page result checked without OCR, of a page that OCR would read (as the parser
    process decides: image-only, and checked without error)."""
    return bool(page.get("image_only")) and page.get("error_type") is None


async def stored_chunks(
    store: ResultStore, layout: ChunkLayout, checkpoint: Checkpoint
) -> set[int]:
    """Indexes of the chunks already stored: those the checkpoint vouches for, and every
    chunk file listed after them (written ahead of the checkpoint, or after its last
    heartbeat reached the server). Files off the layout are not chunks of it."""
    size = layout.chunk_pages
    vouched = checkpoint.chunks
    after = (vouched - 1) * size + 1 if vouched else 0
    firsts = await asyncio.to_thread(store.stored_chunk_pages, layout.results_prefix, after)
    listed = {(first - 1) // size for first in firsts if (first - 1) % size == 0}
    return set(range(vouched)) | {index for index in listed if index < layout.chunks}


def page_ranges(
    first: int, last: int, *, page_count: int, processes: int, most: int, least: int
) -> list[tuple[int, int]]:
    """Pages ``first``..``last`` in ranges for the parser processes, ``(start, end)``.

    Ranges hold ``most`` pages while the document has plenty left; near its end each
    holds half of what is left per process, down to ``least``. The processes then finish
    the document together, instead of one checking a last whole range while the others
    wait (half a range on average: 60 ms at 25 pages); only the last pages pay for the
    extra ranges (about a millisecond each). A remainder smaller than ``least`` joins the
    range before it.
    """
    ranges = []
    start = first
    while start <= last:
        share = math.ceil((page_count - start + 1) / (2 * max(processes, 1)))
        end = start + min(most, max(least, share)) - 1
        if last - end < least:
            end = last
        ranges.append((start, end))
        start = end + 1
    return ranges


class ChunkRun:
    """One attempt's chunks: read the stored ones back, check and write the others.

    Each chunk is one task of a task group, started in page order. A stored chunk is read
    back. Any other is checked in page ranges that any free parser process takes, no more
    chunks at a time than there are processes (a semaphore), and then written once while
    the next chunk takes its place: after a crash, the pages checked again are those of
    the chunks that were being checked or written. A chunk starts only while it is fewer
    than ``AHEAD_PER_PROCESS`` chunks per process ahead of the first chunk not folded (a
    slow chunk holds the others back, up to that many). Chunks are folded into
    :attr:`summary` in page order, and the checkpoint moves over the chunks that are
    durable, from the first, never past one not yet written.

    Args:
        pool: the worker's parser processes.
        path: the document, spooled.
        layout: the check's chunks, in the layout of ``checkpoint``.
        store: where the chunk files are.
        checkpoint: where the last attempt's heartbeats left off.
        stored: indexes of the chunks already stored (:func:`stored_chunks`).
        heartbeater: carries the checkpoint as it moves.
        metrics: the worker's metrics.
        on_advance: called with the pages durable from page 1 whenever that grows.
        log_extra: log fields of the check (document and workflow IDs).
        ocr_elsewhere: read no page by OCR here: a chunk with a page that needs it is
            neither stored nor folded, but counted in :attr:`chunks_for_ocr`, for a page
            check on the OCR queue.

    Raises:
        ValueError: the checkpoint is of another layout.
    """

    AHEAD_PER_PROCESS = 4
    # Pages sent to a parser process at a time; ranges shrink to MIN_RANGE_PAGES near the
    # end of the document (see page_ranges).
    RANGE_PAGES = 25
    MIN_RANGE_PAGES = 5

    def __init__(
        self,
        pool: PagePool,
        path: Path,
        layout: ChunkLayout,
        store: ResultStore,
        checkpoint: Checkpoint,
        stored: set[int],
        *,
        heartbeater: Heartbeater,
        metrics: PipelineMetrics | None = None,
        on_advance: Callable[[int], None] = lambda pages_done: None,
        log_extra: dict[str, Any] | None = None,
        ocr_elsewhere: bool = False,
    ) -> None:
        if checkpoint.chunk_pages != layout.chunk_pages:
            raise ValueError(
                f"a checkpoint of {checkpoint.chunk_pages}-page chunks for a layout of "
                f"{layout.chunk_pages}"
            )
        self._pool = pool
        self._path = path
        self.layout = layout
        self._store = store
        self._heartbeater = heartbeater
        self._metrics = metrics or PipelineMetrics()
        self.on_advance = on_advance
        self._extra = log_extra or {}
        self.checkpoint = checkpoint
        self._stored = set(stored)
        # Durable chunks (stored, or written by this attempt): the checkpoint passes them.
        self._durable = set(stored)
        # Chunks whose page results are at hand, waiting for the fold to reach them.
        self._ready: dict[int, Pages] = {}
        self._folded = 0
        # Set when the fold moves or the worker shuts down: a chunk may start then.
        self._moved = asyncio.Event()
        self._stopping = False
        self._parsers = asyncio.Semaphore(pool.size)
        self.summary = PageSummary()
        self._ocr_elsewhere = ocr_elsewhere
        # Chunks left for the OCR queue: the fold passes them, the checkpoint stops there.
        self.chunks_for_ocr: set[int] = set()
        self.pages_parsed = 0
        self.pages_from_store = 0
        # The first page this attempt checks (one past the last page if none).
        self.first_page = next(
            (layout.pages_of(i)[0] for i in range(layout.chunks) if i not in self._stored),
            layout.page_count + 1,
        )

    async def run(self) -> Checkpoint:
        """Fold every chunk, checking those not stored; returns the final checkpoint.

        Raises:
            ApplicationError: the worker is shutting down (retryable: the next attempt
                goes on from the chunks stored here), or a stored chunk is not this
                check's (``result_unusable``, non-retryable).
            Exception: a page range failed (its own error; the other work is stopped).
        """
        self._advance()
        shutdown = asyncio.create_task(self._stop_at_worker_shutdown())
        try:
            async with asyncio.TaskGroup() as chunks:
                for index in range(self.layout.chunks):
                    if not await self._window_open_for(index):
                        break
                    chunks.create_task(self._check_chunk(index))
        except BaseExceptionGroup as failed:
            # The first failure, as it was: the others were cancelled because of it.
            raise failed.exceptions[0] from None
        finally:
            shutdown.cancel()
            await asyncio.gather(shutdown, return_exceptions=True)
        if self._folded < self.layout.chunks:
            raise ApplicationError(
                f"worker shutting down at page {self.checkpoint.next_page}; the next "
                "attempt goes on from the chunks stored",
                self.checkpoint.to_details(),
                type="WorkerShutdown",
            )
        return self.checkpoint

    async def _window_open_for(self, index: int) -> bool:
        """Wait until chunk ``index`` is within the window ahead of the fold; False when
        the worker shuts down first (no chunk starts then)."""
        window = self.AHEAD_PER_PROCESS * self._pool.size
        while not self._stopping and index - self._folded >= window:
            self._moved.clear()
            await self._moved.wait()
        return not self._stopping

    async def _stop_at_worker_shutdown(self) -> None:
        await activity.wait_for_worker_shutdown()
        # The chunks being checked are finished and written; no other starts.
        self._stopping = True
        self._moved.set()

    async def _check_chunk(self, index: int) -> None:
        """Chunk ``index``, read back if it is stored, else (or if it is gone) checked
        and written once (or left for the OCR queue); then folded as far as the chunks
        before it allow."""
        pages = await self._read(index) if index in self._stored else None
        if pages is None:
            async with self._parsers:
                if self._stopping:
                    return
                parsed = await self._parse(index)
            if self._ocr_elsewhere and any(map(needs_ocr, parsed)):
                first, last = self.layout.pages_of(index)
                log.debug("pages %d-%d left for the OCR queue", first, last, extra=self._extra)
                self.chunks_for_ocr.add(index)
                pages = []
            else:
                pages = await self._write(index, parsed)
                self._durable.add(index)
        self._ready[index] = pages
        self._advance()

    async def _parse(self, index: int) -> Pages:
        first, last = self.layout.pages_of(index)
        log.debug("checking pages %d-%d", first, last, extra=self._extra)
        with _tracer.start_as_current_span(
            "docpipe.page_range",
            attributes={"docpipe.first_page": first, "docpipe.last_page": last},
        ):
            started = time.monotonic()
            # In ranges of a few pages, each to the next free process: the processes
            # share the last chunks of a document instead of one waiting for the other.
            try:
                async with asyncio.TaskGroup() as ranges:
                    parts = [
                        ranges.create_task(
                            self._pool.check_range(
                                self._path, start, end, self._extra, ocr=not self._ocr_elsewhere
                            )
                        )
                        for start, end in page_ranges(
                            first,
                            last,
                            page_count=self.layout.page_count,
                            processes=self._pool.size,
                            most=self.RANGE_PAGES,
                            least=self.MIN_RANGE_PAGES,
                        )
                    ]
            except BaseExceptionGroup as failed:
                # The first failure, as it was: the others are cancelled siblings' echoes.
                raise failed.exceptions[0] from None
            pages = [page for part in parts for page in part.result()]
        self.pages_parsed += len(pages)
        self._metrics.record_range(pages, time.monotonic() - started)
        return pages

    async def _write(self, index: int, pages: Pages) -> Pages:
        first, last = self.layout.pages_of(index)
        with _tracer.start_as_current_span("docpipe.write_chunk"):
            try:
                written = await asyncio.to_thread(
                    self._store.write_chunk, self.layout.results_prefix, pages
                )
            except StoredChunkError as exc:
                raise self._unusable(index, exc) from exc
        self._metrics.chunk_writes.labels(written.outcome).inc()
        if written.outcome == "kept_first":
            # Another attempt (one the server had given up on, still running) stored
            # this chunk first, with other results for timing-dependent pages: a page
            # that timed out there may have parsed in time here. The stored results
            # stand, for the report to agree with the chunk files.
            log.warning(
                "pages %d-%d were already stored with other results; the stored ones stand",
                first,
                last,
                extra=self._extra,
            )
        log.debug("pages %d-%d stored (%s)", first, last, written.outcome, extra=self._extra)
        return written.pages

    async def _read(self, index: int) -> Pages | None:
        """The stored chunk's pages; None when it is gone (it is then no longer stored)."""
        first, last = self.layout.pages_of(index)
        try:
            pages = await asyncio.to_thread(
                self._store.read_chunk, self.layout.results_prefix, first, last
            )
        except StoredChunkError as exc:
            raise self._unusable(index, exc) from exc
        if pages is None:
            log.warning(
                "stored pages %d-%d are gone from S3; checking them again",
                first,
                last,
                extra=self._extra,
            )
            self._stored.discard(index)
            self._durable.discard(index)
        else:
            log.debug("pages %d-%d taken from their stored chunk", first, last, extra=self._extra)
            self.pages_from_store += len(pages)
            self._metrics.pages_from_store.inc(len(pages))
        return pages

    def _unusable(self, index: int, exc: StoredChunkError) -> ApplicationError:
        first, _ = self.layout.pages_of(index)
        key = chunk_key(self.layout.results_prefix, first)
        return ApplicationError(
            f"s3://{self._store.bucket}/{key} {exc}: it was not written by this check "
            "(another chunk size, or another program). Retrying cannot change it; "
            "`docpipe reprocess` checks the document again under a new prefix.",
            {"attempt": activity.info().attempt},
            type="result_unusable",
            non_retryable=True,
        )

    def _advance(self) -> None:
        """Move the checkpoint over durable chunks and the fold over ready ones."""
        chunks = self.checkpoint.chunks
        while chunks in self._durable:
            chunks += 1
        if chunks != self.checkpoint.chunks:
            self.checkpoint = self.layout.checkpoint(chunks)
            self._heartbeater.details(self.checkpoint.to_details())
            self.on_advance(self.checkpoint.next_page - 1)
        folded = self._folded
        while self._folded in self._ready:
            pages = self._ready.pop(self._folded)
            # Past a chunk left for the OCR queue, the fold is that queue's run's.
            if not self.chunks_for_ocr:
                for page in pages:
                    self.summary.add(page)
            self._folded += 1
        if self._folded != folded:
            self._moved.set()
