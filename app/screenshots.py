"""``make screenshots``: the Temporal UI as operators see docpipe, saved into ``docs/``.

Starts the embedded stack on free ports (state in a temporary directory), a worker and a
consumer, checks the sample documents, then has headless Chromium take pictures of the
workflow list filtered by a docpipe search attribute (``docs/ui-workflows.png``).
Everything it started is stopped again.

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

from app.browser import BrowserError, chromium_binary, screenshot, workflows_url
from app.demo import sample_files, wait_for_checks, with_metrics_port
from app.submit import submit_files
from infra.clients import temporal_client
from infra.ports import free_ports
from infra.processes import ManagedProcess, docpipe_process, stop_all
from infra.settings import Settings
from infra.settings_env import to_env
from infra.stack import EmbeddedStack, StackConfig

LIST_QUERY = "DocpipeBucket = 'documents'"


async def _check_samples(settings: Settings) -> None:
    """Submit the samples, wait for their checks and until visibility lists them."""
    client = await temporal_client(settings.temporal, settings.codec)
    submissions = await submit_files(settings, sample_files(), key_prefix="demo/")
    outcomes = await wait_for_checks(
        client, submissions, hashed=settings.object_keys_hashed, timeout_s=180
    )
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


def take_screenshots(out_dir: Path) -> list[Path]:
    """Run everything, take the pictures, stop everything. Returns the files written."""
    if chromium_binary() is None:
        raise BrowserError("chromium is not installed: sudo apt-get install -y chromium")
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
            asyncio.run(_check_samples(live))
            namespace = live.temporal.namespace
            return [
                screenshot(
                    workflows_url(live.temporal.ui_url, namespace, LIST_QUERY),
                    out_dir / "ui-workflows.png",
                    size=(1400, 700),
                )
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
