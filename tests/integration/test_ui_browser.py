"""A real browser on the Temporal Web UI: a docpipe filter finds the document's workflow.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped with the install command
when it is missing.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.browser import INSTALL_HINT, chromium_binary, dump_dom, workflows_url
from infra.clients import temporal_client
from infra.settings import Settings
from infra.stack import EmbeddedStack
from pipeline.labels import static_details, static_summary
from pipeline.models import WORKFLOW_NAME, CheckRequest, CheckSummary
from tests.conftest import StartComponent
from tests.support.intake import upload
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for

pytestmark = pytest.mark.skipif(
    chromium_binary() is None, reason=f"the browser test needs chromium; {INSTALL_HINT}"
)


async def test_ui_lists_the_document_under_a_docpipe_filter(
    stack: EmbeddedStack, settings: Settings, start_component: StartComponent
) -> None:
    start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    document = upload(
        settings, f"ui/{uuid.uuid4().hex[:8]}/with blank.pdf", make_pdf(["text", "blank"])
    )
    request = CheckRequest(
        document=document,
        results_bucket=settings.s3.results_bucket,
        results_prefix=document.results_prefix(settings.s3.results_prefix),
    )
    handle = await client.start_workflow(
        WORKFLOW_NAME,
        request,
        id=document.workflow_id,
        task_queue=settings.temporal.task_queue,
        result_type=CheckSummary,
        static_summary=static_summary(request),
        static_details=static_details(request),
    )
    assert (await handle.result()).verdict == "review"
    query = f"DocpipeObjectKey = '{document.key}' AND DocpipeStatus = 'review'"

    async def visible() -> bool:
        return any([True async for _ in client.list_workflows(query)])

    await async_wait_for(visible, 15, "visibility to list the check")
    url = workflows_url(stack.ui_url, settings.temporal.namespace, query)
    dom = ""
    for _ in range(3):  # a loaded machine may need a second look
        dom = await asyncio.to_thread(dump_dom, url)
        if document.workflow_id in dom:
            break
    assert document.workflow_id in dom, f"{document.workflow_id} not rendered at {url}"
