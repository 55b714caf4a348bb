"""DocumentCheckWorkflow against stand-in activities, on a Temporal dev server of its own."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pipeline import search_attributes as sa
from pipeline.models import (
    CheckPagesInput,
    CheckPagesResult,
    CheckPlan,
    CheckRequest,
    CheckSummary,
    DocumentRef,
    FinalizeInput,
    InspectInput,
    InspectResult,
    PublishResultInput,
)
from pipeline.workflows import DocumentCheckWorkflow

DOCUMENT = DocumentRef(bucket="documents", key="in/a.pdf", version_id="v1")
# One server for the module: the tests share its event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    server = Path(sys.executable).parent / "temporal"
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(server), search_attributes=list(sa.ALL)
    ) as started:
        yield started


def _activities(
    *, inspect_error: Exception | None = None, pages_errors: list[Exception] | None = None
) -> list[Callable[..., Any]]:
    """Stand-ins of the four activities; the first ones raise the given errors in turn."""
    pages_errors = list(pages_errors or [])

    @activity.defn(name="inspect")
    async def inspect(input: InspectInput) -> InspectResult:
        if inspect_error is not None:
            raise inspect_error
        return InspectResult(
            size=100,
            pdf_version="1.7",
            page_count=30,
            encrypted=False,
            plan=CheckPlan(chunk_pages=25, heartbeat_timeout_s=30),
        )

    @activity.defn(name="check_pages")
    async def check_pages(input: CheckPagesInput) -> CheckPagesResult:
        if pages_errors:
            raise pages_errors.pop(0)
        return CheckPagesResult(
            pages_checked=30, chunks=2, chunk_pages=25, first_page_this_attempt=1, attempt=1
        )

    @activity.defn(name="finalize")
    async def finalize(input: FinalizeInput) -> CheckSummary:
        return CheckSummary(document_id=input.document.document_id, verdict="pass")

    @activity.defn(name="publish_result")
    async def publish_result(input: PublishResultInput) -> None:
        return None

    return [inspect, check_pages, finalize, publish_result]


async def _run(env: WorkflowEnvironment, activities: list[Callable[..., Any]]) -> CheckSummary:
    queue = f"workflow-{uuid.uuid4()}"
    request = CheckRequest(
        document=DOCUMENT,
        results_bucket="results",
        results_prefix="r/a",
        page_task_queue=queue,
        max_attempts=2,
    )
    async with Worker(
        env.client, task_queue=queue, workflows=[DocumentCheckWorkflow], activities=activities
    ):
        result: CheckSummary = await env.client.execute_workflow(
            DocumentCheckWorkflow.run, request, id=f"wf-{uuid.uuid4()}", task_queue=queue
        )
        return result


async def _failure(env: WorkflowEnvironment, activities: list[Callable[..., Any]]) -> str:
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(env, activities)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "CheckFailed"
    return cause.message


async def test_retries_used_up_are_counted_in_the_failure(env: WorkflowEnvironment) -> None:
    message = await _failure(env, _activities(inspect_error=RuntimeError("S3 is down")))
    assert message.startswith(f"inspect of {DOCUMENT.document_id} failed 2 times")
    assert "RuntimeError: S3 is down" in message
    assert f"`docpipe reprocess {DOCUMENT.document_id}`" in message


async def test_a_non_retryable_failure_says_so_and_names_its_attempt(
    env: WorkflowEnvironment,
) -> None:
    unusable = ApplicationError(
        "s3://results/r/a/pages/0000001.jsonl holds pages 1-100, not pages 1-25: it was not "
        "written by this check",
        {"attempt": 2},
        type="result_unusable",
        non_retryable=True,
    )
    activities = _activities(pages_errors=[RuntimeError("a worker was lost"), unusable])
    message = await _failure(env, activities)
    assert message.startswith(
        f"check_pages of {DOCUMENT.document_id} failed with an error that retrying cannot "
        "fix (on attempt 2)"
    )
    assert "holds pages 1-100, not pages 1-25" in message
    # Not the advice for infrastructure failures, nor a count of retries never made.
    assert "S3 access" not in message and "attempts" not in message


async def test_a_check_that_works_ends_with_its_summary(env: WorkflowEnvironment) -> None:
    summary = await _run(env, _activities())
    assert summary.verdict == "pass"
