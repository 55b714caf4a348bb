"""check_pages as it runs: page ranges any parser process may take, a bounded window
ahead of the checkpoint, and the failures that end it for good. Activities in
ActivityEnvironment against moto's S3."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from pipeline.check.chunk_run import ChunkRun
from pipeline.check.results import ChunkWrite
from pipeline.check.results import ResultStore
from pipeline.check.results import chunk_bytes
from pipeline.check.results import chunk_key
from pipeline.models import DocumentRef
from tests.support.activities import PAGES
from tests.support.activities import PREFIX
from tests.support.activities import RESULTS
from tests.support.activities import pages_input
from tests.support.activities import retry_env
from tests.support.activities import tracked_activities
from tests.support.activities import written_chunks
from tests.support.polling import async_wait_for
from tests.support.s3_faults import S3Faults


async def test_an_object_s3_refuses_mid_check_ends_the_page_check_for_good(
    s3: Any, document: DocumentRef
) -> None:
    # Readable at inspection, refused by the time its pages are checked (another worker
    # downloads it): the workflow reports it like a vanished object.
    S3Faults("GetObject", status=403, code="AccessDenied").install(s3)
    with pytest.raises(ApplicationError) as error:
        await retry_env([], []).run(tracked_activities(s3).check_pages, pages_input(document))
    assert error.value.type == "object_forbidden"
    assert error.value.non_retryable
    assert "AccessDenied (403)" in error.value.message


async def test_a_stored_chunk_that_is_not_this_checks_fails_clearly_for_good(
    s3: Any, document: DocumentRef
) -> None:
    # Another chunk size's file where this layout expects pages 1-10.
    foreign = chunk_bytes({"page": n} for n in range(1, 26))
    s3.put_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 1), Body=foreign)
    with pytest.raises(ApplicationError) as error:
        await retry_env([], []).run(tracked_activities(s3).check_pages, pages_input(document))
    assert error.value.type == "result_unusable"
    assert error.value.non_retryable
    assert "holds pages 1-25, not pages 1-10" in error.value.message
    assert chunk_key(PREFIX, 1) in error.value.message
    # The file that was there is never overwritten.
    assert s3.get_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 1))["Body"].read() == foreign


async def test_parsing_goes_on_while_a_chunk_is_written_up_to_a_window(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first chunk's write hangs: the parser processes keep checking the next chunks,
    # but no further than the window ahead of the checkpoint (what a crash could cost).
    release, parsed = threading.Event(), [0]
    real_write = ResultStore.write_chunk

    def write_chunk(store: ResultStore, prefix: str, pages: Any) -> ChunkWrite:
        if pages[0]["page"] == 1:
            release.wait(30)
        return real_write(store, prefix, pages)

    monkeypatch.setattr(ResultStore, "write_chunk", write_chunk)
    activities = tracked_activities(s3, chunk_pages=2)
    real_check = activities.pool.check_range

    async def check_range(
        path: Any, first: int, last: int, log_extra: Any = None, *, ocr: bool = True
    ) -> list[dict[str, Any]]:
        parsed[0] += 1
        return await real_check(path, first, last, log_extra, ocr=ocr)

    monkeypatch.setattr(activities.pool, "check_range", check_range)
    window = ChunkRun.AHEAD_PER_PROCESS * activities.pool.size
    heartbeats: list[Any] = []
    run = asyncio.create_task(
        retry_env([], heartbeats).run(activities.check_pages, pages_input(document, 2))
    )
    try:

        async def window_full() -> bool:
            return parsed[0] == window and len(written_chunks(s3)) == window - 1

        await async_wait_for(window_full, 30, f"{window} chunks checked, all but one written")
        await asyncio.sleep(0.5)
        assert parsed[0] == window, "checked past the window while the checkpoint was held"
        assert all(h["next_page"] == 1 for h in heartbeats)
    finally:
        release.set()
    result = await run
    assert result.chunks == math.ceil(PAGES / 2) == parsed[0]
    assert heartbeats[-1]["next_page"] == PAGES + 1


async def test_a_chunk_is_checked_in_ranges_that_any_process_may_take(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    activities = tracked_activities(s3, chunk_pages=50)
    real_check = activities.pool.check_range
    ranges: list[tuple[int, int]] = []

    async def check_range(
        path: Any, first: int, last: int, log_extra: Any = None, *, ocr: bool = True
    ) -> list[dict[str, Any]]:
        ranges.append((first, last))
        return await real_check(path, first, last, log_extra, ocr=ocr)

    monkeypatch.setattr(activities.pool, "check_range", check_range)
    result = await retry_env([], []).run(
        activities.check_pages, pages_input(document, chunk_pages=50)
    )
    assert result.chunks == 1
    # 35 pages for two processes: the ranges shrink towards the end of the document.
    assert sorted(ranges) == [(1, 9), (10, 16), (17, 21), (22, 26), (27, 35)]
    body = s3.get_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 1))["Body"].read()
    assert [json.loads(line)["page"] for line in body.splitlines()] == list(range(1, PAGES + 1))


async def test_a_failing_range_fails_the_attempt_with_its_own_error(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    activities = tracked_activities(s3, chunk_pages=50)

    async def check_range(
        path: Any, first: int, last: int, log_extra: Any = None, *, ocr: bool = True
    ) -> list[dict[str, Any]]:
        if first > 1:
            raise RuntimeError("the parser pool is shut down")
        await asyncio.sleep(5)
        return []

    monkeypatch.setattr(activities.pool, "check_range", check_range)
    with pytest.raises(RuntimeError, match="shut down"):
        await retry_env([], []).run(activities.check_pages, pages_input(document, chunk_pages=50))
    assert written_chunks(s3) == []
