"""What the views share: which check a name means, where it is in the UI, how it stands.

An operator names a check by its workflow ID (``docpipe/...``, also a re-check's) or by
its document ID (``<bucket>/<key>@<version>``, the first check of that version).
"""

from __future__ import annotations

import argparse
from typing import Any
from typing import TypeVar
from urllib.parse import quote

from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus
from temporalio.client import WorkflowHandle
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from app.command import CommandError
from app.command import Commands
from app.command import Handler
from infra.settings import Settings
from pipeline.models import WORKFLOW_ID_PREFIX
from pipeline.models import split_document_id
from pipeline.models import workflow_id_for
from pipeline.progress import PROGRESS_QUERY

Progress = TypeVar("Progress")

# How Temporal says that no worker answered a query: the server gave up waiting for one
# (DEADLINE_EXCEEDED), the client's deadline passed first (CANCELLED), or the workflow
# closed before any worker ran it (FAILED_PRECONDITION).
_UNANSWERED = frozenset(
    {
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.FAILED_PRECONDITION,
    }
)


class CheckNotFoundError(CommandError, LookupError):
    """No check (or not what was asked of it) goes by that name; the message says why.

    Each view raises its own kind; the command line prints the message of any of them
    and exits 1.
    """


def add_check_command(
    commands: Commands, name: str, help: str, handler: Handler
) -> argparse.ArgumentParser:
    """Add the command ``name`` about one check: it takes the check's ``ID`` (its workflow
    ID or its document ID) as ``args.check``."""
    parser = commands.add(name, help, handler)
    parser.add_argument("check", metavar="ID", help="workflow ID or document ID (bucket/key@v)")
    return parser


def looks_like_workflow_id(name: str) -> bool:
    """Whether ``name`` is a workflow ID rather than a document ID."""
    return name.startswith(WORKFLOW_ID_PREFIX)


def not_a_check(name: str) -> CheckNotFoundError:
    """The error for a name that is neither a workflow ID nor a document ID."""
    return CheckNotFoundError(
        f"no check {name!r}: give a workflow ID (docpipe/...) or a document ID "
        "(<bucket>/<key>@<version>)"
    )


def is_document_id(name: str) -> bool:
    """Whether ``name`` reads as ``<bucket>/<key>@<version>``."""
    try:
        split_document_id(name)
    except ValueError:
        return False
    return True


def workflow_ids_of(name: str, hashed: bool) -> tuple[str, ...]:
    """The workflow IDs that a workflow ID or a document ID may name, likeliest first.

    A workflow ID names itself. A document ID's check goes by the ID these settings give
    it (its key hashed when ``hashed``), or, if it started before hashing was switched, by
    the other form: a lookup tries both.

    Raises:
        CheckNotFoundError: ``name`` is neither.
    """
    if looks_like_workflow_id(name):
        return (name,)
    if not is_document_id(name):
        raise not_a_check(name)
    return (workflow_id_for(name, hashed=hashed), workflow_id_for(name, hashed=not hashed))


def workflow_url(settings: Settings, workflow_id: str) -> str:
    """The check's page in the Temporal Web UI."""
    temporal = settings.temporal
    return (
        f"{temporal.ui_url}/namespaces/{quote(temporal.namespace, safe='')}"
        f"/workflows/{quote(workflow_id, safe='')}"
    )


async def workflow_status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    """The workflow's status, or None when Temporal has no such workflow (yet)."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return description.status


async def query_progress(
    handle: WorkflowHandle[Any, Any], progress_type: type[Progress]
) -> Progress | None:
    """The workflow's ``progress`` query, as ``progress_type``; None when no worker answers
    it (none runs, or the workflow closed before one ran it) or the worker fails it (its
    workflow task is failing too): what Temporal itself says still tells a lot.

    Raises:
        RPCError: Temporal failed otherwise.
    """
    try:
        progress: Progress = await handle.query(PROGRESS_QUERY, result_type=progress_type)
    except WorkflowQueryFailedError:
        return None
    except RPCError as exc:
        if exc.status in _UNANSWERED:
            return None
        raise
    return progress
