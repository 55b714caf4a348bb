"""``check_document``: a small document inspected, checked and reported in one activity;
a larger one handed on inspected. ActivityEnvironment against moto's in-process S3."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pipeline.check.activities import DocumentActivities
from pipeline.check.results import chunk_key
from pipeline.models import REPORT_NAME
from pipeline.models import CheckPagesInput
from pipeline.models import CheckSummary
from pipeline.models import DocumentOutcome
from pipeline.models import DocumentRef
from pipeline.policy import DEFAULT_IGNORE
from pipeline.policy import VerdictPolicy
from tests.support.activities import DOCS
from tests.support.activities import RESULTS
from tests.support.activities import document_input
from tests.support.activities import in_process_s3
from tests.support.activities import make_activities
from tests.support.pdfs import make_pdf
from tests.support.pool import open_documents
from tests.support.reports import assert_valid_report

PREFIX = "out/doc"
# Blank pages are reported, but no reason for review.
LENIENT = VerdictPolicy(ignore=(*DEFAULT_IGNORE, "blank_pages"))
CHUNK_PAGES = 10


@pytest.fixture
def s3() -> Iterator[Any]:
    with in_process_s3() as client:
        yield client


_made: list[DocumentActivities] = []


@pytest.fixture(autouse=True)
def _stop_parsers() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def _activities(s3: Any, **options: Any) -> DocumentActivities:
    made = make_activities(s3, chunk_pages=CHUNK_PAGES, **options)
    _made.append(made)
    return made


def _upload(s3: Any, pages: int, key: str = "small.pdf") -> DocumentRef:
    body = make_pdf(["text"] * (pages - 1) + ["blank"])
    put = s3.put_object(Bucket=DOCS, Key=key, Body=body)
    return DocumentRef(bucket=DOCS, key=key, version_id=put["VersionId"])


def _env(attempt: int = 1, workflow_id: str = "wf-1") -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, heartbeat_timeout=timedelta(seconds=5), attempt=attempt, workflow_id=workflow_id
    )
    return env


def _keys(s3: Any) -> list[str]:
    listed = s3.list_objects_v2(Bucket=RESULTS, Prefix=f"{PREFIX}/")
    return sorted(obj["Key"] for obj in listed.get("Contents", []))


def _calls(s3: Any, operation: str) -> list[str]:
    calls: list[str] = []
    s3.meta.events.register(
        f"before-send.s3.{operation}", lambda request, **_: calls.append(request.url)
    )
    return calls


async def test_a_small_document_is_checked_and_reported_in_one_activity(s3: Any) -> None:
    document = _upload(s3, pages=4)
    downloads, listings = _calls(s3, "GetObject"), _calls(s3, "ListObjectsV2")
    activities = _activities(s3)
    outcome: DocumentOutcome = await _env().run(activities.check_document, document_input(document))
    assert outcome.inspection is None and outcome.summary is not None
    summary = outcome.summary
    assert (summary.verdict, summary.reasons, summary.page_count) == ("review", ["blank_pages"], 4)
    assert outcome.pages_checked == 4
    assert _keys(s3) == [chunk_key(PREFIX, 1), f"{PREFIX}/{REPORT_NAME}"]
    report = s3.get_object(Bucket=RESULTS, Key=summary.report_key)["Body"].read()
    assert_valid_report(report)
    assert json.loads(report)["checks"]["blank_pages"]["pages"] == [4]
    # One download, no listing on a first attempt, nothing left open or spooled.
    assert len([url for url in downloads if "small.pdf" in url]) == 1
    assert [url for url in listings if "pages" in url] == []
    assert await open_documents(activities.pool) == [[], []]


async def test_a_larger_document_comes_back_inspected_and_shelved(s3: Any, tmp_path: Path) -> None:
    document = _upload(s3, pages=CHUNK_PAGES + 1, key="larger.pdf")
    activities = _activities(s3, spool_dir=str(tmp_path))
    outcome = await _env().run(activities.check_document, document_input(document))
    assert outcome.summary is None and outcome.inspection is not None
    assert outcome.inspection.page_count == CHUNK_PAGES + 1
    assert _keys(s3) == []
    # Kept for its page check on this worker.
    assert len(os.listdir(tmp_path)) == 1
    pages = CheckPagesInput(
        document=document,
        results_bucket=RESULTS,
        results_prefix=PREFIX,
        page_count=CHUNK_PAGES + 1,
        chunk_pages=CHUNK_PAGES,
    )
    result = await _env().run(activities.check_pages, pages)
    assert result.pages_checked == CHUNK_PAGES + 1
    assert os.listdir(tmp_path) == []


async def test_a_missing_object_is_reported_without_another_step(s3: Any) -> None:
    gone = DocumentRef(bucket=DOCS, key="never-uploaded.pdf", etag="abc")
    outcome = await _env().run(_activities(s3).check_document, document_input(gone))
    assert outcome.summary is not None
    assert (outcome.summary.verdict, outcome.summary.reasons) == ("reject", ["object_missing"])
    assert outcome.pages_checked == 0
    assert _keys(s3) == [f"{PREFIX}/{REPORT_NAME}"]


async def test_a_retry_converges_on_the_same_objects_and_lists_what_is_stored(s3: Any) -> None:
    document = _upload(s3, pages=3)
    activities = _activities(s3)
    first = await _env().run(activities.check_document, document_input(document))
    before = {k: s3.head_object(Bucket=RESULTS, Key=k)["ETag"] for k in _keys(s3)}
    listings = _calls(s3, "ListObjectsV2")
    again = await _env(attempt=2).run(activities.check_document, document_input(document))
    assert again == first
    assert {k: s3.head_object(Bucket=RESULTS, Key=k)["ETag"] for k in _keys(s3)} == before
    # A retry looks for the chunk an earlier attempt stored, and parses nothing again.
    assert len([url for url in listings if "pages" in url]) == 1


async def test_the_first_report_of_this_check_stands_when_a_retry_judges_otherwise(
    s3: Any,
) -> None:
    # Attempt 1 wrote its report, then its worker died. Attempt 2 inspects under a policy
    # (or a load) that judges otherwise: the report written first stands.
    document = _upload(s3, pages=3)
    first = await _env().run(_activities(s3).check_document, document_input(document))
    assert first.summary is not None and first.summary.verdict == "review"
    report = s3.get_object(Bucket=RESULTS, Key=first.summary.report_key)["Body"].read()
    lenient = _activities(s3, policy=LENIENT)
    again = await _env(attempt=2).run(lenient.check_document, document_input(document))
    assert again.summary == first.summary
    assert s3.get_object(Bucket=RESULTS, Key=first.summary.report_key)["Body"].read() == report


async def test_a_report_of_another_check_is_a_conflict_for_good(s3: Any) -> None:
    document = _upload(s3, pages=3)
    await _env(workflow_id="another-check").run(
        _activities(s3).check_document, document_input(document)
    )
    s3.delete_object(Bucket=RESULTS, Key=chunk_key(PREFIX, 1))
    lenient = _activities(s3, policy=LENIENT)
    with pytest.raises(ApplicationError) as failure:
        await _env().run(lenient.check_document, document_input(document))
    assert failure.value.type == "result_conflict" and failure.value.non_retryable


class _Publisher:
    """Stands in for the worker's results-event publisher: records what it sends and
    whether the report the event points at was in S3 at that moment; or fails."""

    def __init__(self, s3: Any, error: Exception | None = None) -> None:
        self.s3 = s3
        self.error = error
        self.sent: list[tuple[DocumentRef, CheckSummary, str | None]] = []
        self.report_stored_when_sent: list[bool] = []

    async def send(
        self, document: DocumentRef, summary: CheckSummary, workflow_id: str | None
    ) -> None:
        if self.error is not None:
            raise self.error
        self.sent.append((document, summary, workflow_id))
        stored = self.s3.list_objects_v2(Bucket=RESULTS, Prefix=summary.report_key)
        self.report_stored_when_sent.append(
            any(obj["Key"] == summary.report_key for obj in stored.get("Contents", []))
        )


async def test_the_results_event_of_a_small_document_is_sent_once_its_report_is_written(
    s3: Any,
) -> None:
    document = _upload(s3, pages=2)
    publisher = _Publisher(s3)
    activities = _activities(s3, publisher=publisher)
    outcome = await _env().run(activities.check_document, document_input(document))
    assert outcome.published and outcome.summary is not None
    (sent,) = publisher.sent
    assert sent == (document, outcome.summary, "wf-1")
    # When the event went out, the report it points at was already there.
    assert publisher.report_stored_when_sent == [True]


async def test_a_broker_that_fails_leaves_the_event_to_the_workflow(s3: Any) -> None:
    document = _upload(s3, pages=2)
    activities = _activities(s3, publisher=_Publisher(s3, ConnectionError("no broker")))
    outcome = await _env().run(activities.check_document, document_input(document))
    assert outcome.summary is not None and outcome.summary.verdict == "review"
    assert not outcome.published


async def test_a_larger_document_sends_no_event_from_its_inspection(s3: Any) -> None:
    document = _upload(s3, pages=CHUNK_PAGES + 1, key="larger.pdf")
    publisher = _Publisher(s3)
    activities = _activities(s3, publisher=publisher)
    outcome = await _env().run(activities.check_document, document_input(document))
    assert outcome.inspection is not None and not outcome.published
    assert publisher.sent == []
