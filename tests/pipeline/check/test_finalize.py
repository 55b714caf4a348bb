"""Write-back exactly once: racing, retried and conflicting finalizers, on moto's S3.

The results bucket is versioned here, so "one report" means one object version, not just
one key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pipeline.check.activities import DocumentActivities
from pipeline.check.activities import inspection_of
from pipeline.check.results import ResultStore
from pipeline.models import REPORT_NAME
from pipeline.models import CheckPagesResult
from pipeline.models import CheckPlan
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.models import FinalizeInput
from pipeline.models import InspectInput
from pipeline.models import InspectResult
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.page_checks import check_pages
from pipeline.policy import VerdictPolicy
from tests.support.activities import PREFIX
from tests.support.activities import RESULTS
from tests.support.activities import finalize_input
from tests.support.activities import make_activities
from tests.support.feature_pdfs import SEEDED
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.reports import assert_valid_report

DOCS = "documents"
CHUNK_PAGES = 5
PAGES = ["text", "sensitive", "blank", "links", "form", "image"] + ["text"] * 6


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in (DOCS, RESULTS):
            client.create_bucket(Bucket=bucket)
            client.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        yield client


@cache
def _pdf() -> bytes:
    return make_feature_pdf(PAGES)


@pytest.fixture
def document(s3: Any) -> DocumentRef:
    put = s3.put_object(Bucket=DOCS, Key="in/case.pdf", Body=_pdf())
    return DocumentRef(bucket=DOCS, key="in/case.pdf", version_id=put["VersionId"])


def _env(workflow_id: str = "docpipe/documents/in/case.pdf@v") -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, workflow_id=workflow_id, heartbeat_timeout=timedelta(seconds=5)
    )
    return env


def _activities(s3: Any, policy: VerdictPolicy | None = None) -> DocumentActivities:
    return make_activities(s3, pool_size=1, chunk_pages=CHUNK_PAGES, policy=policy)


async def _checked(s3: Any, document: DocumentRef) -> FinalizeInput:
    """The state a check is in when finalize runs: inspected, chunk files written.

    Built in-process from the same pure checks the activities run (test_activities runs
    them through the parser processes), which keeps these tests fast.
    """
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "case.pdf"
        path.write_bytes(s3.get_object(Bucket=DOCS, Key=document.key)["Body"].read())
        facts = inspect_document(path)
        plan = CheckPlan(chunk_pages=CHUNK_PAGES, heartbeat_timeout_s=5)
        inspection = inspection_of(facts, size=path.stat().st_size, plan=plan)
        store = ResultStore(s3, RESULTS)
        reader = open_pdf(path)
        chunks = math.ceil(facts.page_count / CHUNK_PAGES)
        for index in range(chunks):
            first = index * CHUNK_PAGES + 1
            last = min(first + CHUNK_PAGES - 1, facts.page_count)
            results = [r.to_json() for r in check_pages(reader, first, last)]
            store.write_chunk(PREFIX, results)
    pages = CheckPagesResult(
        pages_checked=facts.page_count,
        chunks=chunks,
        chunk_pages=CHUNK_PAGES,
        first_page_this_attempt=1,
        attempt=1,
    )
    return finalize_input(document, inspection, pages)


def _report_versions(s3: Any, key: str = f"{PREFIX}/{REPORT_NAME}") -> list[dict[str, Any]]:
    listed = s3.list_object_versions(Bucket=RESULTS, Prefix=key)
    return [v for v in listed.get("Versions", []) if v["Key"] == key]


def _report(s3: Any, key: str = f"{PREFIX}/{REPORT_NAME}") -> bytes:
    body: bytes = s3.get_object(Bucket=RESULTS, Key=key)["Body"].read()
    return body


async def test_racing_finalizers_write_one_report_and_both_succeed(
    s3: Any, document: DocumentRef
) -> None:
    finalize = await _checked(s3, document)
    # Two workers (each its own activities object) reach the conditional put together.
    # S3 then takes one put after the other, and refuses the second; moto's in-process
    # S3 does not (it checks and stores in two steps, and both puts once got through),
    # so the puts are sent one at a time once both have been asked for.
    barrier = threading.Barrier(2, timeout=10)
    one_at_a_time = threading.Lock()
    puts: list[str] = []
    sending: list[str] = []

    def meet(params: dict[str, Any], **_: Any) -> None:
        if params["url_path"].endswith(REPORT_NAME):
            puts.append(threading.current_thread().name)
            barrier.wait()
            one_at_a_time.acquire()
            sending.append(threading.current_thread().name)

    def sent(**_: Any) -> None:
        if sending and sending[-1] == threading.current_thread().name:
            sending.pop()
            one_at_a_time.release()

    s3.meta.events.register("before-call.s3.PutObject", meet)
    s3.meta.events.register("after-call.s3.PutObject", sent)
    first, second = await asyncio.gather(
        _env().run(_activities(s3).finalize, finalize),
        _env().run(_activities(s3).finalize, finalize),
    )
    s3.meta.events.unregister("before-call.s3.PutObject", meet)
    s3.meta.events.unregister("after-call.s3.PutObject", sent)
    assert len(puts) == 2  # both really raced for the put
    assert first == second
    assert first.verdict == "review"
    assert first.reasons == ["blank_pages", "needs_ocr", "sensitive_data"]
    assert len(_report_versions(s3)) == 1
    report = assert_valid_report(_report(s3))
    assert report["verdict"]["verdict"] == first.verdict


async def test_a_retried_finalize_leaves_the_report_alone(s3: Any, document: DocumentRef) -> None:
    finalize = await _checked(s3, document)
    activities = _activities(s3)
    summary = await _env().run(activities.finalize, finalize)
    written = _report(s3)
    (version,) = _report_versions(s3)
    for _ in range(3):
        assert await _env().run(activities.finalize, finalize) == summary
    assert _report(s3) == written
    assert _report_versions(s3) == [version]
    report = assert_valid_report(written)
    assert report["check"] == {
        "workflow_id": "docpipe/documents/in/case.pdf@v",
        "results_prefix": PREFIX,
    }
    assert report["pages"]["chunks"] == [f"{PREFIX}/pages/{n:07d}.jsonl" for n in (1, 6, 11)]


async def test_the_report_is_deterministic(s3: Any, document: DocumentRef) -> None:
    finalize = await _checked(s3, document)
    await _env().run(_activities(s3).finalize, finalize)
    first = _report(s3)
    s3.delete_object(Bucket=RESULTS, Key=f"{PREFIX}/{REPORT_NAME}")
    await _env().run(_activities(s3).finalize, finalize)
    assert _report(s3) == first
    # Canonical JSON, without raw sensitive values.
    assert (
        first
        == json.dumps(
            json.loads(first), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    )
    for values in SEEDED.values():
        for value, _ in values:
            assert value.encode() not in first


async def test_a_different_report_already_there_is_a_non_retryable_conflict(
    s3: Any, document: DocumentRef
) -> None:
    finalize = await _checked(s3, document)
    s3.put_object(Bucket=RESULTS, Key=f"{PREFIX}/{REPORT_NAME}", Body=b'{"other": 1}')
    with pytest.raises(ApplicationError) as info:
        await _env().run(_activities(s3).finalize, finalize)
    assert info.value.type == "result_conflict"
    assert info.value.non_retryable
    assert _report(s3) == b'{"other": 1}'


async def test_the_policy_is_fixed_at_inspection(s3: Any, document: DocumentRef) -> None:
    strict = VerdictPolicy(reject=("sensitive_data",))
    inspection = await _env().run(_activities(s3, strict).inspect, InspectInput(document=document))
    assert inspection.plan.policy == strict
    finalize = dataclasses.replace(await _checked(s3, document), inspection=inspection)
    # A worker with the default policy finalizes a check inspected under the strict one.
    summary: CheckSummary = await _env().run(_activities(s3).finalize, finalize)
    assert summary.verdict == "reject"
    report = assert_valid_report(_report(s3))
    assert "sensitive_data" in report["policy"]["reject"]


async def test_inspection_travels_through_temporal_payloads(s3: Any, document: DocumentRef) -> None:
    inspection = await _env().run(
        _activities(s3, VerdictPolicy(ignore=())).inspect, InspectInput(document=document)
    )
    assert inspection.features.acroform is True
    converter = DataConverter.default
    payloads = await converter.encode([inspection])
    # Small: workflow history holds it.
    assert sum(len(p.data) for p in payloads) < 2000
    (decoded,) = await converter.decode(payloads, [InspectResult])
    assert decoded == inspection


async def test_a_document_problem_gets_a_valid_report(s3: Any) -> None:
    put = s3.put_object(Bucket=DOCS, Key="in/not.pdf", Body=b"not a pdf at all")
    document = DocumentRef(bucket=DOCS, key="in/not.pdf", version_id=put["VersionId"])
    activities = _activities(s3)
    inspection = await _env().run(activities.inspect, InspectInput(document=document))
    summary = await _env().run(
        activities.finalize,
        FinalizeInput(
            document=document, results_bucket=RESULTS, results_prefix=PREFIX, inspection=inspection
        ),
    )
    assert (summary.verdict, summary.reasons) == ("reject", ["not_pdf"])
    report = assert_valid_report(_report(s3))
    assert report["pages"]["chunks"] == []


async def test_a_gone_or_replaced_version_gets_a_valid_report(s3: Any) -> None:
    put = s3.put_object(Bucket=DOCS, Key="in/moving.pdf", Body=_pdf())
    activities = _activities(s3)
    cases = {
        # The ETag the check was started for is no longer the object's.
        "object_changed": DocumentRef(bucket=DOCS, key="in/moving.pdf", etag='"0000"'),
        "object_missing": DocumentRef(bucket=DOCS, key="in/never.pdf", etag='"0000"'),
    }
    assert put["ETag"] != '"0000"'
    for number, (reason, document) in enumerate(sorted(cases.items()), start=1):
        inspection = await _env().run(activities.inspect, InspectInput(document=document))
        assert inspection.problem == reason
        prefix = f"{PREFIX}/{number}"
        summary = await _env().run(
            activities.finalize,
            FinalizeInput(
                document=document,
                results_bucket=RESULTS,
                results_prefix=prefix,
                inspection=inspection,
            ),
        )
        assert (summary.verdict, summary.reasons) == ("reject", [reason])
        report = assert_valid_report(_report(s3, f"{prefix}/{REPORT_NAME}"))
        assert report["facts"]["problem"] == reason
