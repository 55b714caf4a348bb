"""Activities in ActivityEnvironment against moto's in-process S3: resume and write-once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pipeline.check import activities as activities_module
from pipeline.check.activities import DocumentActivities
from pipeline.check.checkpoint import Checkpoint
from pipeline.check.chunk_run import ChunkRun, page_ranges
from pipeline.check.results import ChunkWrite, ResultStore, chunk_bytes, chunk_key
from pipeline.check.spool import _Shelf
from pipeline.models import (
    CheckPagesInput,
    CheckPagesResult,
    DocumentRef,
    FinalizeInput,
    InspectInput,
    InspectResult,
)
from tests.support.activities import DOCS, RESULTS, in_process_s3, make_activities
from tests.support.feature_pdfs import PAGE_KINDS, make_feature_pdf
from tests.support.helpers import async_wait_for
from tests.support.pdfs import make_pdf
from tests.support.pool import open_documents
from tests.support.reports import assert_valid_report
from tests.support.s3_faults import S3Faults

PAGES = 35
PREFIX = "out/doc"


@pytest.fixture
def s3() -> Iterator[Any]:
    with in_process_s3() as client:
        yield client


@pytest.fixture
def document(s3: Any) -> DocumentRef:
    body = make_pdf(["text"] * 20 + ["blank"] + ["text"] * (PAGES - 21))
    put = s3.put_object(Bucket=DOCS, Key="big.pdf", Body=body)
    return DocumentRef(bucket=DOCS, key="big.pdf", version_id=put["VersionId"])


_made: list[DocumentActivities] = []


@pytest.fixture(autouse=True)
def _stop_parsers() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def _activities(s3: Any, chunk_pages: int = 10, **options: Any) -> DocumentActivities:
    made = make_activities(s3, chunk_pages=chunk_pages, **options)
    _made.append(made)
    return made


def _env(details: list[Any], heartbeats: list[Any]) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, heartbeat_details=details, heartbeat_timeout=timedelta(seconds=5), attempt=2
    )
    env.on_heartbeat = lambda *args: heartbeats.append(args[0])
    return env


def _written_chunks(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=RESULTS, Prefix=f"{PREFIX}/pages/")
    return sorted(obj["Key"] for obj in listed.get("Contents", []))


def _finalize_input(
    document: DocumentRef, inspection: InspectResult, pages: CheckPagesResult
) -> FinalizeInput:
    return FinalizeInput(
        document=document,
        results_bucket=RESULTS,
        results_prefix=PREFIX,
        inspection=inspection,
        pages=pages,
    )


def _input(document: DocumentRef, chunk_pages: int = 10) -> CheckPagesInput:
    return CheckPagesInput(
        document=document,
        results_bucket=RESULTS,
        results_prefix=PREFIX,
        page_count=PAGES,
        chunk_pages=chunk_pages,
    )


async def test_resume_lists_only_the_chunks_after_its_checkpoint(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _env([], []).run(_activities(s3).check_pages, _input(document))
    for first in (21, 31):
        s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))
    listings: list[str] = []
    s3.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **_: listings.append(request.url)
    )
    activities = _activities(s3)
    sent = _count_parsed(activities, monkeypatch)
    heartbeats: list[Any] = []
    checkpoint = Checkpoint(next_page=21, chunks=2, chunk_pages=10)
    env = _env([checkpoint.to_details()], heartbeats)
    result: CheckPagesResult = await env.run(activities.check_pages, _input(document))
    assert result.first_page_this_attempt == 21
    assert result.attempt == 2
    assert result.chunks == 4
    assert sent == list(range(21, PAGES + 1))
    # The checkpoint vouches for the first two chunks: the listing starts after them.
    (listing,) = listings
    assert "start-after=out%2Fdoc%2Fpages%2F0000011.jsonl" in listing
    # It goes on from the checkpoint, never from before it.
    assert heartbeats and all(h["next_page"] >= checkpoint.next_page for h in heartbeats)
    assert heartbeats[-1] == {"v": 1, "next_page": PAGES + 1, "chunks": 4, "chunk_pages": 10}
    # The checkpoint never moves backwards.
    assert [h["next_page"] for h in heartbeats] == sorted(h["next_page"] for h in heartbeats)


@pytest.mark.parametrize(
    "details",
    [[], [{"v": 99, "next_page": 21, "chunks": 2}], ["garbage"], [{"v": 1, "next_page": 5}]],
)
async def test_unreadable_checkpoint_starts_over(
    s3: Any, document: DocumentRef, details: list[Any]
) -> None:
    env = _env(details, [])
    result = await env.run(_activities(s3).check_pages, _input(document))
    assert result.first_page_this_attempt == 1
    assert _written_chunks(s3) == [chunk_key(PREFIX, p) for p in (1, 11, 21, 31)]


async def test_resume_keeps_the_layout_of_the_checkpoint(s3: Any, document: DocumentRef) -> None:
    # A worker configured with another chunk size continues the document's layout.
    await _env([], []).run(_activities(s3, chunk_pages=7).check_pages, _input(document, 7))
    for first in (8, 15, 22, 29):
        s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))
    checkpoint = Checkpoint(next_page=8, chunks=1, chunk_pages=7)
    env = _env([checkpoint.to_details()], [])
    result = await env.run(
        _activities(s3, chunk_pages=50).check_pages, _input(document, chunk_pages=50)
    )
    assert result.chunk_pages == 7
    assert result.pages_parsed == PAGES - 7
    assert _written_chunks(s3) == [chunk_key(PREFIX, p) for p in (1, 8, 15, 22, 29)]


async def test_redone_attempt_and_finalize_write_each_result_once(
    s3: Any, document: DocumentRef
) -> None:
    activities = _activities(s3)
    env = _env([], [])
    inspection = await env.run(activities.inspect, InspectInput(document=document))
    assert inspection.page_count == PAGES and inspection.problem is None
    first = await env.run(activities.check_pages, _input(document))
    before = {k: s3.get_object(Bucket=RESULTS, Key=k)["ETag"] for k in _written_chunks(s3)}
    # A whole attempt redone from page 1 (lost heartbeat) converges on the same objects.
    again = await env.run(activities.check_pages, _input(document))
    after = {k: s3.get_object(Bucket=RESULTS, Key=k)["ETag"] for k in _written_chunks(s3)}
    assert before == after
    finalize = _finalize_input(document, inspection, again)
    summary = await env.run(activities.finalize, finalize)
    report = s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read()
    assert_valid_report(report)
    # A retried finalize succeeds and leaves the report as it was.
    retried = await env.run(activities.finalize, finalize)
    assert retried == summary
    assert s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read() == report
    assert summary.verdict == "review" and summary.reasons == ["blank_pages"]
    assert summary.page_count == PAGES == first.pages_checked


async def test_missing_object_is_a_result_not_a_retry(s3: Any) -> None:
    gone = DocumentRef(bucket=DOCS, key="never-uploaded.pdf", etag="abc")
    inspection = await _env([], []).run(_activities(s3).inspect, InspectInput(gone))
    assert inspection.problem == "object_missing"


@pytest.mark.parametrize("operation", ["HeadObject", "GetObject"])
async def test_an_object_s3_refuses_is_a_document_problem_not_twenty_retries(
    s3: Any, document: DocumentRef, operation: str
) -> None:
    # A bucket policy or a KMS key the role may not use: S3 answers 403 to the HEAD, or
    # (a policy on GetObject only) to the download.
    faults = S3Faults(operation, status=403, code="AccessDenied").install(s3)
    activities = _activities(s3)
    inspection = await _env([], []).run(activities.inspect, InspectInput(document))
    assert inspection.problem == "object_forbidden"
    assert inspection.problem_detail is not None and "AccessDenied (403)" in (
        inspection.problem_detail
    )
    assert faults.injected == 1, "not retried: botocore retries no 403, nor does the activity"
    summary = await _env([], []).run(
        activities.finalize,
        FinalizeInput(
            document=document,
            results_bucket=RESULTS,
            results_prefix=PREFIX,
            inspection=inspection,
        ),
    )
    assert summary.verdict == "reject" and summary.reasons == ["object_forbidden"]


async def test_an_object_s3_refuses_mid_check_ends_the_page_check_for_good(
    s3: Any, document: DocumentRef
) -> None:
    # Readable at inspection, refused by the time its pages are checked (another worker
    # downloads it): the workflow reports it like a vanished object.
    S3Faults("GetObject", status=403, code="AccessDenied").install(s3)
    with pytest.raises(ApplicationError) as error:
        await _env([], []).run(_activities(s3).check_pages, _input(document))
    assert error.value.type == "object_forbidden"
    assert error.value.non_retryable
    assert "AccessDenied (403)" in error.value.message


async def test_too_large_object_is_rejected_from_its_head(s3: Any, document: DocumentRef) -> None:
    calls: list[str] = []
    s3.meta.events.register("before-send.s3.*", lambda request, **_: calls.append(request.method))
    activities = _activities(s3, max_document_bytes=1000)
    inspection = await _env([], []).run(activities.inspect, InspectInput(document))
    assert inspection.problem == "too_large"
    assert inspection.size > 1000
    assert calls == ["HEAD"], "nothing may be downloaded"


async def test_a_stored_chunk_that_is_not_this_checks_fails_clearly_for_good(
    s3: Any, document: DocumentRef
) -> None:
    # Another chunk size's file where this layout expects pages 1-10.
    foreign = chunk_bytes({"page": n} for n in range(1, 26))
    s3.put_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 1), Body=foreign)
    with pytest.raises(ApplicationError) as error:
        await _env([], []).run(_activities(s3).check_pages, _input(document))
    assert error.value.type == "result_unusable"
    assert error.value.non_retryable
    assert "holds pages 1-25, not pages 1-10" in error.value.message
    assert chunk_key(PREFIX, 1) in error.value.message
    # The file that was there is never overwritten.
    assert s3.get_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 1))["Body"].read() == foreign


def _count_parsed(activities: DocumentActivities, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every page this worker's parser processes are sent, in the order sent."""
    real_check = activities.pool.check_range
    sent: list[int] = []

    async def check_range(
        path: Any, first: int, last: int, log_extra: Any = None
    ) -> list[dict[str, Any]]:
        sent.extend(range(first, last + 1))
        return await real_check(path, first, last, log_extra)

    monkeypatch.setattr(activities.pool, "check_range", check_range)
    return sent


def _chunk_pages(s3: Any, first: int) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


async def test_stored_chunks_are_never_checked_again_wherever_they_are(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A whole attempt, then the chunk files as a crash leaves them: the checkpoint the
    # server got says 1 chunk, but chunks 3 and 4 were written ahead of it, out of order.
    whole = await _env([], []).run(_activities(s3).check_pages, _input(document))
    for first in (11, 21):
        s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))
    s3.put_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 21), Body=b"")
    s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 21))
    stored = {first: _chunk_pages(s3, first) for first in (1, 31)}
    activities = _activities(s3)
    sent = _count_parsed(activities, monkeypatch)
    heartbeats: list[Any] = []
    checkpoint = Checkpoint(next_page=11, chunks=1, chunk_pages=10)
    env = _env([checkpoint.to_details()], heartbeats)
    result = await env.run(activities.check_pages, _input(document))
    assert sent == list(range(11, 31)), "only the pages of the two chunks not stored"
    assert result.pages_parsed == 20
    assert result.first_page_this_attempt == 11
    assert activities.metrics.pages_from_store._value.get() == 15
    # The folded summary has every page, the stored ones from their files: the same as
    # the whole attempt's, and the stored files are as they were.
    assert result.summary == whole.summary
    assert {first: _chunk_pages(s3, first) for first in (1, 31)} == stored
    assert heartbeats[-1] == {"v": 1, "next_page": PAGES + 1, "chunks": 4, "chunk_pages": 10}


async def test_without_any_checkpoint_the_stored_chunks_are_still_skipped(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed in its first seconds, an attempt leaves no checkpoint on the server: the
    # chunk files it stored are what the next one goes by.
    await _env([], []).run(_activities(s3).check_pages, _input(document))
    s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 31))
    activities = _activities(s3)
    sent = _count_parsed(activities, monkeypatch)
    result = await _env([], []).run(activities.check_pages, _input(document))
    assert sent == list(range(31, PAGES + 1))
    assert result.first_page_this_attempt == 31
    assert result.summary is not None and result.summary["pages"] == PAGES


async def test_a_stored_chunk_that_vanished_is_checked_again(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _env([], []).run(_activities(s3).check_pages, _input(document))
    removed = chunk_key(PREFIX, 11)
    # Listed, then gone before it is read back (a lifecycle rule, a hasty operator).
    real_read = ResultStore.read

    def read(store: ResultStore, key: str) -> bytes | None:
        if key == removed:
            s3.delete_object(Bucket=RESULTS, Key=removed)
        return real_read(store, key)

    monkeypatch.setattr(ResultStore, "read", read)
    activities = _activities(s3)
    sent = _count_parsed(activities, monkeypatch)
    result = await _env([], []).run(activities.check_pages, _input(document))
    assert sent == list(range(11, 21))
    assert result.summary is not None and result.summary["pages"] == PAGES
    assert [page["page"] for page in _chunk_pages(s3, 11)] == list(range(11, 21))


async def test_a_chunk_stored_first_by_another_attempt_stands_and_is_folded(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A zombie attempt (its worker cut off, the server gave up on it) stores chunk 2
    # between this attempt's listing and its own write, with page 12 a timeout there.
    activities = _activities(s3)
    inspection = await _env([], []).run(activities.inspect, InspectInput(document=document))
    theirs: list[dict[str, Any]] = []
    real_write = ResultStore.write_chunk

    def write_chunk(store: ResultStore, prefix: str, pages: list[dict[str, Any]]) -> ChunkWrite:
        if pages[0]["page"] == 11 and not theirs:
            theirs.extend(
                dict(page, error_type="timeout", error="parsing took longer than 0.3 s")
                if page["page"] == 12
                else page
                for page in pages
            )
            real_write(store, prefix, theirs)
        return real_write(store, prefix, pages)

    monkeypatch.setattr(ResultStore, "write_chunk", write_chunk)
    pages = await _env([], []).run(activities.check_pages, _input(document))
    assert activities.metrics.chunk_writes.labels("kept_first")._value.get() == 1
    assert _chunk_pages(s3, 11) == theirs, "the first write stands"
    assert pages.summary is not None and pages.summary["errors"]["pages"] == [12]
    # The report says what the chunk files say, whichever way finalize folds them.
    finalize = _finalize_input(document, inspection, pages)
    summary = await _env([], []).run(activities.finalize, finalize)
    assert sorted(summary.reasons) == ["blank_pages", "page_errors"]
    report = s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read()
    s3.delete_object(Bucket=RESULTS, Key=summary.report_key)
    from_chunks = dataclasses.replace(finalize, pages=dataclasses.replace(pages, summary=None))
    await _env([], []).run(activities.finalize, from_chunks)
    assert s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read() == report


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
    activities = _activities(s3, chunk_pages=2)
    real_check = activities.pool.check_range

    async def check_range(
        path: Any, first: int, last: int, log_extra: Any = None
    ) -> list[dict[str, Any]]:
        parsed[0] += 1
        return await real_check(path, first, last, log_extra)

    monkeypatch.setattr(activities.pool, "check_range", check_range)
    window = ChunkRun.AHEAD_PER_PROCESS * activities.pool.size
    heartbeats: list[Any] = []
    run = asyncio.create_task(_env([], heartbeats).run(activities.check_pages, _input(document, 2)))
    try:

        async def window_full() -> bool:
            return parsed[0] == window and len(_written_chunks(s3)) == window - 1

        await async_wait_for(window_full, 30, f"{window} chunks checked, all but one written")
        await asyncio.sleep(0.5)
        assert parsed[0] == window, "checked past the window while the checkpoint was held"
        assert all(h["next_page"] == 1 for h in heartbeats)
    finally:
        release.set()
    result = await run
    assert result.chunks == math.ceil(PAGES / 2) == parsed[0]
    assert heartbeats[-1]["next_page"] == PAGES + 1


@pytest.mark.parametrize("kinds", ["text and blank", "every kind"])
async def test_a_whole_attempt_hands_finalize_its_summary_with_the_same_report(
    s3: Any, document: DocumentRef, kinds: str
) -> None:
    if kinds == "every kind":
        # Every field of a page result in use (sizes, rotation, images, links, hosts,
        # annotations, widgets, sensitive counts and samples): folded from the pages in
        # memory, they must sum up exactly as they read back from the chunk files.
        pages_kinds = [PAGE_KINDS[i % len(PAGE_KINDS)] for i in range(PAGES)]
        put = s3.put_object(Bucket=DOCS, Key="rich.pdf", Body=make_feature_pdf(pages_kinds))
        document = DocumentRef(bucket=DOCS, key="rich.pdf", version_id=put["VersionId"])
    activities = _activities(s3)
    env = _env([], [])
    inspection = await env.run(activities.inspect, InspectInput(document=document))
    pages = await env.run(activities.check_pages, _input(document))
    assert pages.summary is not None
    assert pages.summary["pages"] == PAGES
    finalize = _finalize_input(document, inspection, pages)
    reads: list[str] = []
    s3.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: reads.append(request.url)
    )
    summary = await env.run(activities.finalize, finalize)
    assert not [url for url in reads if "/pages/" in url], "chunks read back"
    report = s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read()
    # Folded from the chunk files instead, the report is byte for byte the same.
    s3.delete_object(Bucket=RESULTS, Key=summary.report_key)
    reads.clear()
    from_chunks = dataclasses.replace(finalize, pages=dataclasses.replace(pages, summary=None))
    assert await env.run(activities.finalize, from_chunks) == summary
    assert len([url for url in reads if "/pages/" in url]) == pages.chunks
    assert s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read() == report


async def test_a_resumed_attempt_folds_the_stored_chunks_into_its_summary(
    s3: Any, document: DocumentRef
) -> None:
    whole = await _env([], []).run(_activities(s3).check_pages, _input(document))
    for first in (21, 31):
        s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))
    checkpoint = Checkpoint(next_page=21, chunks=2, chunk_pages=10)
    env = _env([checkpoint.to_details()], [])
    result = await env.run(_activities(s3).check_pages, _input(document))
    assert result.first_page_this_attempt == 21
    assert result.summary == whole.summary


async def test_a_summary_too_large_for_the_history_stays_out_of_it(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(activities_module, "MAX_SUMMARY_BYTES", 100)
    result = await _env([], []).run(_activities(s3).check_pages, _input(document))
    assert result.first_page_this_attempt == 1
    assert result.summary is None


@pytest.mark.parametrize("shelve", [True, False])
async def test_a_page_check_after_its_inspection_on_this_worker_downloads_nothing(
    s3: Any, document: DocumentRef, tmp_path: Path, shelve: bool
) -> None:
    downloads: list[str] = []
    s3.meta.events.register(
        "before-send.s3.GetObject",
        lambda request, **_: downloads.append(request.url) if "big.pdf" in request.url else None,
    )
    activities = _activities(s3, spool_dir=str(tmp_path), shelve=shelve)
    env = _env([], [])
    await env.run(activities.inspect, InspectInput(document=document))
    # Kept for the page check only by a worker that checks pages too.
    assert len(os.listdir(tmp_path)) == (1 if shelve else 0)
    result = await env.run(activities.check_pages, _input(document))
    assert result.pages_checked == PAGES
    assert len(downloads) == (1 if shelve else 2)
    assert os.listdir(tmp_path) == []
    assert await open_documents(activities.pool) == [[], []]


def test_the_shelf_pushes_out_the_oldest_and_forgets_what_waited_too_long() -> None:
    documents = [DocumentRef(bucket=DOCS, key=f"{n}.pdf", etag=f"e{n}") for n in range(3)]
    shelf = _Shelf(size=2, linger_s=3600)
    assert shelf.put(documents[0], Path("0")) == []
    assert shelf.put(documents[1], Path("1")) == []
    assert shelf.put(documents[2], Path("2")) == [Path("0")]
    assert shelf.take(documents[0]) is None
    assert shelf.take(dataclasses.replace(documents[1], etag="other")) is None
    assert shelf.take(documents[1]) == Path("1")
    assert shelf.take(documents[1]) is None, "taken: the caller removes it"
    assert shelf.expired() == []
    assert shelf.expired(everything=True) == [Path("2")]
    lingering = _Shelf(size=2, linger_s=0)
    lingering.put(documents[0], Path("0"))
    assert lingering.expired() == [Path("0")]
    assert lingering.take(documents[0]) is None


async def test_a_chunk_is_checked_in_ranges_that_any_process_may_take(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    activities = _activities(s3, chunk_pages=50)
    real_check = activities.pool.check_range
    ranges: list[tuple[int, int]] = []

    async def check_range(
        path: Any, first: int, last: int, log_extra: Any = None
    ) -> list[dict[str, Any]]:
        ranges.append((first, last))
        return await real_check(path, first, last, log_extra)

    monkeypatch.setattr(activities.pool, "check_range", check_range)
    result = await _env([], []).run(activities.check_pages, _input(document, chunk_pages=50))
    assert result.chunks == 1
    # 35 pages for two processes: the ranges shrink towards the end of the document.
    assert sorted(ranges) == [(1, 9), (10, 16), (17, 21), (22, 26), (27, 35)]
    body = s3.get_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 1))["Body"].read()
    assert [json.loads(line)["page"] for line in body.splitlines()] == list(range(1, PAGES + 1))


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


async def test_a_failing_range_fails_the_attempt_with_its_own_error(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    activities = _activities(s3, chunk_pages=50)

    async def check_range(
        path: Any, first: int, last: int, log_extra: Any = None
    ) -> list[dict[str, Any]]:
        if first > 1:
            raise RuntimeError("the parser pool is shut down")
        await asyncio.sleep(5)
        return []

    monkeypatch.setattr(activities.pool, "check_range", check_range)
    with pytest.raises(RuntimeError, match="shut down"):
        await _env([], []).run(activities.check_pages, _input(document, chunk_pages=50))
    assert _written_chunks(s3) == []
