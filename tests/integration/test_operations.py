"""What operators see: search attributes in visibility, live progress, status and list."""

from __future__ import annotations

import dataclasses
import uuid

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from app.demo import SAMPLES_DIR
from app.status_view import check_status
from app.status_view import list_checks
from app.status_view import list_query
from app.status_view import render_status
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import Settings
from infra.stack import EmbeddedStack
from infra.temporal_setup import register_search_attributes
from pipeline import search_attributes as sa
from pipeline.labels import object_key_value
from pipeline.models import DocumentRef
from pipeline.progress import PROGRESS_QUERY
from pipeline.progress import CheckProgress
from pipeline.progress import CheckStep
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.commands import docpipe_cli
from tests.support.pdfs import make_large_pdf
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.settings import hashing_by_default


def _put(settings: Settings, bucket: str, key: str, body: bytes) -> DocumentRef:
    put = s3_client(settings.s3).put_object(Bucket=bucket, Key=key, Body=body)
    return DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"], size=len(body))


async def _found(client: Client, settings: Settings, clause: str, expected: set[str]) -> None:
    """Poll visibility until ``clause`` (scoped to this test's queue) finds ``expected``."""
    query = f"TaskQueue = '{settings.temporal.task_queue}' AND {clause}"
    found: set[str] = set()

    async def matches() -> bool:
        nonlocal found
        found = {row.workflow_id for row in await list_checks(client, query)}
        return found == expected

    try:
        await async_wait_for(matches, 15, f"visibility to answer {query}")
    except AssertionError:
        raise AssertionError(f"{query}: found {found}, expected {expected}") from None


def _docpipe(settings: Settings, *args: str) -> str:
    return docpipe_cli(settings, *args, timeout_s=60)


async def test_with_encryption_keys_are_hashed_and_status_list_report_still_show_them(
    settings: Settings, start_component: StartComponent
) -> None:
    settings = hashing_by_default(settings)
    assert settings.codec.mode == "encrypt" and settings.object_keys_hashed
    start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    run = uuid.uuid4().hex[:8]
    document = _put(
        settings,
        settings.s3.documents_buckets[0],
        f"hr-{run}/salary of j.doe.pdf",
        make_pdf(["text", "blank"]),
    )
    handle = await start_check(client, settings, document)
    assert (await handle.result()).verdict == "review"

    # The workflow ID and every search attribute name the document without its key.
    assert (
        handle.id
        == f"docpipe/{document.bucket}/{object_key_value(document.key, True)}@{document.version}"
    )
    attributes = (await handle.describe()).typed_search_attributes
    values = " ".join(str(pair.value) for pair in attributes)
    assert attributes.get(sa.OBJECT_KEY) == object_key_value(document.key, True)
    assert "salary" not in values and run not in values

    # Operators still find it by document ID and key, and read the key back.
    status = _docpipe(settings, "status", document.document_id)
    assert status.splitlines()[0] == handle.id
    assert f"  document  {document.document_id}" in status
    assert "verdict   review  blank_pages" in status

    async def listed() -> str | None:
        shown = _docpipe(settings, "list", "--key", document.key, "--since", "10m")
        return shown if handle.id in shown else None

    shown = await async_wait_for(listed, 15, "docpipe list --key to find the check")
    assert document.document_id in shown
    report = _docpipe(settings, "report", document.document_id)
    assert f"document  {document.document_id}" in report
    assert f"workflow  {handle.id}" in report


async def test_visibility_finds_checks_by_each_search_attribute(
    stack: EmbeddedStack, settings: Settings, start_component: StartComponent
) -> None:
    start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    # The stack registered every attribute; `docpipe temporal setup` again changes nothing.
    assert await register_search_attributes(client, settings.temporal.namespace) == []
    run = uuid.uuid4().hex[:8]
    documents_bucket = settings.s3.documents_buckets[0]
    other_bucket = f"archive-{run}"
    s3 = s3_client(settings.s3)
    s3.create_bucket(Bucket=other_bucket)
    s3.put_bucket_versioning(Bucket=other_bucket, VersioningConfiguration={"Status": "Enabled"})
    encrypted = (SAMPLES_DIR / "protected.pdf").read_bytes()
    passed = _put(settings, documents_bucket, f"ops/{run}/contract.pdf", make_pdf(["text"] * 4))
    review = _put(
        settings, documents_bucket, f"ops/{run}/blank.pdf", make_pdf(["text", "blank", "text"])
    )
    rejected = _put(settings, documents_bucket, f"ops/{run}/locked.pdf", encrypted)
    archived = _put(settings, other_bucket, f"ops/{run}/old.pdf", make_pdf(["text"] * 7))
    secret = _put(settings, documents_bucket, f"ops/{run}/salary of j.doe.pdf", make_pdf(["text"]))
    handles = [
        await start_check(client, settings, passed),
        await start_check(client, settings, review),
        await start_check(client, settings, rejected),
        await start_check(client, settings, archived),
        await start_check(client, settings, secret, hash_object_key=True),
    ]
    # Results land in a bucket that does not exist: writing chunks fails, once is all.
    failing = _put(settings, documents_bucket, f"ops/{run}/failing.pdf", make_pdf(["text"] * 2))
    failing_handle = await start_check(
        client,
        settings,
        failing,
        results_bucket=f"missing-{run}",
        results_prefix="x",
        max_attempts=1,
    )
    verdicts = [(await h.result()).verdict for h in handles]
    assert verdicts == ["pass", "review", "reject", "pass", "pass"]

    checked = zip((passed, review, rejected, archived, secret), handles, strict=True)
    ids = {d.key: h.id for d, h in checked} | {failing.key: failing_handle.id}
    await _found(
        client,
        settings,
        "DocpipeStatus = 'passed'",
        {ids[passed.key], ids[archived.key], ids[secret.key]},
    )
    await _found(client, settings, "DocpipeStatus = 'review'", {ids[review.key]})
    await _found(client, settings, "DocpipeStatus = 'rejected'", {ids[rejected.key]})
    await _found(client, settings, "DocpipeStatus = 'failed'", {failing_handle.id})
    await _found(client, settings, "DocpipeReasons = 'blank_pages'", {ids[review.key]})
    await _found(client, settings, "DocpipeReasons = 'encrypted'", {ids[rejected.key]})
    await _found(client, settings, f"DocpipeBucket = '{other_bucket}'", {ids[archived.key]})
    await _found(client, settings, f"DocpipeObjectKey = '{review.key}'", {ids[review.key]})
    await _found(client, settings, "DocpipePageCount = 7", {ids[archived.key]})
    await _found(client, settings, "DocpipePagesChecked = 4", {ids[passed.key]})
    # A hashed key: the key itself finds nothing, its hash (as `docpipe list --key` makes
    # it) finds the check, and neither the attribute nor the summary shows the key.
    await _found(client, settings, f"DocpipeObjectKey = '{secret.key}'", set())
    hashed = object_key_value(secret.key, True)
    await _found(client, settings, f"DocpipeObjectKey = '{hashed}'", {ids[secret.key]})
    assert list_query(key=secret.key, hash_keys=True).endswith(f"DocpipeObjectKey = '{hashed}'")
    secret_description = await handles[4].describe()
    assert secret_description.typed_search_attributes.get(sa.OBJECT_KEY) == hashed
    summary = await secret_description.static_summary()
    assert summary is not None and "salary" not in summary
    assert "salary" not in (await secret_description.static_details() or "")
    assert await (await handles[1].describe()).static_summary() == (
        f"docpipe check of {review.document_id}"
    )

    # `docpipe list` and `docpipe status`, as an operator types them.
    listed = _docpipe(
        settings, "list", "--status", "review", "--bucket", documents_bucket, "--since", "10m"
    )
    assert ids[review.key] in listed and ids[passed.key] not in listed
    status = _docpipe(settings, "status", review.document_id)
    assert "verdict   review  blank_pages" in status
    report_key = f"{review.results_prefix(settings.s3.results_prefix)}/report.json"
    assert f"report    s3://{settings.s3.results_bucket}/{report_key}" in status
    failed = await check_status(settings, client, failing_handle.id)
    assert failed.status == "failed" and failed.failure and "docpipe reprocess" in failed.failure


async def test_progress_moves_while_pages_are_checked(
    settings: Settings, start_component: StartComponent
) -> None:
    settings = dataclasses.replace(
        settings,
        pipeline=dataclasses.replace(
            settings.pipeline, chunk_pages=20, progress_interval_s=0.2, pool_size=2
        ),
    )
    start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    pages = 1000
    document = _put(
        settings,
        settings.s3.documents_buckets[0],
        f"ops/{uuid.uuid4().hex[:8]}/long.pdf",
        make_large_pdf(pages),
    )
    handle = await start_check(client, settings, document)

    seen: list[int] = []
    details: set[str] = set()
    statuses: list[int] = []

    async def finished_checking() -> bool:
        progress: CheckProgress = await handle.query(PROGRESS_QUERY, result_type=CheckProgress)
        if progress.step is CheckStep.CHECK_PAGES:
            seen.append(progress.pages_checked)
            metadata = await handle.query(
                "__temporal_workflow_metadata", result_type=WorkflowMetadata
            )
            details.add(metadata.current_details)
            statuses.append((await check_status(settings, client, handle.id)).pages_checked)
        return progress.step in (CheckStep.FINALIZE, CheckStep.PUBLISH_RESULT, CheckStep.DONE)

    await async_wait_for(finished_checking, 90, "page checking to finish")
    moving = sorted({n for n in seen if 0 < n < pages})
    assert len(moving) >= 3, seen
    assert seen == sorted(seen), "the page count never goes back within one attempt"
    assert any(f"of {pages} pages" in text and "**Checking pages**" in text for text in details)
    # `docpipe status` reads the same progress, or the fresher heartbeat checkpoint.
    assert any(0 < n < pages for n in statuses), statuses
    summary = await handle.result()
    assert summary.page_count == pages
    final: CheckProgress = await handle.query(PROGRESS_QUERY, result_type=CheckProgress)
    assert final.pages_checked == pages and final.attempt == 1
    description = await handle.describe()
    assert description.typed_search_attributes.get(sa.PAGES_CHECKED) == pages
    render = render_status(await check_status(settings, client, handle.id))
    assert f"pages     {pages} of {pages} checked" in render
