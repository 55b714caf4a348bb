"""The time-skipping test server, with docpipe's search attributes registered, for the
workflow tests that run DocumentCheckWorkflow against stand-in activities; and the dev
server for those that need no time skipped."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from infra.ports import LOOPBACK
from infra.ports import free_ports
from pipeline import search_attributes as sa


@contextlib.asynccontextmanager
async def time_skipping_environment() -> AsyncIterator[WorkflowEnvironment]:
    """The locked test server (next to the interpreter), started for the block."""
    server = Path(sys.executable).parent / "temporal-test-server"
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(server)
    ) as started:
        await started.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace="default",
                search_attributes={
                    key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
                    for key in sa.ALL
                },
            )
        )
        yield started


@contextlib.asynccontextmanager
async def local_environment() -> AsyncIterator[WorkflowEnvironment]:
    """The locked dev server (next to the interpreter) on a loopback port of our choosing,
    with docpipe's search attributes, started for the block: for workflow tests that need
    no time skipped.

    The time-skipping server is not the real one: a bulk re-check that cancelled a child
    waiting for review once hung there for good (the test timed out after 300 s, and the
    module's event loop never closed), in one suite run of several, never on its own."""
    server = Path(sys.executable).parent / "temporal"
    (port,) = free_ports(1)
    async with await WorkflowEnvironment.start_local(
        ip=LOOPBACK,
        port=port,
        search_attributes=sa.ALL,
        dev_server_existing_path=str(server),
    ) as started:
        yield started
