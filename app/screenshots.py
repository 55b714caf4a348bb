"""``make screenshots``: the Temporal UI as operators see docpipe, and the review page as
reviewers see it, saved into ``docs/``.

Starts the embedded stack on free ports (state in a temporary directory), a worker, a
consumer and the review page, checks the sample documents, then has headless Chromium
take pictures of the workflow list filtered by a docpipe search attribute
(``docs/ui-workflows.png``) and of the review page of the sample invoice, which waits for
a decision (``docs/review-page.png``). Everything it started is stopped again.

Run: ``python -m app.screenshots [--out docs]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from app.browser import INSTALL_HINT
from app.browser import PLAYWRIGHT_ARGS
from app.browser import BrowserError
from app.browser import chromium_binary
from app.browser import screenshot
from app.browser import workflows_url
from app.demo import sample_files
from app.demo import wait_for_checks
from app.demo import with_metrics_port
from app.review_web import start_dev_review_page
from app.submit import submit_files
from infra.clients import temporal_client
from infra.ports import free_ports
from infra.processes import ManagedProcess
from infra.processes import docpipe_process
from infra.processes import stop_all
from infra.settings import Settings
from infra.settings_env import to_env
from infra.stack import EmbeddedStack
from infra.stack import StackConfig

LIST_QUERY = "DocpipeBucket = 'documents'"
# The review page pictured is the sample invoice's, the one sample whose review reason is
# this: it has masked samples to show. (The queue names documents as their workflow IDs
# do: with keys hashed where payloads are encrypted, so the reason finds it.)
REVIEWED_REASON = "sensitive_data"


async def _check_samples(settings: Settings) -> None:
    """Submit the samples, wait for their checks and until visibility lists them."""
    client = await temporal_client(settings.temporal, settings.codec)
    submissions = await submit_files(settings, sample_files(), key_prefix="demo/")
    outcomes = await wait_for_checks(client, settings, submissions, timeout_s=180)
    failed = [o.workflow_id for o in outcomes if o.summary is None]
    if failed:
        raise RuntimeError(f"checks did not finish: {', '.join(failed)}")
    ids = {o.workflow_id for o in outcomes}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = {w.id async for w in client.list_workflows(LIST_QUERY)}
        if ids <= listed:
            break
        await asyncio.sleep(0.5)


async def review_page_screenshot(login_url: str, path: Path, *, timeout_s: float = 120) -> Path:
    """Log in to the review page, open the sample invoice's check, and save a PNG of it
    once its page images have loaded."""
    from playwright.async_api import async_playwright

    binary = chromium_binary()
    if binary is None:
        raise BrowserError(f"chromium is not installed; {INSTALL_HINT}")
    path.parent.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(binary), args=list(PLAYWRIGHT_ARGS)
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(login_url)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_selector(".who")
            row = page.locator("table.queue tr").filter(
                has=page.locator(".reason", has_text=REVIEWED_REASON)
            )
            link = row.locator("a")
            deadline = time.monotonic() + timeout_s
            # Visibility lists a waiting check a moment after it begins to wait.
            while not await link.count():
                if time.monotonic() > deadline:
                    raise BrowserError(f"the review queue listed no {REVIEWED_REASON} check")
                await asyncio.sleep(0.5)
                await page.reload()
            await link.first.click()
            await page.wait_for_function(
                "() => Array.from(document.images).every(i => i.complete && i.naturalWidth)",
                timeout=timeout_s * 1000,
            )
            await page.screenshot(path=str(path))
        finally:
            await browser.close()
    return path


def take_screenshots(out_dir: Path) -> list[Path]:
    """Run everything, take the pictures, stop everything. Returns the files written."""
    if chromium_binary() is None:
        raise BrowserError(f"chromium is not installed; {INSTALL_HINT}")
    with tempfile.TemporaryDirectory(prefix="docpipe-screenshots-") as state:
        stack = EmbeddedStack(StackConfig.on_free_ports(Path(state)))
        children: list[ManagedProcess] = []
        try:
            stack.start()
            live = stack.settings()
            for command, port in zip((["worker"], ["consume"]), free_ports(2), strict=True):
                children.append(
                    docpipe_process(
                        command,
                        settings_env=to_env(with_metrics_port(live, port)),
                        log_path=Path(state) / "logs" / f"{command[0]}.log",
                        base_env=os.environ,
                    )
                )
            review_page = start_dev_review_page(stack, live)
            children.append(review_page.process)
            asyncio.run(_check_samples(live))
            namespace = live.temporal.namespace
            return [
                screenshot(
                    workflows_url(live.temporal.ui_url, namespace, LIST_QUERY),
                    out_dir / "ui-workflows.png",
                    size=(1400, 700),
                ),
                asyncio.run(
                    review_page_screenshot(review_page.login_url, out_dir / "review-page.png")
                ),
            ]
        finally:
            stop_all(children, timeout=15)
            stack.stop()


def main() -> int:
    """``make screenshots``: refresh the UI pictures in the docs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", default="docs", help="directory for the PNG files")
    args = parser.parse_args()
    try:
        for path in take_screenshots(Path(args.out)):
            print(f"wrote {path}")
    except BrowserError as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
