"""The review queue: what waits for a reviewer, what to look at, and deciding.

The one layer under ``docpipe review`` and the review page: the queue from Temporal
visibility, the pages of a waiting check from its report and chunk files in S3, and the
decision sent as the check's Update (its decision ID as the Update ID, so a retried
request never decides twice).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.client import WorkflowHandle
from temporalio.client import WorkflowQueryFailedError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from app.command import CommandError
from app.report_pages import findings_outside_pages
from app.report_pages import page_error_messages
from app.report_pages import reason_pages
from infra.clients import s3_client
from infra.settings import Settings
from pipeline import search_attributes as sa
from pipeline.check.results import ResultStore
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.review import REVIEW_QUERY
from pipeline.review import REVIEW_UPDATE
from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision
from pipeline.review import ReviewOutcome
from pipeline.review import ReviewState
from pipeline.review import ReviewStatus
from pipeline.review_visibility import WaitingReview
from pipeline.review_visibility import list_waiting
from pipeline.review_visibility import quoted

__all__ = [
    "PageToReview",
    "ReviewItem",
    "ReviewRefusedError",
    "WaitingReview",
    "bulk_decision_id",
    "decide",
    "review_item",
    "waiting_reviews",
]

# Pages a review item lists at most (the report lists at most 1,000 per finding).
MAX_PAGES_SHOWN = 200


# Where the report lists the pages of each review reason; reasons not here concern the
# document as a whole (repaired, xfa_forms, modified_after_signing).
class ReviewRefusedError(CommandError):
    """The check refused the decision, or does not wait for one: the message says why."""


@dataclass(frozen=True, kw_only=True)
class PageToReview:
    """One page a reviewer should look at.

    Attributes:
        page: 1-based page number.
        reasons: the review reasons found on it.
        samples: masked samples of what was found (``email: j***@e***.com``), or the
            page's parse error; never document text.
        turn: degrees to turn the page clockwise to show it upright (OCR found the scan
            lying sideways or upside down, and read it turned).
    """

    page: int
    reasons: list[str]
    samples: list[str] = field(default_factory=list)
    turn: int = 0


@dataclass(frozen=True, kw_only=True)
class ReviewItem:
    """A check that waits (or waited) for review, and what to look at.

    Attributes:
        document: the object version checked (a renderer fetches the PDF by it).
        status: the check's ``review`` query answer.
        pages: the pages to look at, in page order (at most ``MAX_PAGES_SHOWN``).
        document_reasons: review reasons about the document as a whole, not pages.
        outside_pages: the sensitive data found outside its pages, by part of the
            document (``app.report_pages.OUTSIDE_PAGES``: its metadata, attached files,
            form fields no page shows, bookmarks), by type with masked samples.
    """

    workflow_id: str
    document_id: str
    document: DocumentRef
    status: ReviewStatus
    verdict: str
    reasons: list[str]
    page_count: int
    pages: list[PageToReview]
    document_reasons: list[str]
    report_bucket: str
    report_key: str
    outside_pages: dict[str, list[str]] = field(default_factory=dict)


async def waiting_reviews(
    client: Client,
    settings: Settings,
    *,
    reason: str | None = None,
    prefix: str | None = None,
    tenant: str | None = None,
    min_age: timedelta | None = None,
    limit: int = 100,
) -> list[WaitingReview]:
    """The checks waiting for a decision, oldest first.

    Args:
        reason: only those with this review reason.
        prefix: only documents whose object key starts with it (keys in clear only).
        tenant: only checks of this fairness key (``DOCPIPE_TEMPORAL_FAIRNESS_KEY``).
        min_age: only those waiting at least this long.
        limit: at most this many.

    Raises:
        CommandError: a key prefix where object keys are hashed.
    """
    clauses = []
    if reason:
        clauses.append(f"{sa.REASONS.name} = {quoted(reason)}")
    if prefix:
        if settings.object_keys_hashed:
            raise CommandError(
                "object keys are hashed in Temporal (DOCPIPE_TEMPORAL_HASH_OBJECT_KEYS): "
                "a key prefix cannot be matched"
            )
        clauses.append(f"{sa.OBJECT_KEY.name} STARTS_WITH {quoted(prefix)}")
    if min_age is not None:
        before = datetime.now(UTC) - min_age
        clauses.append(f"{sa.REVIEW_SINCE.name} <= {quoted(before.isoformat())}")
    found = await list_waiting(client, " AND ".join(clauses))
    if tenant:
        found = [w for w in found if await _fairness_key(client, w.workflow_id) == tenant]
    return found[:limit]


async def _fairness_key(client: Client, workflow_id: str) -> str:
    described = await client.get_workflow_handle(workflow_id).describe()
    info = described.raw_description.workflow_execution_info
    return str(info.priority.fairness_key)


async def review_status(client: Client, workflow_id: str) -> ReviewStatus:
    """A check's ``review`` query answer.

    Raises:
        CommandError: no such check, or it cannot answer (it began before review).
    """
    handle = client.get_workflow_handle(workflow_id)
    try:
        status: ReviewStatus = await handle.query(REVIEW_QUERY, result_type=ReviewStatus)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandError(f"no check {workflow_id} in Temporal") from None
        raise CommandError(f"{workflow_id} cannot say where it stands with review: {exc}") from exc
    return status


async def review_item(client: Client, settings: Settings, workflow_id: str) -> ReviewItem:
    """What a reviewer looks at for the check ``workflow_id``: its pages with their
    reasons and masked samples, from its report and chunk files.

    Raises:
        CommandError: no such check, it never waited for review, or its report is gone.
    """
    status = await review_status(client, workflow_id)
    if status.state is ReviewState.NOT_WAITING or not status.report_key:
        raise CommandError(f"{workflow_id} does not wait for review (and never did)")
    report = await asyncio.to_thread(
        _read_report, settings, status.report_bucket, status.report_key
    )
    pages, document_reasons = pages_to_review(report, status.reasons)
    if pages:
        store = ResultStore(s3_client(settings.s3), status.report_bucket)
        pages = await asyncio.to_thread(with_page_results, store, report, pages)
    identity = report["document"]
    return ReviewItem(
        workflow_id=workflow_id,
        document_id=str(identity["id"]),
        document=DocumentRef(
            bucket=identity["bucket"],
            key=identity["key"],
            version_id=identity.get("version_id"),
            etag=identity.get("etag"),
            size=identity.get("size"),
        ),
        status=status,
        verdict=str(report["verdict"]["verdict"]),
        reasons=list(report["verdict"]["reasons"]),
        page_count=int(report["facts"]["page_count"]),
        pages=pages,
        document_reasons=document_reasons,
        report_bucket=status.report_bucket,
        report_key=status.report_key,
        outside_pages=findings_outside_pages(report["checks"]["sensitive_data"]),
    )


def _read_report(settings: Settings, bucket: str, key: str) -> dict[str, Any]:
    body = ResultStore(s3_client(settings.s3), bucket).read(key)
    if body is None:
        raise CommandError(f"s3://{bucket}/{key} is gone")
    report: dict[str, Any] = json.loads(body)
    return report


def pages_to_review(
    report: dict[str, Any], reasons: list[str]
) -> tuple[list[PageToReview], list[str]]:
    """The pages each reason lists in the report (with parse errors as samples), and the
    reasons that list none."""
    pointed = reason_pages(report)
    by_page: dict[int, list[str]] = {}
    document_reasons = []
    for reason in reasons:
        listed = pointed.get(reason, [])
        if not listed:
            document_reasons.append(reason)
        for page in listed:
            by_page.setdefault(page, []).append(reason)
    errors = page_error_messages(report)
    pages = [
        PageToReview(page=page, reasons=found, samples=errors.get(page, []))
        for page, found in sorted(by_page.items())[:MAX_PAGES_SHOWN]
    ]
    return pages, document_reasons


def with_page_results(
    store: ResultStore, report: dict[str, Any], pages: list[PageToReview]
) -> list[PageToReview]:
    """``pages`` with what their results in the report's chunk files add: the masked
    samples of the sensitive data found (``type: sample``), and how far to turn a scan
    that lay sideways or upside down."""
    layout = report.get("pages") or {}
    chunk_pages = int(layout.get("chunk_pages") or 0)
    chunks: list[str] = list(layout.get("chunks") or [])
    if not chunk_pages or not chunks:
        return pages
    wanted = {page.page for page in pages}
    results: dict[int, dict[str, Any]] = {}
    for index in sorted({(page - 1) // chunk_pages for page in wanted}):
        if index >= len(chunks):
            continue
        body = store.read(chunks[index]) or b""
        for line in body.splitlines():
            result = json.loads(line) if line else {}
            if result.get("page") in wanted:
                results[int(result["page"])] = result
    return [_with_result(page, results.get(page.page, {})) for page in pages]


def _with_result(page: PageToReview, result: dict[str, Any]) -> PageToReview:
    found = result.get("sensitive_samples") or {}
    samples = [f"{kind}: {sample}" for kind, values in sorted(found.items()) for sample in values]
    turn = result.get("ocr_rotation")
    return dataclasses.replace(
        page,
        samples=page.samples + samples,
        turn=turn if turn in (90, 180, 270) else 0,
    )


async def decide(client: Client, workflow_id: str, decision: ReviewDecision) -> ReviewOutcome:
    """Send ``decision`` to the check ``workflow_id``: its outcome once recorded.

    The decision ID is the Update's ID: sending the same decision again (a retried
    request, a rerun bulk decision) returns the first outcome, also once the check has
    ended.

    Raises:
        ReviewRefusedError: the check refused it (the message says why), or it does not
            wait for a decision.
    """
    try:
        ReviewAction(decision.action)
    except ValueError:
        raise ReviewRefusedError(
            f"unknown action {decision.action!r}; one of {', '.join(ReviewAction)}"
        ) from None
    handle = client.get_workflow_handle(workflow_id, result_type=CheckSummary)
    try:
        outcome: ReviewOutcome = await handle.execute_update(
            REVIEW_UPDATE, decision, id=decision.decision_id, result_type=ReviewOutcome
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = getattr(cause, "message", None) or str(cause or exc)
        raise ReviewRefusedError(f"{workflow_id} refused the decision: {message}") from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return await _decided_before(handle, workflow_id, decision)
    return outcome


async def _decided_before(
    handle: WorkflowHandle[Any, CheckSummary], workflow_id: str, decision: ReviewDecision
) -> ReviewOutcome:
    """The outcome of a check that has ended: ours if it took this decision."""
    try:
        summary = await handle.result()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise ReviewRefusedError(f"no check {workflow_id} in Temporal") from None
        raise
    except Exception as exc:  # failed, cancelled, terminated: it decides nothing
        raise ReviewRefusedError(f"{workflow_id} has ended without a decision: {exc}") from None
    outcome = summary.decision
    if outcome is not None and outcome.decision.decision_id == decision.decision_id:
        return outcome
    if outcome is not None:
        first = outcome.decision
        raise ReviewRefusedError(
            f"{workflow_id} was already decided: {first.action} by {first.reviewer} at "
            f"{outcome.decided_at} (decision {first.decision_id})"
        )
    if summary.review_state == ReviewState.SUPERSEDED:
        raise ReviewRefusedError(f"{workflow_id} was superseded by {summary.superseded_by}")
    raise ReviewRefusedError(f"{workflow_id} has ended; it does not wait for a decision")


async def awaiting_review(handle: WorkflowHandle[Any, Any]) -> ReviewStatus | None:
    """A check's ``review`` query answer while it waits for a reviewer's decision; None
    when it does not wait, or cannot answer yet."""
    try:
        status: ReviewStatus = await handle.query(REVIEW_QUERY, result_type=ReviewStatus)
    except (RPCError, WorkflowQueryFailedError):
        # No worker has answered yet, or the check is still being checked.
        return None
    return status if status.state is ReviewState.AWAITING else None


async def reported_awaiting_review(
    client: Client, settings: Settings, workflow_id: str
) -> CheckSummary | None:
    """The summary of a check that waits for a reviewer's decision, as its report has it
    (all its reasons, not only those it waits for), else None.

    Raises:
        CommandError: its report is gone.
    """
    status = await awaiting_review(client.get_workflow_handle(workflow_id))
    if status is None:
        return None
    report = await asyncio.to_thread(
        _read_report, settings, status.report_bucket, status.report_key
    )
    return CheckSummary.of_report(
        report, bucket=status.report_bucket, key=status.report_key, review_state=status.state.value
    )


def bulk_decision_id(workflow_id: str, bulk_request: str) -> str:
    """The decision ID of one check's decision in a bulk decision: the same for the same
    check and bulk request, so a rerun sends the same decisions (and decides nothing
    twice)."""
    digest = hashlib.sha256(f"{bulk_request}\n{workflow_id}".encode()).hexdigest()[:32]
    return f"bulk-{digest}"


class Pacer:
    """At most ``per_second`` starts per second, across concurrent callers."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = time.monotonic()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self._interval
        if delay > 0:
            await asyncio.sleep(delay)
