"""``docpipe recheck``: re-check many documents after a policy change, and see what changed.

The command starts ``RecheckWorkflow`` (``docpipe-recheck/<recheck ID>``) and returns, or
waits for its diff. The workflow does the work, durably: a worker crash, a closed laptop
or a second ``docpipe recheck`` with the same ``--id`` re-checks no document twice.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from app.lookups import CheckNotFoundError
from app.status_view import list_query
from infra.settings import Settings
from pipeline import search_attributes as sa
from pipeline.lanes import HIGHEST_PRIORITY, LOWEST_PRIORITY
from pipeline.recheck.models import (
    RECHECK_WORKFLOW_NAME,
    RecheckRequest,
    RecheckResult,
    RecheckSelection,
    check_recheck_id,
    diff_key,
    recheck_run_id,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*s)?\s*$")


class RecheckError(CheckNotFoundError):
    """The bulk re-check cannot be started or found; the message says why."""


def new_recheck_id(now: datetime | None = None) -> str:
    """A fresh recheck ID: ``rc-<UTC time>-<random>``."""
    moment = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"rc-{moment}-{secrets.token_hex(2)}"


def parse_rate(text: str) -> float:
    """``5/s``, ``0.5/s`` or ``20``: re-checks started per second.

    Raises:
        ValueError: not a positive rate.
    """
    match = _RATE.match(text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"--rate {text!r}: give re-checks per second, e.g. 5/s")
    return float(match[1])


def parse_priority(settings: Settings, text: str) -> int:
    """``low`` (the re-check priority), ``high`` (the intake's) or a number.

    Raises:
        ValueError: none of those.
    """
    if text == "low":
        return settings.temporal.recheck_priority
    if text == "high":
        return settings.temporal.intake_priority
    if text.isdigit() and HIGHEST_PRIORITY <= int(text) <= 100:
        return int(text)
    raise ValueError(f"--priority {text!r}: give low, high or {HIGHEST_PRIORITY}-{LOWEST_PRIORITY}")


def parse_prefix(text: str) -> tuple[str, str]:
    """``s3://bucket/prefix/`` as (bucket, prefix).

    Raises:
        ValueError: not an s3:// URL with a bucket.
    """
    if not text.startswith("s3://"):
        raise ValueError(f"--prefix {text!r}: give s3://bucket/prefix/")
    bucket, _, prefix = text[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"--prefix {text!r}: give s3://bucket/prefix/")
    return bucket, prefix


def selection_query(
    *, query: str | None, reason: str | None, since: datetime | None, hash_keys: bool
) -> str:
    """The visibility query of the checks to re-check: docpipe's checks (never re-checks,
    which the workflow skips) matching the query, the reason and the start time."""
    extra = [f"({query})"] if query else []
    if reason:
        extra.append(f"{sa.REASONS.name} = '{reason.replace(chr(39), chr(39) * 2)}'")
    return list_query(since=since, hash_keys=hash_keys, extra=" AND ".join(extra) or None)


@dataclass(frozen=True)
class RecheckOptions:
    """What the command line asked for."""

    recheck_id: str
    selection: RecheckSelection
    priority_key: int
    rate_per_s: float
    max_concurrent: int
    page_size: int = 100
    max_listed: int = 100


def recheck_request(settings: Settings, options: RecheckOptions) -> RecheckRequest:
    """The workflow's input: the options, and what the settings say about checks."""
    check_recheck_id(options.recheck_id)
    if options.selection.bucket and options.selection.bucket not in settings.s3.documents_buckets:
        raise RecheckError(
            f"s3://{options.selection.bucket}/ is not a documents bucket "
            f"(DOCPIPE_S3_DOCUMENTS_BUCKETS: {', '.join(settings.s3.documents_buckets)})"
        )
    return RecheckRequest(
        recheck_id=options.recheck_id,
        selection=options.selection,
        results_bucket=settings.s3.results_bucket,
        results_root=settings.s3.results_prefix,
        page_task_queue=settings.temporal.page_task_queue,
        hash_object_key=settings.temporal.hash_object_keys,
        priority_key=options.priority_key,
        fairness_mode=settings.temporal.fairness_key,
        rate_per_s=options.rate_per_s,
        max_concurrent=options.max_concurrent,
        page_size=options.page_size,
        max_listed=options.max_listed,
    )


async def start_bulk_recheck(
    settings: Settings, client: Client, request: RecheckRequest
) -> tuple[WorkflowHandle[Any, RecheckResult], bool]:
    """Start the bulk re-check, or join it if it runs; (its handle, whether this started it).

    A finished recheck ID may run again: it re-checks only what it has not re-checked
    (nothing, unless new documents match), and writes its diff again.
    """
    handle = await client.start_workflow(
        RECHECK_WORKFLOW_NAME,
        request,
        id=recheck_run_id(request.recheck_id),
        task_queue=settings.temporal.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=f"docpipe re-check {request.recheck_id}: {request.selection.describe()}"[
            :400
        ],
        result_type=RecheckResult,
    )
    response = getattr(handle, "_start_workflow_response", None)
    return handle, bool(getattr(response, "started", True))


def read_diff(settings: Settings, s3: S3Client, recheck_id: str) -> dict[str, Any] | None:
    """The diff report of a finished bulk re-check (None: not written yet)."""
    try:
        body = s3.get_object(
            Bucket=settings.s3.results_bucket, Key=diff_key(settings.s3.results_prefix, recheck_id)
        )
    except s3.exceptions.NoSuchKey:
        return None
    diff: dict[str, Any] = json.loads(body["Body"].read())
    return diff


async def recheck_progress(client: Client, recheck_id: str) -> dict[str, Any]:
    """Where a bulk re-check is: Temporal's state and its ``progress`` query.

    Raises:
        RecheckError: no such bulk re-check.
    """
    handle = client.get_workflow_handle(recheck_run_id(recheck_id))
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise RecheckError(
                f"no re-check {recheck_id} in namespace {client.namespace}"
            ) from None
        raise
    state = description.status.name.lower() if description.status else "unknown"
    progress: dict[str, Any] = {}
    if description.status == WorkflowExecutionStatus.RUNNING:
        try:
            progress = await handle.query("progress")
        except Exception:
            progress = {}  # no worker to answer right now
    return {"recheck_id": recheck_id, "state": state, **progress}


def render_progress(progress: dict[str, Any]) -> str:
    """A running (or unfinished) bulk re-check, for a person."""
    lines = [f"re-check {progress['recheck_id']}: {progress['state']}"]
    if "phase" in progress:
        lines.append(
            f"  {progress['phase']}: page {progress.get('pages', 0)}, "
            f"{progress.get('matched', 0)} matched, {progress.get('rechecked', 0)} re-checked, "
            f"{progress.get('already', 0)} done before, {progress.get('failed', 0)} failed, "
            f"{progress.get('running', 0)} running"
        )
    return "\n".join(lines)
