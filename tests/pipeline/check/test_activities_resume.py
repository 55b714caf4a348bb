"""check_pages resumed: stored chunks stand, are never checked again, and fold into the
summary finalize reports from. Activities in ActivityEnvironment against moto's S3."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pipeline.check import activities as activities_module
from pipeline.check.checkpoint import Checkpoint
from pipeline.check.results import ChunkWrite
from pipeline.check.results import ResultStore
from pipeline.check.results import chunk_key
from pipeline.models import CheckPagesResult
from pipeline.models import DocumentRef
from pipeline.models import InspectInput
from tests.support.activities import DOCS
from tests.support.activities import PAGES
from tests.support.activities import PREFIX
from tests.support.activities import RESULTS
from tests.support.activities import count_parsed
from tests.support.activities import finalize_input
from tests.support.activities import pages_input
from tests.support.activities import retry_env
from tests.support.activities import stored_chunk_pages
from tests.support.activities import tracked_activities
from tests.support.activities import written_chunks
from tests.support.feature_pdfs import PAGE_KINDS
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.reports import assert_valid_report


async def test_resume_lists_only_the_chunks_after_its_checkpoint(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    await retry_env([], []).run(tracked_activities(s3).check_pages, pages_input(document))
    for first in (21, 31):
        s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))
    listings: list[str] = []
    s3.meta.events.register(
        "before-send.s3.ListObjectsV2", lambda request, **_: listings.append(request.url)
    )
    activities = tracked_activities(s3)
    sent = count_parsed(activities, monkeypatch)
    heartbeats: list[Any] = []
    checkpoint = Checkpoint(next_page=21, chunks=2, chunk_pages=10)
    env = retry_env([checkpoint.to_details()], heartbeats)
    result: CheckPagesResult = await env.run(activities.check_pages, pages_input(document))
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
    env = retry_env(details, [])
    result = await env.run(tracked_activities(s3).check_pages, pages_input(document))
    assert result.first_page_this_attempt == 1
    assert written_chunks(s3) == [chunk_key(PREFIX, p) for p in (1, 11, 21, 31)]


async def test_resume_keeps_the_layout_of_the_checkpoint(s3: Any, document: DocumentRef) -> None:
    # A worker configured with another chunk size continues the document's layout.
    await retry_env([], []).run(
        tracked_activities(s3, chunk_pages=7).check_pages, pages_input(document, 7)
    )
    for first in (8, 15, 22, 29):
        s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))
    checkpoint = Checkpoint(next_page=8, chunks=1, chunk_pages=7)
    env = retry_env([checkpoint.to_details()], [])
    result = await env.run(
        tracked_activities(s3, chunk_pages=50).check_pages, pages_input(document, chunk_pages=50)
    )
    assert result.chunk_pages == 7
    assert result.pages_parsed == PAGES - 7
    assert written_chunks(s3) == [chunk_key(PREFIX, p) for p in (1, 8, 15, 22, 29)]


async def test_redone_attempt_and_finalize_write_each_result_once(
    s3: Any, document: DocumentRef
) -> None:
    activities = tracked_activities(s3)
    env = retry_env([], [])
    inspection = await env.run(activities.inspect, InspectInput(document=document))
    assert inspection.page_count == PAGES and inspection.problem is None
    first = await env.run(activities.check_pages, pages_input(document))
    before = {k: s3.get_object(Bucket=RESULTS, Key=k)["ETag"] for k in written_chunks(s3)}
    # A whole attempt redone from page 1 (lost heartbeat) converges on the same objects.
    again = await env.run(activities.check_pages, pages_input(document))
    after = {k: s3.get_object(Bucket=RESULTS, Key=k)["ETag"] for k in written_chunks(s3)}
    assert before == after
    finalize = finalize_input(document, inspection, again)
    summary = await env.run(activities.finalize, finalize)
    report = s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read()
    assert_valid_report(report)
    # A retried finalize succeeds and leaves the report as it was.
    retried = await env.run(activities.finalize, finalize)
    assert retried == summary
    assert s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read() == report
    assert summary.verdict == "review" and summary.reasons == ["blank_pages"]
    assert summary.page_count == PAGES == first.pages_checked


async def test_stored_chunks_are_never_checked_again_wherever_they_are(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A whole attempt, then the chunk files as a crash leaves them: the checkpoint the
    # server got says 1 chunk, but chunks 3 and 4 were written ahead of it, out of order.
    whole = await retry_env([], []).run(tracked_activities(s3).check_pages, pages_input(document))
    for first in (11, 21):
        s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))
    s3.put_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 21), Body=b"")
    s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 21))
    stored = {first: stored_chunk_pages(s3, first) for first in (1, 31)}
    activities = tracked_activities(s3)
    sent = count_parsed(activities, monkeypatch)
    heartbeats: list[Any] = []
    checkpoint = Checkpoint(next_page=11, chunks=1, chunk_pages=10)
    env = retry_env([checkpoint.to_details()], heartbeats)
    result = await env.run(activities.check_pages, pages_input(document))
    assert sent == list(range(11, 31)), "only the pages of the two chunks not stored"
    assert result.pages_parsed == 20
    assert result.first_page_this_attempt == 11
    assert activities.metrics.pages_from_store._value.get() == 15
    # The folded summary has every page, the stored ones from their files: the same as
    # the whole attempt's, and the stored files are as they were.
    assert result.summary == whole.summary
    assert {first: stored_chunk_pages(s3, first) for first in (1, 31)} == stored
    assert heartbeats[-1] == {"v": 1, "next_page": PAGES + 1, "chunks": 4, "chunk_pages": 10}


async def test_without_any_checkpoint_the_stored_chunks_are_still_skipped(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed in its first seconds, an attempt leaves no checkpoint on the server: the
    # chunk files it stored are what the next one goes by.
    await retry_env([], []).run(tracked_activities(s3).check_pages, pages_input(document))
    s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 31))
    activities = tracked_activities(s3)
    sent = count_parsed(activities, monkeypatch)
    result = await retry_env([], []).run(activities.check_pages, pages_input(document))
    assert sent == list(range(31, PAGES + 1))
    assert result.first_page_this_attempt == 31
    assert result.summary is not None and result.summary["pages"] == PAGES


async def test_a_stored_chunk_that_vanished_is_checked_again(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    await retry_env([], []).run(tracked_activities(s3).check_pages, pages_input(document))
    removed = chunk_key(PREFIX, 11)
    # Listed, then gone before it is read back (a lifecycle rule, a hasty operator).
    real_read = ResultStore.read

    def read(store: ResultStore, key: str) -> bytes | None:
        if key == removed:
            s3.delete_object(Bucket=RESULTS, Key=removed)
        return real_read(store, key)

    monkeypatch.setattr(ResultStore, "read", read)
    activities = tracked_activities(s3)
    sent = count_parsed(activities, monkeypatch)
    result = await retry_env([], []).run(activities.check_pages, pages_input(document))
    assert sent == list(range(11, 21))
    assert result.summary is not None and result.summary["pages"] == PAGES
    assert [page["page"] for page in stored_chunk_pages(s3, 11)] == list(range(11, 21))


async def test_a_chunk_stored_first_by_another_attempt_stands_and_is_folded(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A zombie attempt (its worker cut off, the server gave up on it) stores chunk 2
    # between this attempt's listing and its own write, with page 12 a timeout there.
    activities = tracked_activities(s3)
    inspection = await retry_env([], []).run(activities.inspect, InspectInput(document=document))
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
    pages = await retry_env([], []).run(activities.check_pages, pages_input(document))
    assert activities.metrics.chunk_writes.labels("kept_first")._value.get() == 1
    assert stored_chunk_pages(s3, 11) == theirs, "the first write stands"
    assert pages.summary is not None and pages.summary["errors"]["pages"] == [12]
    # The report says what the chunk files say, whichever way finalize folds them.
    finalize = finalize_input(document, inspection, pages)
    summary = await retry_env([], []).run(activities.finalize, finalize)
    assert sorted(summary.reasons) == ["blank_pages", "page_errors"]
    report = s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read()
    s3.delete_object(Bucket=RESULTS, Key=summary.report_key)
    from_chunks = dataclasses.replace(finalize, pages=dataclasses.replace(pages, summary=None))
    await retry_env([], []).run(activities.finalize, from_chunks)
    assert s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read() == report


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
    activities = tracked_activities(s3)
    env = retry_env([], [])
    inspection = await env.run(activities.inspect, InspectInput(document=document))
    pages = await env.run(activities.check_pages, pages_input(document))
    assert pages.summary is not None
    assert pages.summary["pages"] == PAGES
    finalize = finalize_input(document, inspection, pages)
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
    whole = await retry_env([], []).run(tracked_activities(s3).check_pages, pages_input(document))
    for first in (21, 31):
        s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))
    checkpoint = Checkpoint(next_page=21, chunks=2, chunk_pages=10)
    env = retry_env([checkpoint.to_details()], [])
    result = await env.run(tracked_activities(s3).check_pages, pages_input(document))
    assert result.first_page_this_attempt == 21
    assert result.summary == whole.summary


async def test_a_summary_too_large_for_the_history_stays_out_of_it(
    s3: Any, document: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(activities_module, "MAX_SUMMARY_BYTES", 100)
    result = await retry_env([], []).run(tracked_activities(s3).check_pages, pages_input(document))
    assert result.first_page_this_attempt == 1
    assert result.summary is None
