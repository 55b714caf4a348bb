"""S3 failures and vanishing objects, on the real stack with an in-process worker."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError

from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import Settings
from pipeline import search_attributes as sa
from pipeline.check.activities import DocumentActivities
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from tests.support.checks import start_check
from tests.support.pdfs import make_pdf
from tests.support.s3_faults import S3Faults
from workers.worker import build_workers
from workers.worker import document_activities
from workers.worker import result_publisher


@pytest.fixture
def fault_settings(settings: Settings) -> Settings:
    # Few attempts so that "retries exhausted" is reached in seconds.
    return dataclasses.replace(
        settings,
        s3=dataclasses.replace(settings.s3, max_attempts=3),
        pipeline=dataclasses.replace(settings.pipeline, pool_size=1),
    )


@pytest.fixture
async def worker(fault_settings: Settings) -> AsyncIterator[tuple[Client, DocumentActivities]]:
    """A real Temporal worker in this process, so faults can be put into its S3 client."""
    client = await temporal_client(fault_settings.temporal, fault_settings.codec)
    activities = document_activities(fault_settings)
    publisher = result_publisher(fault_settings)
    workers = build_workers(fault_settings, client, activities, publisher=publisher)
    runs = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield client, activities
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*runs, return_exceptions=True)
        await publisher.close()
        activities.close()


def _put(settings: Settings, key: str, bucket: str | None = None) -> DocumentRef:
    bucket = bucket or settings.s3.documents_buckets[0]
    put = s3_client(settings.s3).put_object(Bucket=bucket, Key=key, Body=make_pdf(["text"] * 3))
    return DocumentRef(
        bucket=bucket,
        key=key,
        version_id=put.get("VersionId"),
        etag=str(put["ETag"]).strip('"'),
    )


async def _check(
    client: Client, settings: Settings, document: DocumentRef, max_attempts: int = 20
) -> CheckSummary:
    # A fresh ID per check: some tests check one document twice.
    handle = await start_check(
        client,
        settings,
        document,
        workflow_id=f"{document.workflow_id}/{uuid.uuid4().hex[:6]}",
        max_attempts=max_attempts,
    )
    return await handle.result()


async def test_two_slowdowns_then_success(
    fault_settings: Settings, worker: tuple[Client, DocumentActivities]
) -> None:
    client, activities = worker
    faults = S3Faults("GetObject", status=503, code="SlowDown", count=2).install(activities.s3)
    summary = await _check(client, fault_settings, _put(fault_settings, "faults/slow.pdf"))
    assert faults.injected == 2
    assert summary.verdict == "pass" and summary.page_count == 3


async def test_connection_reset_on_download_is_retried(
    fault_settings: Settings, worker: tuple[Client, DocumentActivities]
) -> None:
    client, activities = worker
    faults = S3Faults("GetObject", status=0, count=1).install(activities.s3)
    summary = await _check(client, fault_settings, _put(fault_settings, "faults/reset.pdf"))
    assert faults.injected == 1
    assert summary.page_count == 3


async def test_persistent_500_fails_the_workflow_with_a_clear_message(
    fault_settings: Settings, worker: tuple[Client, DocumentActivities]
) -> None:
    client, activities = worker
    faults = S3Faults("GetObject", status=500, code="InternalError").install(activities.s3)
    document = _put(fault_settings, "faults/down.pdf")
    with pytest.raises(WorkflowFailureError) as failure:
        await _check(client, fault_settings, document, max_attempts=2)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CheckFailed"
    assert cause.message.startswith(f"check_document of {document.document_id} failed 2 times")
    assert "ClientError: An error occurred (InternalError)" in cause.message
    assert f"docpipe reprocess {document.document_id}" in cause.message
    # botocore's 3 attempts per activity attempt, 2 activity attempts.
    assert faults.injected == 6

    async def failed_status() -> bool:
        listed = [
            w
            async for w in client.list_workflows(
                f'DocpipeStatus = "{sa.FAILED}" AND DocpipeObjectKey = "{document.key}"'
            )
        ]
        return bool(listed)

    from tests.support.polling import async_wait_for

    await async_wait_for(failed_status, 15, "the failed status to be searchable")


async def test_deleted_version_is_object_missing(
    fault_settings: Settings, worker: tuple[Client, DocumentActivities]
) -> None:
    client, _ = worker
    document = _put(fault_settings, "faults/deleted.pdf")
    s3_client(fault_settings.s3).delete_object(
        Bucket=document.bucket, Key=document.key, VersionId=document.version_id or ""
    )
    summary = await _check(client, fault_settings, document)
    assert (summary.verdict, summary.reasons) == ("reject", ["object_missing"])


async def test_overwritten_object_is_object_changed_unless_versioned(
    fault_settings: Settings, worker: tuple[Client, DocumentActivities]
) -> None:
    client, _ = worker
    s3 = s3_client(fault_settings.s3)
    # An unversioned bucket: the event's ETag is all that identifies the content.
    plain = f"plain-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=plain)
    settings = dataclasses.replace(
        fault_settings,
        s3=dataclasses.replace(
            fault_settings.s3, documents_buckets=(*fault_settings.s3.documents_buckets, plain)
        ),
    )
    unversioned = _put(settings, "faults/changed.pdf", bucket=plain)
    assert unversioned.version_id is None
    s3.put_object(Bucket=plain, Key=unversioned.key, Body=make_pdf(["text"] * 5))
    summary = await _check(client, settings, unversioned)
    assert (summary.verdict, summary.reasons) == ("reject", ["object_changed"])

    # In a versioned bucket the check reads the version it was started for.
    versioned = _put(settings, "faults/overwritten.pdf")
    s3.put_object(Bucket=versioned.bucket, Key=versioned.key, Body=make_pdf(["text"] * 5))
    summary = await _check(client, settings, versioned)
    assert (summary.verdict, summary.page_count) == ("pass", 3)
