"""Results out, on the real stack: the results event, its redelivery, re-checks, reports.

Checks are started the way the intake starts them (no consumer needed here), and the
operator commands run as a person runs them: ``docpipe reprocess`` and ``docpipe report``
in their own processes.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from typing import Any

from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from app.reprocess import original_request
from infra.clients import kafka_kwargs
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import Settings
from pipeline.check.publish import ResultPublisher
from pipeline.models import REPORT_NAME
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.models import PublishResultInput
from pipeline.models import recheck_results_prefix
from pipeline.models import recheck_workflow_id
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.commands import run_docpipe
from tests.support.commands import settings_env
from tests.support.pdfs import make_pdf
from tests.support.reports import assert_valid_report
from tests.support.reports import read_topic


def _upload(settings: Settings, key: str, pages: list[str]) -> DocumentRef:
    bucket = settings.s3.documents_buckets[0]
    put = s3_client(settings.s3).put_object(Bucket=bucket, Key=key, Body=make_pdf(pages))
    return DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"])


@dataclasses.dataclass(frozen=True)
class _Checked:
    """A document checked by a running worker, and its report as first written."""

    client: Client
    document: DocumentRef
    summary: CheckSummary
    report: tuple[bytes, list[Any]]


async def _check_with_worker(
    settings: Settings, start_component: StartComponent, key: str
) -> _Checked:
    """Start a worker, then upload and check a three-page document with one blank page.

    The report it writes is asserted valid before anything else is done with it.
    """
    start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    document = _upload(settings, key, ["text", "blank", "text"])
    summary = await (await start_check(client, settings, document)).result()
    report = _object(settings, summary.report_key)
    assert_valid_report(report[0])
    return _Checked(client=client, document=document, summary=summary, report=report)


def _docpipe(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_docpipe(args, settings_env(settings), timeout_s=120)


def _object(settings: Settings, key: str) -> tuple[bytes, list[Any]]:
    """An object's bytes and every version of it."""
    s3 = s3_client(settings.s3)
    body = s3.get_object(Bucket=settings.s3.results_bucket, Key=key)["Body"].read()
    listed = s3.list_object_versions(Bucket=settings.s3.results_bucket, Prefix=key)
    versions = [
        (v.get("VersionId"), v["ETag"], v["LastModified"])
        for v in listed.get("Versions", [])
        if v["Key"] == key
    ]
    return body, versions


async def test_a_redelivered_results_event_is_the_same_event(
    settings: Settings, start_component: StartComponent
) -> None:
    checked = await _check_with_worker(settings, start_component, "results/redelivered.pdf")
    document, summary, report_before = checked.document, checked.summary, checked.report

    (first,) = await read_topic(settings, settings.kafka.results_topic, count=1)
    # The same activity, retried (a lost acknowledgement): it publishes again.
    publisher = ResultPublisher(
        topic=settings.kafka.results_topic, producer_kwargs=kafka_kwargs(settings.kafka)
    )
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=document.workflow_id)
    try:
        await env.run(publisher.publish_result, PublishResultInput(document, summary))
    finally:
        await publisher.close()

    events = await read_topic(settings, settings.kafka.results_topic, count=2)
    assert len(events) == 2
    assert {e.key for e in events} == {document.document_id.encode()}
    assert events[0].value == events[1].value == first.value
    assert events[0].partition == events[1].partition
    announced = json.loads(first.value)
    assert announced == {
        "event_version": 1,
        "document": {
            "id": document.document_id,
            "bucket": document.bucket,
            "key": document.key,
            "version_id": document.version_id,
            "etag": None,
        },
        "workflow_id": document.workflow_id,
        "verdict": "review",
        "reasons": ["blank_pages"],
        "page_count": 3,
        "report": {
            "bucket": settings.s3.results_bucket,
            "key": summary.report_key,
            "url": f"s3://{settings.s3.results_bucket}/{summary.report_key}",
        },
    }
    # Publishing never touches the report.
    assert _object(settings, summary.report_key) == report_before


async def test_reprocess_and_report_commands(
    settings: Settings, start_component: StartComponent
) -> None:
    checked = await _check_with_worker(settings, start_component, "rechecks/doc.pdf")
    client, document = checked.client, checked.document
    original, original_report = checked.summary, checked.report
    prefix = document.results_prefix(settings.s3.results_prefix)

    # By document ID, waiting for the verdict.
    done = _docpipe(settings, "reprocess", document.document_id, "--wait")
    assert done.returncode == 0, done.stderr
    first_id = recheck_workflow_id(document.workflow_id, 1)
    first_key = f"{recheck_results_prefix(prefix, 1)}/{REPORT_NAME}"
    lines = done.stdout.splitlines()
    assert lines[0] == f"re-check 1 of {document.document_id}"
    assert f"  workflow  {first_id}" in lines
    assert f"  report    s3://{settings.s3.results_bucket}/{first_key}" in lines
    assert lines[-1] == "verdict   review  blank_pages"

    # Its own workflow, for the same object version, writing elsewhere.
    handle = client.get_workflow_handle(first_id, result_type=CheckSummary)
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    recheck = await handle.result()
    assert recheck.report_key == first_key
    request = await original_request(client, first_id)
    assert request is not None and request.document == document
    # The first report is untouched; the re-check's says the same about the document.
    assert _object(settings, original.report_key) == original_report
    first_report = assert_valid_report(_object(settings, first_key)[0])
    before = json.loads(original_report[0])
    assert first_report["check"] == {
        "workflow_id": first_id,
        "results_prefix": recheck_results_prefix(prefix, 1),
    }
    for section in ("document", "facts", "checks", "verdict", "policy"):
        assert first_report[section] == before[section], section

    # By a re-check's workflow ID: the next re-check of the same original.
    again = _docpipe(settings, "reprocess", first_id)
    assert again.returncode == 0, again.stderr
    second_id = recheck_workflow_id(document.workflow_id, 2)
    assert f"  workflow  {second_id}" in again.stdout.splitlines()
    second = await client.get_workflow_handle(second_id, result_type=CheckSummary).result()
    assert second.report_key == f"{recheck_results_prefix(prefix, 2)}/{REPORT_NAME}"

    # Every check announced itself under the document's key.
    events = await read_topic(settings, settings.kafka.results_topic, count=3)
    assert [e.key for e in events] == [document.document_id.encode()] * 3
    assert sorted(json.loads(e.value)["workflow_id"] for e in events) == sorted(
        [document.workflow_id, first_id, second_id]
    )

    # docpipe report: the verdict first, then the pages to look at.
    shown = _docpipe(settings, "report", document.document_id)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout.splitlines()
    assert out[0] == "verdict   REVIEW  blank_pages"
    assert f"report    s3://{settings.s3.results_bucket}/{original.report_key}" in out
    assert "pages that need attention (1):" in out
    assert "  page     2  blank" in out
    by_workflow = _docpipe(settings, "report", first_id)
    assert by_workflow.returncode == 0, by_workflow.stderr
    assert f"report    s3://{settings.s3.results_bucket}/{first_key}" in by_workflow.stdout
    as_json = _docpipe(settings, "report", second_id, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert assert_valid_report(json.loads(as_json.stdout))["check"]["workflow_id"] == second_id

    unknown = _docpipe(settings, "report", f"{document.bucket}/no/such.pdf@v0")
    assert unknown.returncode == 1
    assert "no report at s3://" in unknown.stderr
