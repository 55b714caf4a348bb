"""``docpipe reprocess``: check the same object version again, on purpose.

A re-check is its own workflow, ``<original workflow ID>#recheck-<n>``, and writes under
``<original results prefix>/rechecks/<n>/``: the original report stays as it is. ``n`` is
one more than the re-checks already there; two operators re-checking at once get two
numbers, because a start never reuses an ID and a number with results in S3 is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from temporalio.client import Client

from app.command import Commands
from app.command import with_temporal
from app.lookups import CheckNotFoundError
from app.lookups import add_check_command
from app.lookups import is_document_id
from app.lookups import looks_like_workflow_id
from app.lookups import not_a_check
from app.lookups import workflow_ids_of
from app.lookups import workflow_url
from app.review_queue import reported_awaiting_review
from infra.check_requests import check_request
from infra.check_requests import recheck_lane
from infra.clients import s3_client
from infra.settings import Settings
from pipeline.failures import S3Failure
from pipeline.failures import classify_s3
from pipeline.failures import describe_s3
from pipeline.failures import s3_status
from pipeline.models import RECHECKS_DIR
from pipeline.models import REPORT_NAME
from pipeline.models import CheckRequest
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.models import original_results_prefix
from pipeline.models import recheck_results_prefix
from pipeline.models import recheck_workflow_id
from pipeline.models import split_document_id
from pipeline.review import ReviewState
from pipeline.starts import start_check
from pipeline.starts import started_request

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Numbers tried past the highest one found before giving up (racing operators).
_MAX_START_TRIES = 20


class ReprocessError(CheckNotFoundError):
    """The check to repeat cannot be found; the message says why."""


@dataclass(frozen=True)
class Recheck:
    """A re-check started: its number, workflow ID and request."""

    number: int
    workflow_id: str
    request: CheckRequest


async def original_request(client: Client, workflow_id: str) -> CheckRequest | None:
    """The input a check was started with, from its history (None if Temporal has none)."""
    try:
        return await started_request(client, workflow_id)
    except ValueError as exc:
        raise ReprocessError(str(exc)) from None


def _document_from_s3(s3: S3Client, document_id: str) -> DocumentRef:
    """A document ID's object version, when Temporal no longer remembers its check.

    Raises:
        ReprocessError: the version is gone (404, no such version), or S3 refuses or fails
            the request (the message names which, with the error code).
    """
    bucket, key, version = split_document_id(document_id)
    try:
        s3.head_object(Bucket=bucket, Key=key, VersionId=version)
        return DocumentRef(bucket=bucket, key=key, version_id=version)
    except ClientError as exc:
        # Not a version of this object: perhaps an ETag, in an unversioned bucket (S3 says
        # InvalidArgument for a version id it cannot parse).
        if classify_s3(exc) is not S3Failure.MISSING and s3_status(exc)[1] != "InvalidArgument":
            raise _unreadable(document_id, exc) from None
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if classify_s3(exc) is S3Failure.MISSING:
            raise ReprocessError(f"{document_id}: the object is gone") from None
        raise _unreadable(document_id, exc) from None
    if str(head.get("ETag", "")).strip('"') != version:
        raise ReprocessError(f"{document_id}: that version of the object is gone")
    return DocumentRef(bucket=bucket, key=key, etag=version)


def _unreadable(document_id: str, exc: ClientError) -> ReprocessError:
    """S3 answered, but not with the object: say whether retrying can help."""
    why = describe_s3(exc)
    kind = classify_s3(exc)
    if kind is S3Failure.ACCESS_DENIED:
        return ReprocessError(
            f"{document_id}: S3 refuses docpipe the object ({why}); its role needs "
            "s3:GetObject and s3:GetObjectVersion on it"
        )
    if kind is S3Failure.TRANSIENT:
        return ReprocessError(f"{document_id}: S3 failed ({why}); try again later")
    return ReprocessError(f"{document_id}: S3 refused the request ({why})")


async def resolve(settings: Settings, client: Client, s3: S3Client, name: str) -> CheckRequest:
    """The request of the original check that ``name`` (workflow or document ID) names."""
    request = None
    if looks_like_workflow_id(name):
        request = await original_request(client, name)
    if request is None:
        if not is_document_id(name):
            raise not_a_check(name)
        for workflow_id in workflow_ids_of(name, settings.object_keys_hashed):
            request = request or await original_request(client, workflow_id)
    if request is None:
        document = await asyncio.to_thread(_document_from_s3, s3, name)
        return check_request(settings, document)
    # A re-check of a re-check is another re-check of the original.
    return check_request(
        settings,
        request.document,
        results_bucket=request.results_bucket,
        results_prefix=original_results_prefix(request.results_prefix),
    )


def highest_recheck(s3: S3Client, bucket: str, results_prefix: str) -> int:
    """The highest re-check number with results in S3 (0 if none)."""
    pattern = re.compile(rf"^{re.escape(results_prefix)}/{RECHECKS_DIR}/(\d+)/$")
    highest = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(
        Bucket=bucket, Prefix=f"{results_prefix}/{RECHECKS_DIR}/", Delimiter="/"
    ):
        for common in page.get("CommonPrefixes", []):
            match = pattern.match(common.get("Prefix", ""))
            if match:
                highest = max(highest, int(match.group(1)))
    return highest


async def start_recheck(
    settings: Settings, client: Client, s3: S3Client, original: CheckRequest
) -> Recheck:
    """Start the next re-check of ``original`` (a request as ``resolve`` returns it)."""
    base_id = original.workflow_id
    number = 1 + await asyncio.to_thread(
        highest_recheck, s3, original.results_bucket, original.results_prefix
    )
    for _ in range(_MAX_START_TRIES):
        workflow_id = recheck_workflow_id(base_id, number)
        request = dataclasses.replace(
            original, results_prefix=recheck_results_prefix(original.results_prefix, number)
        )
        # A number is used once, running or finished.
        if await start_check(
            client,
            request,
            workflow_id=workflow_id,
            task_queue=settings.temporal.task_queue,
            summary_suffix=f" (re-check {number})",
            # A re-check waits behind live uploads.
            priority=recheck_lane(settings, original.document),
        ):
            # Once reported, it takes over from the document's checks that wait for review.
            return Recheck(number=number, workflow_id=workflow_id, request=request)
        number += 1
    raise ReprocessError(f"no free re-check number for {base_id} after {_MAX_START_TRIES} tries")


async def reported(
    client: Client, settings: Settings, workflow_id: str, poll_s: float = 1.0
) -> CheckSummary:
    """The check's summary once it has ended, or once it is reported and waits for a
    reviewer's decision (which may take days)."""
    handle = client.get_workflow_handle(workflow_id, result_type=CheckSummary)
    ended = asyncio.ensure_future(handle.result())
    try:
        while True:
            done, _ = await asyncio.wait([ended], timeout=poll_s)
            if done:
                summary: CheckSummary = ended.result()
                return summary
            waiting = await reported_awaiting_review(client, settings, workflow_id)
            if waiting is not None:
                return waiting
    finally:
        ended.cancel()


def add_commands(commands: Commands) -> None:
    """``docpipe reprocess``."""
    reprocess = add_check_command(
        commands, "reprocess", "check a document version again, as a new workflow", _reprocess
    )
    reprocess.add_argument("--wait", action="store_true", help="wait for the verdict")


def _reprocess(args: argparse.Namespace, settings: Settings) -> int:
    """Check a document version again, on purpose."""

    async def start(client: Client) -> None:
        s3 = s3_client(settings.s3)
        started = await start_recheck(
            settings, client, s3, await resolve(settings, client, s3, args.check)
        )
        request = started.request
        print(f"re-check {started.number} of {request.document.document_id}")
        print(f"  workflow  {started.workflow_id}")
        print(f"  report    s3://{request.results_bucket}/{request.results_prefix}/{REPORT_NAME}")
        print(f"  UI        {workflow_url(settings, started.workflow_id)}", flush=True)
        if args.wait:
            summary = await reported(client, settings, started.workflow_id)
            print(f"verdict   {summary.verdict}  {', '.join(summary.reasons) or '-'}")
            if summary.review_state == ReviewState.AWAITING:
                print(f"review    awaiting a decision: docpipe review show {started.workflow_id}")

    with_temporal(settings, start)
    return 0
