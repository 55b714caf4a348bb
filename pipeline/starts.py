"""Starting a document check: the one way, used by the intake and by operators' re-checks.

A check's workflow ID is its identity, so a start never doubles a check: an ID that is
running (``FAIL``) or has run (``REJECT_DUPLICATE``) is not started again; re-checking on
purpose is a new ID. Imports only what a client process needs, not the workflow code. A
bulk re-check (``RecheckWorkflow``) starts its re-checks as child workflows, with
``check_summary`` and the same never-reused IDs.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import Priority, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from pipeline import search_attributes as sa
from pipeline.labels import static_details, static_summary
from pipeline.lanes import describe_lane
from pipeline.models import WORKFLOW_NAME, CheckRequest


async def start_check(
    client: Client,
    request: CheckRequest,
    *,
    workflow_id: str,
    task_queue: str,
    summary_suffix: str = "",
    priority: Priority | None = None,
) -> bool:
    """Start ``DocumentCheckWorkflow`` for ``request`` unless that ID ran or runs.

    A running check with this ID is not doubled (``FAIL``), a finished one is not run
    again (``REJECT_DUPLICATE``): Temporal refuses both with the same error, so this call
    knows from it alone whether it started the check. A start the client retried after
    Temporal had taken it (the same request ID) is still this call's: Temporal answers it
    as the start it was, before any conflict policy applies.

    Args:
        summary_suffix: added to the workflow's one-line summary (e.g. `` (re-check 2)``).

    Returns:
        True if this call started the check, False if the ID was running or had run.

    Raises:
        RPCError: Temporal failed or cannot be reached.
    """
    try:
        await client.start_workflow(
            WORKFLOW_NAME,
            request,
            id=workflow_id,
            task_queue=task_queue,
            static_summary=check_summary(request, summary_suffix, priority),
            static_details=static_details(request),
            search_attributes=sa.at_start(request),
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            priority=priority or Priority.default,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


def check_summary(request: CheckRequest, suffix: str = "", priority: Priority | None = None) -> str:
    """The one-line summary a check is started with: the document, then its lane."""
    lane = f" [{describe_lane(priority)}]" if priority and priority.priority_key else ""
    return static_summary(request) + suffix + lane
