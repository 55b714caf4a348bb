"""Starting a document check: the one way, used by the intake and by operators' re-checks.

A check's workflow ID is its identity, so a start never doubles a check: an ID that is
running (``FAIL``) or has run (``REJECT_DUPLICATE``) is not started again; re-checking on
purpose is a new ID. Imports only what a client process needs, not the workflow code. A
bulk re-check (``RecheckWorkflow``) starts its re-checks as child workflows, with
``check_summary`` and the same never-reused IDs. ``started_request`` reads back what a
check was started with: its input is the one place that names the document in full when
its key is hashed in the workflow ID and search attributes.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import Priority
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from pipeline import search_attributes as sa
from pipeline.labels import static_details
from pipeline.labels import static_summary
from pipeline.lanes import describe_lane
from pipeline.models import WORKFLOW_NAME
from pipeline.models import CheckRequest


async def start_check(
    client: Client,
    request: CheckRequest,
    *,
    task_queue: str,
    workflow_id: str | None = None,
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
        workflow_id: default: the request's own (``CheckRequest.workflow_id``).
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
            id=workflow_id or request.workflow_id,
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


async def started_request(
    client: Client, workflow_id: str, run_id: str | None = None
) -> CheckRequest | None:
    """The request a check was started with, decoded from the first event of its history
    (through the client's codec); None if Temporal has no such workflow.

    Raises:
        ValueError: the workflow is not a document check.
        RPCError: Temporal failed or cannot be reached.
    """
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    try:
        async for event in handle.fetch_history_events(page_size=1):
            started = event.workflow_execution_started_event_attributes
            if started.workflow_type.name != WORKFLOW_NAME:
                break
            (request,) = await client.data_converter.decode(started.input.payloads, [CheckRequest])
            if isinstance(request, CheckRequest):
                return request
            break
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    raise ValueError(f"{workflow_id} is not a document check")
