"""A real browser on the Temporal Web UI: a docpipe filter finds the document's workflow.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped with the install command
when it is missing.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.browser import INSTALL_HINT
from app.browser import chromium_binary
from app.browser import dump_dom
from app.browser import workflows_url
from infra.clients import temporal_client
from infra.settings import Settings
from infra.stack import EmbeddedStack
from tests.conftest import StartComponent
from tests.support.checks import start_check
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
    handle = await start_check(client, settings, document)
    assert (await handle.result()).verdict == "review"
    query = f"DocpipeObjectKey = '{document.key}' AND DocpipeStatus = 'review'"

    async def visible() -> bool:
        return any([True async for _ in client.list_workflows(query)])

    await async_wait_for(visible, 15, "visibility to list the check")
    url = workflows_url(stack.ui_url, settings.temporal.namespace, query)
    dom = ""
    for _ in range(3):  # a loaded machine may need a second look
        dom = await asyncio.to_thread(dump_dom, url)
        if handle.id in dom:
            break
    assert handle.id in dom, f"{handle.id} not rendered at {url}"
