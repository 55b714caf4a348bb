"""``docpipe review``: the review queue on the command line.

``list`` the checks that wait for a decision (oldest first), ``show`` what to look at in
one, and ``approve`` or ``reject`` it; ``approve --query`` decides many, one auditable
decision each, at a rate limit. The queue itself is ``app.review_queue``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import getpass
import json
import uuid
from collections.abc import Sequence
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from temporalio.client import Client

from app import review_web
from app.command import EXIT_FAILURE
from app.command import EXIT_USAGE
from app.command import CommandError
from app.command import Commands
from app.command import with_temporal
from app.lookups import add_check_command
from app.lookups import workflow_ids_of
from app.review_queue import Pacer
from app.review_queue import ReviewItem
from app.review_queue import ReviewRefusedError
from app.review_queue import WaitingReview
from app.review_queue import bulk_decision_id
from app.review_queue import decide
from app.review_queue import review_item
from app.review_queue import waiting_reviews
from infra.settings import Settings
from pipeline.review import RejectReason
from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision
from pipeline.review import parse_duration
from pipeline.review_visibility import list_waiting

# Bulk decisions sent at once at most, and per second by default.
BULK_CONCURRENCY = 8
BULK_RATE_PER_S = 10.0
# Where sensitive data outside the pages was found, as ``review show`` labels it.
_PARTS = {
    "metadata": "metadata",
    "attachments": "attachments",
    "form_fields": "form fields",
    "outline": "bookmarks",
}


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def render_waiting(rows: Sequence[WaitingReview], now: datetime | None = None) -> str:
    """The queue as a table, oldest first."""
    if not rows:
        return "no check waits for review"
    now = now or datetime.now(UTC)
    table = [("waiting", "pages", "reasons", "workflow")]
    for row in rows:
        overdue = " OVERDUE" if row.overdue else ""
        table.append(
            (
                _age(row.age_s(now)) + overdue,
                str(row.page_count),
                ",".join(row.reasons),
                row.workflow_id,
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
        for r in table
    )


def waiting_json(row: WaitingReview) -> dict[str, Any]:
    """One queue entry as ``--json`` prints it."""
    shown = dataclasses.asdict(row)
    shown["waiting_since"] = row.waiting_since.isoformat()
    shown["deadline"] = row.deadline.isoformat() if row.deadline else None
    return shown


def render_item(item: ReviewItem) -> str:
    """What to look at in one waiting check."""
    status = item.status
    lines = [
        f"document  {item.document_id}",
        f"workflow  {item.workflow_id}",
        f"verdict   {item.verdict}  {', '.join(item.reasons)}",
        f"review    {status.state}"
        + (
            f" since {status.waiting_since}, deadline {status.deadline}"
            if status.waiting_since
            else ""
        )
        + (" (OVERDUE)" if status.overdue else ""),
        f"report    s3://{item.report_bucket}/{item.report_key}",
    ]
    if status.outcome is not None:
        decision = status.outcome.decision
        lines.append(
            f"decision  {decision.action} by {decision.reviewer} at {status.outcome.decided_at}"
        )
    if status.superseded_by:
        lines.append(f"superseded by {status.superseded_by}")
    if item.document_reasons:
        lines.append(f"document-wide  {', '.join(item.document_reasons)}")
    # What the document's metadata, attached files and form fields no page shows hold: a
    # line a type of finding.
    for part, found in item.outside_pages.items():
        lines.extend(f"{_PARTS[part]:<15}{one}" for one in found)
    lines.append(f"pages to look at ({len(item.pages)} of {item.page_count}):")
    for page in item.pages:
        lying = f" (scanned lying: turn {page.turn} degrees clockwise)" if page.turn else ""
        lines.append(f"  page {page.page}: {', '.join(page.reasons)}{lying}")
        lines.extend(f"    {sample}" for sample in page.samples)
    return "\n".join(lines)


async def _resolve(client: Client, settings: Settings, name: str) -> str:
    """The workflow ID of a check named by its workflow or document ID."""
    candidates = workflow_ids_of(name, settings.object_keys_hashed)
    for workflow_id in candidates:
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except Exception:  # not this form: try the next
            continue
        return workflow_id
    raise CommandError(f"no check {name!r} in Temporal")


def decision_from_args(
    args: argparse.Namespace, action: ReviewAction, decision_id: str
) -> ReviewDecision:
    pages = [int(p) for p in (args.pages or "").split(",") if p.strip()]
    return ReviewDecision(
        decision_id=decision_id,
        action=action,
        reviewer=args.reviewer or getpass.getuser(),
        note=args.note or "",
        pages_viewed=pages,
        reject_reason=getattr(args, "reason", None) or "",
    )


def _list(args: argparse.Namespace, settings: Settings) -> int:
    min_age = timedelta(seconds=parse_duration(args.age)) if args.age else None

    async def listed(client: Client) -> list[WaitingReview]:
        return await waiting_reviews(
            client,
            settings,
            reason=args.reason,
            prefix=args.prefix,
            tenant=args.tenant,
            min_age=min_age,
            limit=args.limit,
        )

    rows = with_temporal(settings, listed)
    if args.json:
        print(json.dumps([waiting_json(row) for row in rows], indent=2))
    else:
        print(render_waiting(rows))
    return 0


def _show(args: argparse.Namespace, settings: Settings) -> int:
    async def shown(client: Client) -> ReviewItem:
        return await review_item(client, settings, await _resolve(client, settings, args.check))

    print(render_item(with_temporal(settings, shown)))
    return 0


def _decide_one(args: argparse.Namespace, settings: Settings, action: ReviewAction) -> int:
    async def decided(client: Client) -> str:
        workflow_id = await _resolve(client, settings, args.check)
        decision = decision_from_args(args, action, args.decision_id or str(uuid.uuid4()))
        outcome = await decide(client, workflow_id, decision)
        return (
            f"{workflow_id}: {outcome.decision.action} by {outcome.decision.reviewer}, "
            f"final verdict {outcome.final_verdict} (decision {outcome.decision.decision_id}); "
            f"s3://{outcome.decision_bucket}/{outcome.decision_key}"
        )

    print(with_temporal(settings, decided))
    return 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class BulkResult:
    """What a bulk decision came to."""

    decided: list[str]
    refused: dict[str, str]


async def decide_matching(
    client: Client,
    query: str,
    template: ReviewDecision,
    *,
    rate_per_s: float = BULK_RATE_PER_S,
    limit: int | None = None,
) -> BulkResult:
    """Send ``template`` to every check waiting for review that ``query`` matches, each as
    its own decision whose ID derives from the check and the bulk request (its query,
    action, reviewer and note), so that a rerun decides nothing twice."""
    bulk_request = json.dumps(
        [query, template.action, template.reviewer, template.note, template.reject_reason]
    )
    matches = await list_waiting(client, query)
    if limit is not None:
        matches = matches[:limit]
    pacer = Pacer(rate_per_s)
    gate = asyncio.Semaphore(BULK_CONCURRENCY)
    decided: list[str] = []
    refused: dict[str, str] = {}

    async def one(waiting: WaitingReview) -> None:
        decision = dataclasses.replace(
            template, decision_id=bulk_decision_id(waiting.workflow_id, bulk_request)
        )
        async with gate:
            await pacer.wait()
            try:
                await decide(client, waiting.workflow_id, decision)
            except ReviewRefusedError as exc:
                refused[waiting.workflow_id] = str(exc)
                return
        decided.append(waiting.workflow_id)

    async with asyncio.TaskGroup() as group:
        for waiting in matches:
            group.create_task(one(waiting))
    return BulkResult(decided=sorted(decided), refused=refused)


def _decide(args: argparse.Namespace, settings: Settings, *, action: ReviewAction) -> int:
    if bool(args.check) == bool(args.query):
        raise CommandError("give a check ID or --query, not both", exit_code=EXIT_USAGE)
    if args.check:
        return _decide_one(args, settings, action)
    template = decision_from_args(args, action, decision_id="bulk")

    async def bulk(client: Client) -> BulkResult:
        return await decide_matching(client, args.query, template, rate_per_s=args.rate)

    result = with_temporal(settings, bulk)
    for workflow_id in result.decided:
        print(f"{action}: {workflow_id}")
    for message in result.refused.values():
        print(f"refused: {message}")
    print(f"{len(result.decided)} decided, {len(result.refused)} refused")
    return EXIT_FAILURE if result.refused else 0


def add_commands(commands: Commands) -> None:
    """``docpipe review list|show|approve|reject``, and ``serve`` (``app.review_web``)."""
    review = commands.add("review", "the checks that wait for a reviewer's decision", None)
    below = commands.below(review, "review_command", required=True)
    listing = below.add("list", "checks waiting for a decision, oldest first", _list)
    listing.add_argument("--reason", help="only those with this review reason")
    listing.add_argument("--prefix", help="only objects whose key starts with this")
    listing.add_argument("--tenant", help="only checks of this fairness key")
    listing.add_argument("--age", metavar="T", help="only those waiting at least T (15m, 2h, 7d)")
    listing.add_argument("--limit", type=int, default=100, help="at most this many")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_check_command(below, "show", "the pages to look at, with reasons and masked samples", _show)
    for action in ReviewAction:
        decide_parser = below.add(
            action.value,
            f"{action} a waiting check (final verdict "
            f"{'pass' if action is ReviewAction.APPROVE else 'reject'}), or with --query "
            "every waiting check it matches, each an auditable decision of its own",
            functools.partial(_decide, action=action),
        )
        decide_parser.add_argument(
            "check", metavar="ID", nargs="?", help="workflow ID or document ID (bucket/key@v)"
        )
        decide_parser.add_argument(
            "--query",
            metavar="Q",
            help='a visibility clause over the waiting checks, e.g. "DocpipeReasons = '
            "'blank_pages'\"",
        )
        decide_parser.add_argument("--note", default="", help="why (kept in the audit trail)")
        decide_parser.add_argument(
            "--as", dest="reviewer", metavar="NAME", help="who decides (default: the OS user)"
        )
        decide_parser.add_argument(
            "--pages", metavar="N,N", help="the pages looked at (recorded with the decision)"
        )
        decide_parser.add_argument(
            "--decision-id",
            help="the decision's ID (default: a new one); the same ID again "
            "returns the first outcome",
        )
        decide_parser.add_argument(
            "--rate", type=float, default=BULK_RATE_PER_S, help="with --query: decisions per second"
        )
        if action is ReviewAction.REJECT:
            decide_parser.add_argument(
                "--reason",
                required=True,
                choices=[r.value for r in RejectReason],
                help="why it is rejected (other needs --note)",
            )
    review_web.add_serve_command(below)
