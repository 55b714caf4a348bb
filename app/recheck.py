"""``docpipe recheck``: re-check many documents after a policy change, and see what changed.

The command starts ``RecheckWorkflow`` (``docpipe-recheck/<recheck ID>``) and returns, or
waits for its diff. The workflow does the work, durably: a worker crash, a closed laptop
or a second ``docpipe recheck`` with the same ``--id`` re-checks no document twice.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from app.command import EXIT_USAGE
from app.command import CommandError
from app.command import Commands
from app.command import with_temporal
from app.lookups import CheckNotFoundError
from app.lookups import query_progress
from app.lookups import workflow_url
from app.status_view import list_query
from app.status_view import parse_since
from infra.clients import s3_client
from infra.settings import Settings
from pipeline import search_attributes as sa
from pipeline.lanes import HIGHEST_PRIORITY
from pipeline.lanes import LOWEST_PRIORITY
from pipeline.recheck.diff import render_diff
from pipeline.recheck.models import RECHECK_WORKFLOW_NAME
from pipeline.recheck.models import RecheckProgress
from pipeline.recheck.models import RecheckRequest
from pipeline.recheck.models import RecheckResult
from pipeline.recheck.models import RecheckSelection
from pipeline.recheck.models import check_recheck_id
from pipeline.recheck.models import diff_key
from pipeline.recheck.models import recheck_run_id

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
        ocr_task_queue=settings.temporal.ocr_task_queue,
        hash_object_key=settings.object_keys_hashed,
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
    workflow_id = recheck_run_id(request.recheck_id)
    try:
        handle: WorkflowHandle[Any, RecheckResult] = await client.start_workflow(
            RECHECK_WORKFLOW_NAME,
            request,
            id=workflow_id,
            task_queue=settings.temporal.task_queue,
            # A running one is joined below: FAIL says that it runs, where USE_EXISTING
            # would say it only in a field the SDK keeps private.
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=(
                f"docpipe re-check {request.recheck_id}: {request.selection.describe()}"[:400]
            ),
            result_type=RecheckResult,
        )
    except WorkflowAlreadyStartedError as running:
        joined = client.get_workflow_handle(
            workflow_id, run_id=running.run_id, result_type=RecheckResult
        )
        return joined, False
    return handle, True


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


@dataclass(frozen=True)
class RecheckStatus:
    """A bulk re-check as ``docpipe recheck show`` shows it while it has no diff."""

    recheck_id: str
    # Temporal's state of the workflow: running, completed, canceled, ...
    state: str
    # What the running workflow answered (None: not running, or no worker answered).
    progress: RecheckProgress | None = None

    def to_json(self) -> dict[str, Any]:
        """As ``--json`` prints it: the ID, the state and the progress's own fields."""
        shown = dataclasses.asdict(self.progress) if self.progress else {}
        return {"recheck_id": self.recheck_id, "state": self.state, **shown}


async def recheck_status(client: Client, recheck_id: str) -> RecheckStatus:
    """Where a bulk re-check is: Temporal's state and, while it runs, its ``progress``.

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
    running = description.status == WorkflowExecutionStatus.RUNNING
    return RecheckStatus(
        recheck_id=recheck_id,
        state=state,
        progress=await query_progress(handle, RecheckProgress) if running else None,
    )


def render_status(status: RecheckStatus) -> str:
    """A running (or unfinished) bulk re-check, for a person."""
    lines = [f"re-check {status.recheck_id}: {status.state}"]
    if progress := status.progress:
        lines.append(
            f"  {progress.phase}: page {progress.pages}, {progress.matched} matched, "
            f"{progress.rechecked} re-checked, {progress.already} done before, "
            f"{progress.failed} failed, {progress.running} running"
        )
    return "\n".join(lines)


# -- the commands ---------------------------------------------------------------------------


def add_commands(commands: Commands) -> None:
    """``docpipe recheck``, ``docpipe recheck show`` and ``docpipe recheck cancel``."""
    recheck = commands.add(
        "recheck",
        "re-check every document a selection matches (after a policy change, a fix or a "
        "worker bug), as a durable workflow; then show what changed",
        _start,
    )
    recheck.epilog = (
        "Give --prefix, or --query and/or --reason. Each document is re-checked as "
        "`docpipe reprocess` would, with its report under <its results prefix>/rechecks/<ID>/; "
        "running the same --id again re-checks nothing twice, and re-checks what a cancelled or "
        "failed run left. When done, the diff report "
        "(verdict transitions, reasons added and removed, changed documents, policies) is "
        "written to <results bucket>/<results prefix>/_rechecks/<ID>/diff.json; "
        "`docpipe recheck show ID` prints it."
    )
    selection = recheck.add_argument_group(
        "which documents: --prefix, or --query and/or --reason (with --since)"
    )
    selection.add_argument(
        "--query",
        metavar="Q",
        help="a Temporal visibility query over docpipe's checks, e.g. \"DocpipeStatus = "
        "'review'\" (re-checks themselves never match)",
    )
    selection.add_argument(
        "--prefix",
        metavar="S3URL",
        help="every object under s3://bucket/prefix/ (its current version) in a documents bucket",
    )
    selection.add_argument(
        "--reason", metavar="R", help="checks whose verdict gave reason R (DocpipeReasons)"
    )
    selection.add_argument(
        "--since",
        metavar="T",
        help="with --query or --reason: only checks started since T (30m, 2h, 7d or an ISO time)",
    )
    recheck.add_argument(
        "--id",
        metavar="ID",
        help="recheck ID (lower-case letter, then letters, digits, dashes); default "
        "rc-<UTC time>-<random>. The same ID never re-checks a document twice",
    )
    recheck.add_argument(
        "--rate", default="5/s", metavar="N/s", help="re-checks started per second at most (5/s)"
    )
    recheck.add_argument(
        "--concurrency",
        type=int,
        default=10,
        metavar="N",
        help="re-checks running at once at most (10)",
    )
    recheck.add_argument(
        "--priority",
        default="low",
        metavar="P",
        help="low (DOCPIPE_TEMPORAL_RECHECK_PRIORITY, default: live uploads go first), high "
        "(the intake's) or a number 1-5",
    )
    recheck.add_argument(
        "--page-size",
        type=int,
        default=100,
        metavar="N",
        help="matches per page, one workflow run each (100)",
    )
    recheck.add_argument(
        "--max-listed",
        type=int,
        default=100,
        metavar="N",
        help="changed documents listed in the diff at most; its counts are exact (100)",
    )
    recheck.add_argument("--wait", action="store_true", help="wait until done, then print the diff")
    recheck.add_argument("--json", action="store_true", help="with --wait: print the diff as JSON")
    below = commands.below(recheck, "recheck_command", metavar="show|cancel")
    show = below.add("show", "print a bulk re-check's diff, or its progress while it runs", _show)
    show.add_argument("recheck_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print it as JSON")
    cancel = below.add(
        "cancel",
        "cancel a bulk re-check and its re-checks still checking (those that wait for review stay)",
        _cancel,
    )
    cancel.add_argument("recheck_id", metavar="ID")


def _request(args: argparse.Namespace, settings: Settings) -> RecheckRequest:
    """The bulk re-check the command line asks for.

    Raises:
        CommandError: the options do not name a selection, or not a valid one (exit 2).
    """
    if bool(args.prefix) == bool(args.query or args.reason):
        raise CommandError(
            "recheck needs --prefix, or --query and/or --reason (not both kinds)",
            exit_code=EXIT_USAGE,
        )
    try:
        since = parse_since(args.since) if args.since else None
        if args.since and args.prefix:
            raise ValueError(
                "--since selects checks by start time: use it with --query or --reason"
            )
        if args.prefix:
            bucket, prefix = parse_prefix(args.prefix)
            selection = RecheckSelection(bucket=bucket, prefix=prefix)
        else:
            selection = RecheckSelection(
                query=selection_query(
                    query=args.query,
                    reason=args.reason,
                    since=since,
                    hash_keys=settings.object_keys_hashed,
                )
            )
        options = RecheckOptions(
            recheck_id=args.id or new_recheck_id(),
            selection=selection,
            priority_key=parse_priority(settings, args.priority),
            rate_per_s=parse_rate(args.rate),
            max_concurrent=args.concurrency,
            page_size=args.page_size,
            max_listed=args.max_listed,
        )
        return recheck_request(settings, options)
    except (ValueError, RecheckError) as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None


def _start(args: argparse.Namespace, settings: Settings) -> int:
    """Re-check every document a selection matches, durably."""
    request = _request(args, settings)

    async def start(client: Client) -> dict[str, Any] | None:
        handle, started = await start_bulk_recheck(settings, client, request)
        workflow_id = recheck_run_id(request.recheck_id)
        print(f"re-check {request.recheck_id}" + ("" if started else " (already running)"))
        print(f"  selects   {request.selection.describe()}")
        print(f"  workflow  {workflow_id}")
        diff_at = diff_key(request.results_root, request.recheck_id)
        print(f"  diff      s3://{request.results_bucket}/{diff_at}")
        print(f"  UI        {workflow_url(settings, workflow_id)}")
        print(f"  progress  docpipe recheck show {request.recheck_id}", flush=True)
        if args.wait:
            await handle.result()
            return read_diff(settings, s3_client(settings.s3), request.recheck_id)
        return None

    diff = with_temporal(settings, start)
    if diff is not None:
        print(json.dumps(diff, indent=2, sort_keys=True) if args.json else "\n" + render_diff(diff))
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    """The diff of a finished bulk re-check, or its progress."""

    async def status_if_known(client: Client) -> RecheckStatus | None:
        try:
            return await recheck_status(client, args.recheck_id)
        except RecheckError:
            return None  # gone from Temporal (retention): its diff may still be in S3

    status = with_temporal(settings, status_if_known)
    # A run in progress is shown as such, even when an earlier run of the ID left a diff.
    diff = None
    if status is None or status.state != "running":
        diff = read_diff(settings, s3_client(settings.s3), args.recheck_id)
    if diff is not None:
        print(json.dumps(diff, indent=2, sort_keys=True) if args.json else render_diff(diff))
        return 0
    if status is None:
        raise CommandError(f"no re-check {args.recheck_id}")
    print(json.dumps(status.to_json(), indent=2) if args.json else render_status(status))
    return 0


def _cancel(args: argparse.Namespace, settings: Settings) -> int:
    """Stop a bulk re-check and its re-checks still checking."""
    workflow_id = recheck_run_id(args.recheck_id)
    with_temporal(settings, lambda client: client.get_workflow_handle(workflow_id).cancel())
    print(f"cancel requested: re-check {args.recheck_id}")
    return 0
