"""The checks that wait for a reviewer, as Temporal visibility lists them.

Used by the review queue (``docpipe review``, the review page), by the worker's periodic
review metrics, and by newer checks, which supersede the waiting (and still checking) ones
of their document. Reads search attributes only: no document content, no workflow queries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime

from temporalio.client import Client
from temporalio.client import WorkflowExecution
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from pipeline import search_attributes as sa
from pipeline.models import RECHECK_ID_MARK
from pipeline.models import WORKFLOW_ID_PREFIX
from pipeline.models import WORKFLOW_NAME
from pipeline.review import SUPERSEDED_SIGNAL
from pipeline.review import Superseded

log = logging.getLogger(__name__)

# Every check that runs now.
_RUNNING_CHECKS = f"WorkflowType = '{WORKFLOW_NAME}' AND ExecutionStatus = 'Running'"
# Every check that waits for a reviewer's decision now.
AWAITING_QUERY = f"{_RUNNING_CHECKS} AND {sa.STATUS.name} = '{sa.AWAITING_REVIEW}'"
# However long the queue, a listing stops here (it is sorted in memory, oldest first).
MAX_LISTED = 10_000
# The checks a newer check of their document takes over: those that wait for review, and
# those still checking (told now, they end superseded at their report instead of waiting).
_SUPERSEDABLE_QUERY = (
    f"{_RUNNING_CHECKS} AND {sa.STATUS.name} IN ('{sa.AWAITING_REVIEW}', '{sa.CHECKING}')"
)


@dataclass(frozen=True, kw_only=True)
class WaitingReview:
    """One check in the review queue.

    Attributes:
        workflow_id: the check's workflow (what a decision is sent to).
        document_id: ``<bucket>/<key>@<version>`` as its workflow ID names it (the key
            hashed where keys are hashed).
        reasons: the reasons of its review verdict.
        waiting_since: when its report was written and the wait began (UTC).
        deadline: when it becomes overdue (None: not known).
        overdue: the deadline passed.
        page_count: the document's pages.
    """

    workflow_id: str
    document_id: str
    reasons: list[str]
    waiting_since: datetime
    deadline: datetime | None
    overdue: bool
    page_count: int
    bucket: str = ""
    object_key: str = ""

    def age_s(self, now: datetime | None = None) -> float:
        """Seconds it has waited."""
        return max(0.0, ((now or datetime.now(UTC)) - self.waiting_since).total_seconds())


def document_id_of(workflow_id: str) -> str:
    """The document ID a check's workflow ID names (a re-check's mark dropped)."""
    return workflow_id.removeprefix(WORKFLOW_ID_PREFIX).split(RECHECK_ID_MARK, 1)[0]


def _waiting(execution: WorkflowExecution) -> WaitingReview:
    found = execution.typed_search_attributes
    since = found.get(sa.REVIEW_SINCE) or execution.start_time
    return WaitingReview(
        workflow_id=execution.id,
        document_id=document_id_of(execution.id),
        reasons=list(found.get(sa.REASONS) or []),
        waiting_since=since,
        deadline=found.get(sa.REVIEW_DEADLINE),
        overdue=bool(found.get(sa.REVIEW_OVERDUE)),
        page_count=found.get(sa.PAGE_COUNT) or 0,
        bucket=found.get(sa.BUCKET) or "",
        object_key=found.get(sa.OBJECT_KEY) or "",
    )


def quoted(value: str) -> str:
    """A string literal of a visibility query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def list_waiting(client: Client, also: str = "") -> list[WaitingReview]:
    """The checks waiting for review (and matching the query clause ``also``), oldest
    first.

    Raises:
        RPCError: Temporal failed or cannot be reached.
    """
    query = AWAITING_QUERY + (f" AND {also}" if also else "")
    found: list[WaitingReview] = []
    async for execution in client.list_workflows(query, limit=MAX_LISTED):
        found.append(_waiting(execution))
    found.sort(key=lambda waiting: (waiting.waiting_since, waiting.workflow_id))
    return found


async def supersede_waiting(
    client: Client, original_workflow_id: str, new_workflow_id: str
) -> list[str]:
    """Tell the checks of a document that wait for review, or still check (its original
    check and its re-checks), that ``new_workflow_id`` took over: they end as superseded,
    those still checking once they are reported. Only checks that started before it: of
    two re-checks that take over at once, the newer stands.

    Returns:
        The workflow IDs told.
    """
    started = (await client.get_workflow_handle(new_workflow_id).describe()).start_time
    query = (
        f"{_SUPERSEDABLE_QUERY} AND WorkflowId STARTS_WITH {quoted(original_workflow_id)} "
        f"AND StartTime < '{started.astimezone(UTC).isoformat()}'"
    )
    running = [execution.id async for execution in client.list_workflows(query)]
    told = []
    for workflow_id in sorted(running):
        if workflow_id == new_workflow_id or (
            workflow_id != original_workflow_id
            and not workflow_id.startswith(original_workflow_id + RECHECK_ID_MARK)
        ):
            continue
        handle = client.get_workflow_handle(workflow_id)
        try:
            await handle.signal(SUPERSEDED_SIGNAL, Superseded(workflow_id=new_workflow_id))
        except RPCError as exc:
            # Decided or ended meanwhile: nothing to supersede.
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            continue
        log.info("%s superseded by %s", workflow_id, new_workflow_id)
        told.append(workflow_id)
    return told
