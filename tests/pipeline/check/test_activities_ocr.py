"""Page checks of scans: heartbeats flow while a page is read by OCR; and with
``ocr_elsewhere``, a chunk with a page to OCR is neither stored nor folded, and the OCR
queue's page check then checks only it. ActivityEnvironment against moto's in-process S3."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from pipeline.check.results import chunk_key
from pipeline.models import DocumentRef
from tests.support.activities import DOCS
from tests.support.activities import PAGES
from tests.support.activities import PREFIX
from tests.support.activities import RESULTS
from tests.support.activities import count_parsed
from tests.support.activities import document_input
from tests.support.activities import pages_input
from tests.support.activities import retry_env
from tests.support.activities import stored_chunk_pages
from tests.support.activities import tracked_activities
from tests.support.activities import written_chunks
from tests.support.pdfs import make_pdf
from tests.support.pool import pages_in_progress
from tests.support.scans import scanned_document

# Page 25 is a scan (an image, no text): chunk 21-30 needs OCR.
SCANNED_PAGE = 25


def _upload(s3: Any, kinds: list[str], key: str) -> DocumentRef:
    put = s3.put_object(Bucket=DOCS, Key=key, Body=make_pdf(kinds))
    return DocumentRef(bucket=DOCS, key=key, version_id=put["VersionId"])


@pytest.fixture
def partly_scanned(s3: Any) -> DocumentRef:
    kinds = ["text"] * PAGES
    kinds[SCANNED_PAGE - 1] = "image"
    return _upload(s3, kinds, "partly-scanned.pdf")


async def test_a_chunk_to_ocr_is_left_unstored_and_the_ocr_queue_checks_only_it(
    s3: Any, partly_scanned: DocumentRef, monkeypatch: pytest.MonkeyPatch
) -> None:
    page_worker = tracked_activities(s3)
    leaving = dataclasses.replace(pages_input(partly_scanned), ocr_elsewhere=True)
    first = await retry_env([], []).run(page_worker.check_pages, leaving)
    assert first.chunks_for_ocr == 1
    assert first.pages_checked == PAGES - 10
    assert first.summary is None, "a partial fold must not reach finalize"
    stored = [chunk_key(PREFIX, page) for page in (1, 11, 31)]
    assert written_chunks(s3) == stored

    ocr_worker = tracked_activities(s3)
    sent = count_parsed(ocr_worker, monkeypatch)
    second = await retry_env([], []).run(ocr_worker.check_pages, pages_input(partly_scanned))
    assert sorted(sent) == list(range(21, 31))
    assert second.chunks_for_ocr == 0 and second.pages_checked == PAGES
    assert second.summary is not None
    assert written_chunks(s3) == sorted([*stored, chunk_key(PREFIX, 21)])


async def test_a_text_document_is_stored_whole_by_the_page_queue(
    s3: Any, document: DocumentRef
) -> None:
    activities = tracked_activities(s3)
    leaving = dataclasses.replace(pages_input(document), ocr_elsewhere=True)
    result = await retry_env([], []).run(activities.check_pages, leaving)
    assert result.chunks_for_ocr == 0 and result.pages_checked == PAGES
    assert result.summary is not None
    assert len(written_chunks(s3)) == 4


async def test_check_document_hands_a_small_scan_to_the_ocr_queue_unchecked(s3: Any) -> None:
    scan = _upload(s3, ["text", "image", "text"], "small-scan.pdf")
    activities = tracked_activities(s3)
    env = ActivityEnvironment()
    outcome = await env.run(
        activities.check_document,
        document_input(scan, ocr_elsewhere=True),
    )
    assert outcome.summary is None and outcome.chunks_for_ocr == 1
    assert outcome.inspection is not None and outcome.inspection.page_count == 3
    listed = s3.list_objects_v2(Bucket=RESULTS, Prefix=PREFIX)
    assert listed.get("Contents", []) == [], "nothing stored, no report"


async def test_check_document_reports_a_small_text_document_as_ever(s3: Any) -> None:
    text = _upload(s3, ["text", "blank", "text"], "small-text.pdf")
    activities = tracked_activities(s3)
    outcome = await ActivityEnvironment().run(
        activities.check_document,
        document_input(text, ocr_elsewhere=True),
    )
    assert outcome.summary is not None and outcome.chunks_for_ocr == 0
    assert outcome.pages_checked == 3


async def test_heartbeats_are_sent_while_a_parser_process_reads_a_page_by_ocr(s3: Any) -> None:
    # A dense page at 200 dpi: OCR takes the better part of a second of CPU on it.
    scan = s3.put_object(Bucket=DOCS, Key="dense.pdf", Body=scanned_document(1))
    document = DocumentRef(bucket=DOCS, key="dense.pdf", version_id=scan["VersionId"])
    activities = tracked_activities(s3)
    beats: list[list[int]] = []
    env = ActivityEnvironment()
    # A beat every 50 ms: a page that takes a tenth of a second sees two.
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=0.2))
    env.on_heartbeat = lambda *details: beats.append(pages_in_progress(activities.pool))
    single = dataclasses.replace(pages_input(document), page_count=1)
    result = await env.run(activities.check_pages, single)
    assert result.pages_checked == 1
    while_read = [beat for beat in beats if 1 in beat]
    assert len(while_read) >= 2, f"{len(while_read)} heartbeats while page 1 was read"
    (page,) = stored_chunk_pages(s3, 1)
    assert page["text_source"] == "ocr"
