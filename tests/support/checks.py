"""The one way tests start a document check: as the intake does, without Kafka.

Tests that need a check to run somewhere special (a queue no worker polls, a results
bucket that does not exist, one attempt only) say so through its options, so that every
check a test starts carries what the intake's carry: search attributes, summary, details.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.client import Client
from temporalio.client import WorkflowHandle
from temporalio.common import Priority

from infra.check_requests import check_request
from infra.settings import Settings
from pipeline import starts
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef


async def start_check(
    client: Client,
    settings: Settings,
    document: DocumentRef,
    *,
    workflow_id: str | None = None,
    task_queue: str | None = None,
    priority: Priority | None = None,
    **request_fields: Any,
) -> WorkflowHandle[Any, CheckSummary]:
    """Start a check of ``document`` the way the intake does; its handle.

    Args:
        workflow_id: default: the request's (the document's, its key hashed if the
            settings hash keys).
        task_queue: default: the settings' (e.g. a queue no worker polls, to keep the
            check from running).
        priority: the lane (default: none, as a test's checks need no fair share).
        request_fields: further ``CheckRequest`` fields (``max_attempts``,
            ``results_bucket``, ...).

    Raises:
        AssertionError: a check with this workflow ID runs or ran already.
    """
    request = dataclasses.replace(check_request(settings, document), **request_fields)
    workflow_id = workflow_id or request.workflow_id
    started = await starts.start_check(
        client,
        request,
        workflow_id=workflow_id,
        task_queue=task_queue or settings.temporal.task_queue,
        priority=priority,
    )
    assert started, f"{workflow_id} ran before"
    return client.get_workflow_handle(workflow_id, result_type=CheckSummary)
