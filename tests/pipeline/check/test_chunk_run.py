"""The chunk run on its own: parser processes stood in for by ranges the test lets finish,
chunk files in moto's in-process S3, in an activity context (ActivityEnvironment)."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pipeline.check.checkpoint import Checkpoint
from pipeline.check.chunk_run import ChunkLayout
from pipeline.check.chunk_run import ChunkRun
from pipeline.check.chunk_run import page_ranges
from pipeline.check.heartbeat import Heartbeater
from pipeline.check.pool import PagePool
from pipeline.check.results import ResultStore
from pipeline.models import DocumentRef
from pipeline.pdf.page_checks import PageResult
from tests.support.activities import DOCS
from tests.support.activities import RESULTS
from tests.support.activities import in_process_s3
from tests.support.polling import async_wait_for

PREFIX = "out/doc"
# Five chunks of two pages, each checked in one range: fewer than the window.
LAYOUT = ChunkLayout(
    document=DocumentRef(bucket=DOCS, key="doc.pdf", etag="e1"),
    results_bucket=RESULTS,
    results_prefix=PREFIX,
    page_count=10,
    chunk_pages=2,
)


class _GatedPool(PagePool):
    """Two parser processes that finish a range only once the test releases its first
    page; no process is ever started."""

    def __init__(self) -> None:
        super().__init__(size=2)
        self.sent: list[tuple[int, int]] = []
        self.cancelled: list[tuple[int, int]] = []
        self.checking = 0
        self.most_at_once = 0
        self._released: collections.defaultdict[int, asyncio.Event] = collections.defaultdict(
            asyncio.Event
        )

    def release(self, *firsts: int) -> None:
        for first in firsts:
            self._released[first].set()

    # Where the log lines go and whether OCR is allowed change nothing here.
    async def check_range(
        self, path: Path, first: int, last: int, *_: Any, **__: Any
    ) -> list[dict[str, Any]]:
        self.sent.append((first, last))
        self.checking += 1
        self.most_at_once = max(self.most_at_once, self.checking)
        try:
            await self._released[first].wait()
        except asyncio.CancelledError:
            self.cancelled.append((first, last))
            raise
        finally:
            self.checking -= 1
        return [PageResult(page=page).to_json() for page in range(first, last + 1)]


@pytest.fixture
def s3() -> Iterator[Any]:
    with in_process_s3() as client:
        yield client


def _stored_firsts(s3: Any) -> list[int]:
    listed = s3.list_objects_v2(Bucket=RESULTS, Prefix=f"{PREFIX}/pages/")
    keys = [obj["Key"] for obj in listed.get("Contents", [])]
    return sorted(int(key.rsplit("/", 1)[-1].split(".")[0]) for key in keys)


def _started(s3: Any, pool: PagePool, env: ActivityEnvironment) -> asyncio.Task[Checkpoint]:
    """A first attempt at LAYOUT, running in ``env``."""
    run = ChunkRun(
        pool,
        Path("doc.pdf"),
        LAYOUT,
        ResultStore(s3, RESULTS),
        LAYOUT.checkpoint(0),
        set(),
        heartbeater=Heartbeater(),
    )

    async def in_activity() -> Checkpoint:
        return await env.run(run.run)

    return asyncio.create_task(in_activity())


async def _with_both_processes_busy(
    s3: Any,
) -> tuple[ActivityEnvironment, _GatedPool, asyncio.Task[Checkpoint]]:
    """A first attempt started in its own activity environment, once each parser process
    has a range of it."""
    env = ActivityEnvironment()
    pool = _GatedPool()
    run = _started(s3, pool, env)

    async def both_busy() -> bool:
        return pool.checking == pool.size

    await async_wait_for(both_busy, 10, "both parser processes checking")
    return env, pool, run


def test_a_layout_says_where_each_chunk_begins_and_ends() -> None:
    layout = dataclasses.replace(LAYOUT, page_count=35, chunk_pages=10)
    assert layout.chunks == 4
    assert [layout.pages_of(index) for index in range(4)] == [(1, 10), (11, 20), (21, 30), (31, 35)]
    # Its checkpoints are those a resumed attempt trusts.
    for chunks in range(5):
        details = layout.checkpoint(chunks).to_details()
        assert Checkpoint.from_details([details], 35) == layout.checkpoint(chunks)
    assert layout.checkpoint(4).next_page == 36


def test_a_checkpoint_of_another_layout_is_refused(s3: Any) -> None:
    with pytest.raises(ValueError, match="5-page chunks for a layout of 2"):
        ChunkRun(
            PagePool(1),
            Path("doc.pdf"),
            LAYOUT,
            ResultStore(s3, RESULTS),
            Checkpoint.start(5),
            set(),
            heartbeater=Heartbeater(),
        )


async def test_chunks_are_checked_in_page_order_one_per_parser_process_at_a_time(
    s3: Any,
) -> None:
    _, pool, run = await _with_both_processes_busy(s3)
    pool.release(1, 3, 5, 7, 9)
    checkpoint = await run
    assert pool.most_at_once == 2, "a chunk per parser process, not the whole window"
    assert pool.sent == [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]
    assert checkpoint == LAYOUT.checkpoint(5)
    assert _stored_firsts(s3) == [1, 3, 5, 7, 9]


async def test_the_checkpoint_passes_only_chunks_written_from_the_first_on(s3: Any) -> None:
    env = ActivityEnvironment()
    # What S3 holds at each heartbeat: every chunk before its next page must be there.
    heartbeats: list[tuple[int, list[int]]] = []
    env.on_heartbeat = lambda details: heartbeats.append((details["next_page"], _stored_firsts(s3)))
    pool = _GatedPool()
    run = _started(s3, pool, env)
    # The second chunk is written before the first, the fourth before the third.
    for first in (3, 1, 7, 5, 9):
        pool.release(first)

        async def stored(first: int = first) -> bool:
            return first in _stored_firsts(s3)

        await async_wait_for(stored, 10, f"the chunk of page {first} stored")
    await run
    assert [next_page for next_page, _ in heartbeats] == [5, 9, 11]
    for next_page, stored_then in heartbeats:
        assert set(range(1, next_page, 2)) <= set(stored_then), next_page


async def test_at_worker_shutdown_the_chunks_being_checked_are_written_and_no_other_starts(
    s3: Any,
) -> None:
    env, pool, run = await _with_both_processes_busy(s3)
    env.worker_shutdown()
    pool.release(1, 3, 5, 7, 9)
    with pytest.raises(ApplicationError) as error:
        await run
    assert error.value.type == "WorkerShutdown"
    assert not error.value.non_retryable
    assert error.value.details == (LAYOUT.checkpoint(2).to_details(),)
    assert pool.sent == [(1, 2), (3, 4)]
    assert _stored_firsts(s3) == [1, 3]


async def test_cancelling_the_run_cancels_the_ranges_being_checked_and_writes_nothing(
    s3: Any,
) -> None:
    env, pool, run = await _with_both_processes_busy(s3)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert sorted(pool.cancelled) == [(1, 2), (3, 4)]
    assert pool.sent == [(1, 2), (3, 4)]
    assert _stored_firsts(s3) == []


@pytest.mark.parametrize(
    ("first", "last", "page_count", "processes"),
    [(1, 100, 2000, 2), (1901, 2000, 2000, 2), (1, 35, 35, 2), (1, 3, 3, 2), (1, 100, 900, 8)],
)
def test_page_ranges_cover_the_chunk_and_shrink_only_near_the_end(
    first: int, last: int, page_count: int, processes: int
) -> None:
    ranges = page_ranges(first, last, page_count=page_count, processes=processes, most=25, least=5)
    pages = [page for start, end in ranges for page in range(start, end + 1)]
    assert pages == list(range(first, last + 1)), "every page once, in order"
    sizes = [end - start + 1 for start, end in ranges]
    assert all(size <= 25 for size in sizes)
    assert all(size >= 5 for size in sizes) or len(ranges) == 1
    far_from_the_end = [
        size
        for (start, _), size in zip(ranges, sizes, strict=True)
        if page_count - start + 1 >= 2 * processes * 25 and start + 25 <= last
    ]
    assert all(size == 25 for size in far_from_the_end)


def test_page_ranges_at_the_end_of_a_document_get_small() -> None:
    ranges = page_ranges(1901, 2000, page_count=2000, processes=2, most=25, least=5)
    assert ranges[0] == (1901, 1925)
    assert ranges[-1][1] == 2000
    assert ranges[-1][1] - ranges[-1][0] + 1 < 10
