"""The Temporal SDK core's own records reach a worker's log as its other records do."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.settings import TelemetrySettings
from infra.telemetry import CORE_LOGGER
from infra.telemetry import start_telemetry
from tests.support.polling import async_wait_for

pytestmark = pytest.mark.asyncio(loop_scope="module")

# The core warns of a workflow task that took longer than this (TMPRL1104).
_CORE_SLOW_TASK_S = 5.0


@workflow.defn(name="SlowWorkflowTask", sandboxed=False)
class _SlowWorkflowTask:
    @workflow.run
    async def run(self) -> None:
        # Blocks the workflow task on purpose: what the core warns of.
        time.sleep(_CORE_SLOW_TASK_S + 0.5)  # noqa: ASYNC251


def _core_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == CORE_LOGGER]


async def test_a_core_warning_is_a_record_of_the_core_logger_not_a_line_on_stderr(
    dev_server: WorkflowEnvironment,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    telemetry = start_telemetry(TelemetrySettings(), "worker")
    options = telemetry.client_options()
    client = await Client.connect(
        dev_server.client.service_client.config.target_host, runtime=options["runtime"]
    )
    queue = f"core-logs-{uuid.uuid4()}"
    caplog.set_level(logging.WARNING, logger=CORE_LOGGER)
    # debug_mode: no deadlock detection, which would end a task blocked for 2 s.
    async with Worker(client, task_queue=queue, workflows=[_SlowWorkflowTask], debug_mode=True):
        await client.execute_workflow(_SlowWorkflowTask.run, id=queue, task_queue=queue)

        async def forwarded() -> list[logging.LogRecord]:
            # The core hands its records over in batches, a few milliseconds apart.
            return _core_records(caplog)

        (record, *_) = await async_wait_for(forwarded, 30, "the core's warning")
    assert record.levelno == logging.WARNING
    assert "TMPRL1104" in record.getMessage() and "\n" not in record.getMessage()
    assert "TMPRL1104" not in capfd.readouterr().err
