"""What the views share: which check a name means, and how far a workflow says it is."""

from __future__ import annotations

import uuid

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from app.lookups import query_progress
from app.lookups import workflow_ids_of
from pipeline.models import workflow_id_for
from pipeline.progress import PROGRESS_QUERY
from pipeline.progress import CheckProgress
from pipeline.progress import CheckStep

# Answers the progress query as a check does, until it is told to stop.
_ANSWER = CheckProgress(step=CheckStep.CHECK_PAGES, page_count=12, pages_checked=5, attempt=1)


@workflow.defn(name="AnswersProgress", sandboxed=False)
class _AnswersProgress:
    def __init__(self) -> None:
        self._stop = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._stop)

    @workflow.signal
    def stop(self) -> None:
        self._stop = True

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> CheckProgress:
        return _ANSWER


@workflow.defn(name="FailsProgress", sandboxed=False)
class _FailsProgress:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> CheckProgress:
        raise RuntimeError("cannot say")


@pytest.fixture
def client(dev_server: WorkflowEnvironment) -> Client:
    return dev_server.client


def test_status_takes_workflow_or_document_ids() -> None:
    workflow_id = "docpipe/documents/a.pdf@v1"
    assert workflow_ids_of(workflow_id, False) == (workflow_id,)
    assert workflow_ids_of(workflow_id, True) == (workflow_id,)
    with pytest.raises(LookupError, match="give a workflow ID"):
        workflow_ids_of("a.pdf", False)


def test_a_document_id_is_looked_up_under_the_settings_form_first_then_the_other() -> None:
    # Hashing may have been switched since the check started: both forms are tried.
    hashed = workflow_id_for("documents/a.pdf@v1", hashed=True)
    assert "a.pdf" not in hashed
    clear = "docpipe/documents/a.pdf@v1"
    assert workflow_ids_of("documents/a.pdf@v1", True) == (hashed, clear)
    assert workflow_ids_of("documents/a.pdf@v1", False) == (clear, hashed)


@pytest.mark.asyncio(loop_scope="module")
async def test_progress_is_read_as_the_value_the_workflow_answers(client: Client) -> None:
    queue = f"lookups-{uuid.uuid4()}"
    async with Worker(client, task_queue=queue, workflows=[_AnswersProgress, _FailsProgress]):
        answers = await client.start_workflow(
            _AnswersProgress.run, id=f"answers-{uuid.uuid4()}", task_queue=queue
        )
        assert await query_progress(answers, CheckProgress) == _ANSWER
        await answers.signal(_AnswersProgress.stop)
        await answers.result()
        # Closed, it still answers, as long as a worker runs.
        assert await query_progress(answers, CheckProgress) == _ANSWER
        fails = await client.start_workflow(
            _FailsProgress.run, id=f"fails-{uuid.uuid4()}", task_queue=queue
        )
        assert await query_progress(fails, CheckProgress) is None
        await fails.terminate()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_workflow_no_worker_ever_ran_has_no_progress(client: Client) -> None:
    handle = await client.start_workflow(
        "AnswersProgress", id=f"unseen-{uuid.uuid4()}", task_queue=f"nobody-{uuid.uuid4()}"
    )
    await handle.terminate()
    assert await query_progress(handle, CheckProgress) is None
