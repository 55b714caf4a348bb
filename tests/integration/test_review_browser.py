"""A reviewer approves a waiting check in a real browser, and the check ends with that
decision, recorded under the reviewer the page authenticated; a scan that lay sideways is
seen upright.

Playwright drives Debian's ``chromium``; skipped with the install command when it is
missing.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Page
from playwright.async_api import async_playwright
from playwright.async_api import expect

from app.browser import INSTALL_HINT
from app.browser import PLAYWRIGHT_ARGS
from app.review_auth import new_token
from app.review_queue import PageToReview
from infra.clients import temporal_client
from infra.ports import free_ports
from infra.ports import port_open
from infra.settings import Settings
from pipeline.models import CheckSummary
from pipeline.review import REVIEW_QUERY
from pipeline.review import ReviewState
from pipeline.review import ReviewStatus
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.intake import upload
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.polling import wait_for
from tests.support.review_pages import ALICE_TOKEN
from tests.support.review_pages import MemoryReviewLoop
from tests.support.review_pages import review_page
from tests.support.settings import with_review

CHROMIUM = Path("/usr/bin/chromium")

# On the document's first page: the review page draws it, and never writes it in HTML.
DOCUMENT_TEXT = "Quarterly zebra ledger"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"the browser test needs chromium; {INSTALL_HINT}"
    ),
]


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    """A page of Debian's Chromium, driven by Playwright; the browser closes after."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(PLAYWRIGHT_ARGS)
        )
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def test_a_reviewer_approves_a_waiting_check_in_the_browser_and_it_completes_so(
    settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    settings = with_review(settings)
    start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    document = upload(
        settings, f"review/{uuid.uuid4().hex[:8]}/with blank.pdf", make_pdf([DOCUMENT_TEXT, ""])
    )
    handle = await start_check(client, settings, document)

    async def awaiting() -> bool:
        status = await handle.query(REVIEW_QUERY, result_type=ReviewStatus)
        return status.state is ReviewState.AWAITING

    await async_wait_for(awaiting, 120, "the check to wait for a decision")

    token = new_token()
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(f"alice:{token}\n")
    [port] = free_ports(1)
    start_component(
        ["review", "serve", "--port", str(port), "--tokens-file", str(tokens_file)], settings
    )
    wait_for(lambda: port_open(port), 60, "the review page to listen")
    url = f"http://127.0.0.1:{port}"

    async with chromium_page() as page:
        await page.goto(f"{url}/login#token={token}")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.locator(".who")).to_have_text("alice", timeout=30_000)
        link = page.get_by_role("link", name=document.document_id)

        async def listed() -> bool:
            # Visibility lists a waiting check a moment after it begins to wait.
            await page.reload()
            return await link.count() > 0

        await async_wait_for(listed, 60, "the queue to list the check")
        await link.click()
        await expect(page.locator("section.page img").first).to_be_visible()
        assert "zebra" not in (await page.content()).lower()
        sections = await page.locator("section.page").evaluate_all("all => all.map(s => s.id)")
        shown = [int(section.removeprefix("page-")) for section in sections]
        assert 2 in shown
        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator("h1.decided")).to_have_text("Approved", timeout=60_000)
        await expect(page.locator(".reviewer")).to_have_text("alice")

    summary = await client.get_workflow_handle(handle.id, result_type=CheckSummary).result()
    assert summary.decision is not None
    assert summary.decision.decision.reviewer == "alice"
    assert summary.decision.decision.action == "approve"
    assert summary.decision.decision.pages_viewed == shown
    assert summary.decision.final_verdict == "pass"


@pytest.mark.parametrize("from_login_page", [False, True])
async def test_a_login_url_fills_in_the_token_and_logs_in_only_when_pressed(
    from_login_page: bool,
) -> None:
    review_loop = MemoryReviewLoop()
    async with review_page(review_loop) as url, chromium_page() as page:
        if from_login_page:
            # Then only the fragment changes: no page loads.
            await page.goto(f"{url}/login")
        await page.goto(f"{url}/login#token={ALICE_TOKEN}")
        await expect(page.locator("#token")).to_have_value(ALICE_TOKEN)
        await expect(page.locator("#filled")).to_be_visible()
        assert "token" not in page.url
        # Not logged in by the link alone: another site could open such a link.
        await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        assert await page.locator(".who").count() == 0
        await page.get_by_role("button", name="Log in").click()
        await expect(page.locator(".who")).to_have_text("alice", timeout=30_000)


async def test_a_scan_that_lay_sideways_is_seen_upright_in_the_browser() -> None:
    review_loop = MemoryReviewLoop()
    item = review_loop.add(
        "lying.pdf",
        make_pdf(["A portrait page", "Another"]),
        [
            PageToReview(page=1, reasons=["sensitive_data"], turn=90),
            PageToReview(page=2, reasons=["blank_pages"]),
        ],
    )
    async with review_page(review_loop) as url, chromium_page() as page:
        await page.goto(f"{url}/login#token={ALICE_TOKEN}")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.locator(".who")).to_have_text("alice", timeout=30_000)
        await page.goto(f"{url}/check?id={quote(item.workflow_id, safe='')}")
        turned, upright = page.locator("#page-1 img"), page.locator("#page-2 img")
        for image in (turned, upright):
            await expect(image).to_be_visible()
            await expect(image).to_have_js_property("complete", True)
        sizes = [
            await image.evaluate("i => [i.naturalWidth, i.naturalHeight]")
            for image in (turned, upright)
        ]
        await expect(page.locator("#page-1 .turned")).to_contain_text("turned 90")
        assert await page.locator("#page-2 .turned").count() == 0
    # The portrait page drawn turned a quarter: landscape, the other as it is.
    assert sizes[0] == sizes[1][::-1] and sizes[1][1] > sizes[1][0]
