"""start_check on a real Temporal dev server: an ID starts once, whether it runs or ran.

No worker runs here: a started check stays running until the test ends it, which is all
the start's contract is about.
"""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from pipeline.models import CheckRequest
from pipeline.models import DocumentRef
from pipeline.starts import start_check

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture
def client(dev_server: WorkflowEnvironment) -> Client:
    return dev_server.client


async def _start(client: Client, workflow_id: str) -> bool:
    document = DocumentRef(bucket="documents", key="in/a.pdf", version_id=workflow_id)
    request = CheckRequest(document=document, results_bucket="results", results_prefix="r")
    return await start_check(client, request, workflow_id=workflow_id, task_queue="no-worker")


async def test_a_running_check_is_not_doubled_and_a_finished_one_not_run_again(
    client: Client,
) -> None:
    workflow_id = f"docpipe/starts/{uuid.uuid4()}"
    assert await _start(client, workflow_id)
    handle = client.get_workflow_handle(workflow_id)
    first_run = (await handle.describe()).run_id
    assert not await _start(client, workflow_id)
    await handle.terminate("the test ends the check")
    assert not await _start(client, workflow_id)
    # Still the one run the first start began, and it stays ended.
    description = await handle.describe()
    assert description.run_id == first_run
    assert description.status == WorkflowExecutionStatus.TERMINATED
