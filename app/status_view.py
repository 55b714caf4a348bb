"""``docpipe status`` and ``docpipe list``: where one check is, and which checks match.

``status`` reads the workflow (its ``progress`` query, the heartbeat checkpoint of a
running page check for the freshest page count, its result or failure); ``list`` is a
visibility query over docpipe's search attributes. Both name each check's document as its
input does (decoded with the keyring): where keys are hashed, the workflow ID and the
search attributes do not hold it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.client import WorkflowExecution
from temporalio.client import WorkflowExecutionDescription
from temporalio.client import WorkflowExecutionStatus
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from app.command import EXIT_USAGE
from app.command import CommandError
from app.command import Commands
from app.command import with_temporal
from app.lookups import CheckNotFoundError
from app.lookups import add_check_command
from app.lookups import query_progress
from app.lookups import workflow_ids_of
from app.lookups import workflow_url
from app.review_queue import awaiting_review
from infra.settings import Settings
from pipeline import search_attributes as sa
from pipeline.check.checkpoint import Checkpoint
from pipeline.labels import object_key_value
from pipeline.models import WORKFLOW_NAME
from pipeline.models import CheckSummary
from pipeline.progress import CheckProgress
from pipeline.progress import CheckStep
from pipeline.starts import started_request

STATUSES = (
    sa.CHECKING,
    sa.PASSED,
    sa.REVIEW,
    sa.REJECTED,
    sa.FAILED,
    sa.AWAITING_REVIEW,
    sa.APPROVED,
    sa.SUPERSEDED,
)
_SINCE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class StatusError(CheckNotFoundError):
    """The check cannot be found or named; the message says why."""


@dataclass(frozen=True)
class CheckStatus:
    """One check as ``docpipe status`` shows it."""

    workflow_id: str
    # The document ID (``<bucket>/<key>@<version>``, the key in clear) its input names;
    # None when the input cannot be read (not a document check).
    document: str | None
    # Temporal's state of the workflow: running, completed, failed, ...
    state: str
    # DocpipeStatus: checking, passed, review, rejected, failed.
    status: str | None
    summary: str | None
    step: CheckStep | None
    page_count: int
    pages_checked: int
    attempt: int
    resumed_from_page: int
    verdict: str | None = None
    reasons: list[str] = field(default_factory=list)
    report_url: str | None = None
    # Why the check failed, or why the current step is being retried.
    failure: str | None = None
    ui_url: str = ""
    # Its lane: priority key (1 goes first) and fair-share key, as it was started.
    priority: int | None = None
    fairness_key: str | None = None
    # Where it stands with human review: awaiting, decided (by whom), superseded.
    review: str | None = None


async def _pending_pages(client: Client, description: Any, page_count: int) -> tuple[int, int]:
    """(pages durable per the running page check's heartbeat checkpoint, its attempt)."""
    for pending in description.raw_description.pending_activities:
        if pending.activity_type.name != "check_pages":
            continue
        details: list[Any] = []
        if pending.HasField("heartbeat_details"):
            details = await client.data_converter.decode(pending.heartbeat_details.payloads)
        checkpoint = Checkpoint.from_details(details, page_count)
        pages = checkpoint.next_page - 1 if checkpoint else 0
        return pages, int(pending.attempt)
    return 0, 0


def _last_failure(description: Any) -> str | None:
    for pending in description.raw_description.pending_activities:
        if pending.attempt > 1 and pending.HasField("last_failure"):
            return (
                f"{pending.activity_type.name} attempt {pending.attempt}, after: "
                f"{pending.last_failure.message}"
            )
    return None


async def _describe_any(
    client: Client, workflow_ids: Sequence[str]
) -> tuple[str, WorkflowExecutionDescription]:
    """The first of ``workflow_ids`` that Temporal knows, and its description.

    Raises:
        StatusError: it knows none of them.
    """
    for workflow_id in workflow_ids:
        try:
            return workflow_id, await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
    raise StatusError(f"no check {workflow_ids[0]} in namespace {client.namespace}")


async def document_of(client: Client, workflow_id: str, run_id: str | None = None) -> str | None:
    """The document ID a check's input names (None: not a document check, or gone)."""
    try:
        request = await started_request(client, workflow_id, run_id)
    except ValueError:
        return None
    return request.document.document_id if request else None


async def check_status(settings: Settings, client: Client, name: str) -> CheckStatus:
    """Where the check that ``name`` (workflow ID or document ID) names is.

    Raises:
        StatusError: no such check.
    """
    candidates = workflow_ids_of(name, settings.object_keys_hashed)
    workflow_id, description = await _describe_any(client, candidates)
    handle = client.get_workflow_handle(workflow_id)
    attributes = description.typed_search_attributes
    state = description.status.name.lower() if description.status else "unknown"
    priority = description.raw_description.workflow_execution_info.priority
    status = CheckStatus(
        workflow_id=workflow_id,
        document=await document_of(client, workflow_id, description.run_id),
        state=state,
        status=attributes.get(sa.STATUS),
        summary=await description.static_summary(),
        step=None,
        page_count=attributes.get(sa.PAGE_COUNT) or 0,
        pages_checked=attributes.get(sa.PAGES_CHECKED) or 0,
        attempt=0,
        resumed_from_page=0,
        ui_url=workflow_url(settings, workflow_id),
        priority=priority.priority_key or None,
        fairness_key=priority.fairness_key or None,
    )
    progress = await query_progress(handle, CheckProgress)
    if progress is not None:
        status = dataclasses.replace(
            status,
            step=progress.step,
            page_count=progress.page_count or status.page_count,
            pages_checked=progress.pages_checked,
            attempt=progress.attempt,
            resumed_from_page=progress.resumed_from_page,
        )
    if description.status == WorkflowExecutionStatus.RUNNING:
        pages, attempt = await _pending_pages(client, description, status.page_count)
        # The heartbeat checkpoint is fresher than the last progress signal.
        if attempt > status.attempt:
            status = dataclasses.replace(status, pages_checked=pages, attempt=attempt)
        elif attempt and attempt == status.attempt and pages > status.pages_checked:
            status = dataclasses.replace(status, pages_checked=pages)
        status = dataclasses.replace(status, failure=_last_failure(description))
        return await _with_waiting_review(handle, status)
    if description.status == WorkflowExecutionStatus.COMPLETED:
        summary = await client.get_workflow_handle(workflow_id, result_type=CheckSummary).result()
        return dataclasses.replace(
            status,
            verdict=summary.verdict,
            reasons=list(summary.reasons),
            report_url=f"s3://{summary.report_bucket}/{summary.report_key}",
            review=review_line(summary),
        )
    try:
        await handle.result()
    except WorkflowFailureError as exc:
        return dataclasses.replace(status, failure=str(exc.cause or exc))
    return status


async def _with_waiting_review(handle: Any, status: CheckStatus) -> CheckStatus:
    """A running check that is reported and waits for a reviewer: its verdict, report
    and how long it has waited."""
    review = await awaiting_review(handle)
    if review is None:
        return status
    overdue = " (OVERDUE)" if review.overdue else ""
    return dataclasses.replace(
        status,
        verdict=review.verdict,
        reasons=list(review.reasons),
        report_url=f"s3://{review.report_bucket}/{review.report_key}",
        review=f"awaiting a decision since {review.waiting_since}, deadline "
        f"{review.deadline}{overdue}",
    )


def review_line(summary: CheckSummary) -> str | None:
    """How a finished check's review ended, if it had one."""
    outcome = summary.decision
    if outcome is not None:
        decision = outcome.decision
        by = "the review policy" if outcome.by_policy else decision.reviewer
        return (
            f"{outcome.final_verdict} after review: {decision.action} by {by} at "
            f"{outcome.decided_at} (decision {decision.decision_id})"
        )
    if summary.superseded_by:
        return f"superseded by {summary.superseded_by}"
    return None


def render_status(status: CheckStatus) -> str:
    """``docpipe status`` output, for a person."""
    shown = status.state if not status.status else f"{status.state} ({status.status})"
    lines = [status.workflow_id]
    if status.document:
        lines.append(f"  document  {status.document}")
    if status.summary:
        lines.append(f"  summary   {status.summary}")
    lines.append(f"  state     {shown}")
    if status.priority or status.fairness_key:
        share = f", fair share {status.fairness_key}" if status.fairness_key else ""
        lines.append(f"  lane      priority {status.priority or 'default'}{share}")
    if status.step and status.state == "running":
        percent = 100 * status.pages_checked // max(status.page_count, 1)
        pages = (
            f"{status.pages_checked} of {status.page_count} pages ({percent}%)"
            if status.page_count
            else "page count not known yet"
        )
        lines.append(f"  step      {status.step}: {pages}")
    elif status.page_count:
        lines.append(f"  pages     {status.pages_checked} of {status.page_count} checked")
    if status.attempt > 1 or status.resumed_from_page > 1:
        lines.append(f"  attempt   {status.attempt} (resumed from page {status.resumed_from_page})")
    if status.verdict:
        lines.append(f"  verdict   {status.verdict}  {', '.join(status.reasons) or '-'}")
    if status.review:
        lines.append(f"  review    {status.review}")
    if status.report_url:
        lines.append(f"  report    {status.report_url}")
    if status.failure:
        lines.append(f"  failure   {status.failure}")
    lines.append(f"  UI        {status.ui_url}")
    return "\n".join(lines)


# -- list -----------------------------------------------------------------------------------


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``7d`` (ago) or an ISO 8601 date or time (UTC unless it says).

    Raises:
        ValueError: neither.
    """
    now = now or datetime.now(UTC)
    match = _SINCE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _quote(value: str) -> str:
    # Visibility queries are SQL-like: a quote inside a string is doubled.
    return "'" + value.replace("'", "''") + "'"


def list_query(
    *,
    status: str | None = None,
    bucket: str | None = None,
    since: datetime | None = None,
    key: str | None = None,
    hash_keys: bool = False,
    extra: str | None = None,
) -> str:
    """The visibility query of ``docpipe list``: docpipe's checks matching every filter.

    Args:
        key: an object key; hashed as the checks hash it when ``hash_keys``.
        extra: a further visibility query clause, ANDed as it is.
    """
    clauses = [f"WorkflowType = {_quote(WORKFLOW_NAME)}"]
    if status:
        clauses.append(f"{sa.STATUS.name} = {_quote(status)}")
    if bucket:
        clauses.append(f"{sa.BUCKET.name} = {_quote(bucket)}")
    if key:
        clauses.append(f"{sa.OBJECT_KEY.name} = {_quote(object_key_value(key, hash_keys))}")
    if since:
        moment = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        clauses.append(f"StartTime >= {_quote(moment)}")
    if extra:
        clauses.append(f"({extra})")
    return " AND ".join(clauses)


@dataclass(frozen=True)
class CheckRow:
    """One line of ``docpipe list``."""

    workflow_id: str
    # The document ID its input names (the key in clear), as in ``CheckStatus``.
    document: str | None
    started: datetime
    state: str
    status: str | None
    page_count: int | None
    pages_checked: int | None
    reasons: list[str]


async def _row(client: Client, execution: WorkflowExecution) -> CheckRow:
    attributes = execution.typed_search_attributes
    return CheckRow(
        workflow_id=execution.id,
        document=await document_of(client, execution.id, execution.run_id),
        started=execution.start_time,
        state=execution.status.name.lower() if execution.status else "unknown",
        status=attributes.get(sa.STATUS),
        page_count=attributes.get(sa.PAGE_COUNT),
        pages_checked=attributes.get(sa.PAGES_CHECKED),
        reasons=list(attributes.get(sa.REASONS) or []),
    )


async def list_checks(client: Client, query: str, limit: int = 50) -> list[CheckRow]:
    """Checks matching a visibility query, newest first, at most ``limit``."""
    executions = [execution async for execution in client.list_workflows(query, limit=limit)]
    rows = await asyncio.gather(*(_row(client, execution) for execution in executions))
    return sorted(rows, key=lambda row: row.started, reverse=True)


def render_list(rows: Sequence[CheckRow]) -> str:
    """``docpipe list`` output: one check per line."""
    table = [("started (UTC)", "status", "pages", "reasons", "document", "workflow")]
    for row in rows:
        pages = "?" if row.page_count is None else f"{row.pages_checked or 0}/{row.page_count}"
        table.append(
            (
                row.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                row.status or row.state,
                pages,
                ",".join(row.reasons) or "-",
                row.document or "?",
                row.workflow_id,
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    lines = [
        "  ".join([*(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)), r[5]]) for r in table
    ]
    lines.append(f"{len(rows)} check(s)")
    return "\n".join(lines)


# -- the commands ---------------------------------------------------------------------------


def add_commands(commands: Commands) -> None:
    """``docpipe status`` and ``docpipe list``."""
    status = add_check_command(
        commands, "status", "where a check is: live progress, or verdict and report", _print_status
    )
    status.add_argument("--json", action="store_true", help="print it as JSON")
    listing = commands.add("list", "list checks by status, bucket, key and start time", _print_list)
    listing.add_argument("--status", choices=STATUSES, help="only checks in this status")
    listing.add_argument("--bucket", help="only documents of this bucket")
    listing.add_argument("--key", help="only this object key (hashed if keys are hashed)")
    listing.add_argument("--since", metavar="T", help="started since: 30m, 2h, 7d or ISO time")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (newest)")
    listing.add_argument("--json", action="store_true", help="print them as JSON")


def _print_status(args: argparse.Namespace, settings: Settings) -> int:
    """Where one check is."""
    status = with_temporal(settings, lambda client: check_status(settings, client, args.check))
    if args.json:
        print(json.dumps(dataclasses.asdict(status), indent=2, ensure_ascii=False))
    else:
        print(render_status(status))
    return 0


def _print_list(args: argparse.Namespace, settings: Settings) -> int:
    """The checks a filter selects."""
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError:
        raise CommandError(
            f"--since {args.since!r}: give 30m, 2h, 7d or an ISO time", exit_code=EXIT_USAGE
        ) from None
    query = list_query(
        status=args.status,
        bucket=args.bucket,
        since=since,
        key=args.key,
        hash_keys=settings.object_keys_hashed,
    )
    rows = with_temporal(settings, lambda client: list_checks(client, query, limit=args.limit))
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], default=str, ensure_ascii=False))
    else:
        print(render_list(rows))
        print(f"query: {query}")
    return 0
