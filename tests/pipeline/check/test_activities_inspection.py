"""inspect: what S3 refuses or holds too large is a document problem, and an inspected
document is kept for its page check. Activities in ActivityEnvironment against moto's S3."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.check.spool import _Shelf
from pipeline.models import DocumentRef
from pipeline.models import FinalizeInput
from pipeline.models import InspectInput
from tests.support.activities import DOCS
from tests.support.activities import PAGES
from tests.support.activities import PREFIX
from tests.support.activities import RESULTS
from tests.support.activities import pages_input
from tests.support.activities import retry_env
from tests.support.activities import tracked_activities
from tests.support.pool import open_documents
from tests.support.s3_faults import S3Faults


async def test_missing_object_is_a_result_not_a_retry(s3: Any) -> None:
    gone = DocumentRef(bucket=DOCS, key="never-uploaded.pdf", etag="abc")
    inspection = await retry_env([], []).run(tracked_activities(s3).inspect, InspectInput(gone))
    assert inspection.problem == "object_missing"


@pytest.mark.parametrize("operation", ["HeadObject", "GetObject"])
async def test_an_object_s3_refuses_is_a_document_problem_not_twenty_retries(
    s3: Any, document: DocumentRef, operation: str
) -> None:
    # A bucket policy or a KMS key the role may not use: S3 answers 403 to the HEAD, or
    # (a policy on GetObject only) to the download.
    faults = S3Faults(operation, status=403, code="AccessDenied").install(s3)
    activities = tracked_activities(s3)
    inspection = await retry_env([], []).run(activities.inspect, InspectInput(document))
    assert inspection.problem == "object_forbidden"
    assert inspection.problem_detail is not None and "AccessDenied (403)" in (
        inspection.problem_detail
    )
    assert faults.injected == 1, "not retried: botocore retries no 403, nor does the activity"
    summary = await retry_env([], []).run(
        activities.finalize,
        FinalizeInput(
            document=document,
            results_bucket=RESULTS,
            results_prefix=PREFIX,
            inspection=inspection,
        ),
    )
    assert summary.verdict == "reject" and summary.reasons == ["object_forbidden"]


async def test_too_large_object_is_rejected_from_its_head(s3: Any, document: DocumentRef) -> None:
    calls: list[str] = []
    s3.meta.events.register("before-send.s3.*", lambda request, **_: calls.append(request.method))
    activities = tracked_activities(s3, max_document_bytes=1000)
    inspection = await retry_env([], []).run(activities.inspect, InspectInput(document))
    assert inspection.problem == "too_large"
    assert inspection.size > 1000
    assert calls == ["HEAD"], "nothing may be downloaded"


@pytest.mark.parametrize("shelve", [True, False])
async def test_a_page_check_after_its_inspection_on_this_worker_downloads_nothing(
    s3: Any, document: DocumentRef, tmp_path: Path, shelve: bool
) -> None:
    downloads: list[str] = []
    s3.meta.events.register(
        "before-send.s3.GetObject",
        lambda request, **_: downloads.append(request.url) if "big.pdf" in request.url else None,
    )
    activities = tracked_activities(s3, spool_dir=str(tmp_path), shelve=shelve)
    env = retry_env([], [])
    await env.run(activities.inspect, InspectInput(document=document))
    # Kept for the page check only by a worker that checks pages too.
    assert len(os.listdir(tmp_path)) == (1 if shelve else 0)
    result = await env.run(activities.check_pages, pages_input(document))
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
