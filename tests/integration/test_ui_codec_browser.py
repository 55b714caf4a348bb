"""A real browser on the Temporal Web UI pointed at docpipe's codec server: a check's
input, sealed in Temporal, shows decoded on its page.

The object key is the witness: with encryption on, keys are hashed in the workflow ID and
search attributes, so the page can show the key only by decoding the input. Needs
Debian's ``chromium`` (``.ci/run`` installs it); skipped with the install command when it
is missing.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import time
import uuid

import pytest

from app.browser import INSTALL_HINT
from app.browser import chromium_binary
from app.browser import dump_dom
from app.lookups import workflow_url
from infra.clients import temporal_client
from infra.settings import CodecSettings
from infra.settings import Settings
from infra.stack import EmbeddedStack
from pipeline.models import DocumentRef
from tests.support.checks import start_check
from tests.support.intake import upload
from tests.support.pdfs import make_pdf
from tests.support.settings import hashing_by_default

pytestmark = pytest.mark.skipif(
    chromium_binary() is None, reason=f"the browser test needs chromium; {INSTALL_HINT}"
)

# The UI loads, then asks the codec server: give each look this much virtual time, and
# look again until the deadline (a loaded machine renders slowly).
_LOOK_BUDGET_MS = 10_000
_DEADLINE_S = 120


async def _page_when(url: str, shown: str, rendered: str) -> str:
    """The page's DOM once it holds ``shown`` (or, at the deadline, once it has at least
    rendered ``rendered``): looked at again and again, never slept on."""
    deadline = time.monotonic() + _DEADLINE_S
    dom = ""
    while time.monotonic() < deadline:
        dom = await asyncio.to_thread(dump_dom, url, budget_ms=_LOOK_BUDGET_MS)
        if shown in dom:
            return dom
    assert rendered in dom, f"{url} did not render {rendered!r} in {_DEADLINE_S} s"
    return dom


async def _start_unworked(settings: Settings, document: DocumentRef) -> str:
    """Start the check of ``document`` on a queue no worker polls, and end it: its input,
    sealed with the settings' key, stays in its history. (The page of a running workflow
    long-polls its history, which stops a headless browser's virtual clock.) Returns its
    workflow ID."""
    client = await temporal_client(settings.temporal, settings.codec)
    queue = f"ui-codec-{uuid.uuid4().hex[:8]}"
    handle = await start_check(client, settings, document, task_queue=queue)
    await handle.terminate("shown, not checked")
    return handle.id


async def test_the_ui_shows_the_decoded_input_through_the_codec_server(
    stack: EmbeddedStack, settings: Settings
) -> None:
    assert stack.codec_url is not None, "the stack runs a codec server when it encrypts"
    settings = hashing_by_default(settings)
    document = upload(settings, f"ui-{uuid.uuid4().hex[:8]}/decoded.pdf", make_pdf(["text"]))
    workflow_id = await _start_unworked(settings, document)
    assert document.key not in workflow_id

    dom = await _page_when(workflow_url(settings, workflow_id), document.key, workflow_id)
    assert document.key in dom, "the UI did not show the input decoded"


async def test_the_ui_shows_a_payload_it_cannot_decode_still_sealed(
    stack: EmbeddedStack, settings: Settings
) -> None:
    # Sealed with a key the codec server does not hold: it refuses, and the UI shows
    # what Temporal stores.
    foreign = CodecSettings(
        keys=(f"foreign:{base64.b64encode(os.urandom(32)).decode()}",), active_key="foreign"
    )
    settings = dataclasses.replace(hashing_by_default(settings), codec=foreign)
    document = upload(settings, f"ui-{uuid.uuid4().hex[:8]}/sealed.pdf", make_pdf(["text"]))
    workflow_id = await _start_unworked(settings, document)

    sealed = base64.b64encode(b"binary/encrypted").decode()
    dom = await _page_when(workflow_url(settings, workflow_id), sealed, workflow_id)
    assert document.key not in dom
    assert workflow_id in dom
