"""``docpipe demo``: the whole pipeline on the embedded stack, with sample documents."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus
from temporalio.client import WorkflowFailureError

from app.command import Commands
from app.dev import stack_config
from app.dev import stack_options
from app.lookups import workflow_status
from app.lookups import workflow_url
from app.review_queue import reported_awaiting_review
from app.review_web import start_dev_review_page
from app.submit import Submission
from app.submit import submit_files
from infra.clients import temporal_client
from infra.ports import LOOPBACK
from infra.ports import free_ports
from infra.processes import ManagedProcess
from infra.processes import docpipe_process
from infra.processes import exit_on_sigterm
from infra.processes import stop_all
from infra.settings import Settings
from infra.settings_env import to_env
from infra.stack import EmbeddedStack
from infra.stack import StackConfig
from pipeline.models import CheckSummary
from pipeline.review import ReviewState

SAMPLES_DIR = Path(__file__).parent / "samples"
_DONE = {
    WorkflowExecutionStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED,
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT,
}


@dataclass(frozen=True)
class Outcome:
    """How one document's check ended (or that it did not end in time)."""

    submission: Submission
    workflow_id: str
    summary: CheckSummary | None
    error: str | None


def with_metrics_port(settings: Settings, port: int) -> Settings:
    """``settings`` serving Prometheus metrics on ``port`` of the loopback interface."""
    telemetry = dataclasses.replace(settings.telemetry, metrics_port=port, metrics_host=LOOPBACK)
    return dataclasses.replace(settings, telemetry=telemetry)


def sample_files() -> list[Path]:
    """The sample PDFs the demo submits (committed, so the demo needs no generator)."""
    return sorted(SAMPLES_DIR.glob("*.pdf"))


async def wait_for_checks(
    client: Client,
    settings: Settings,
    submissions: Sequence[Submission],
    *,
    timeout_s: float,
    on_progress: Callable[[int, int, float], None] = lambda done, total, waited: None,
    check_alive: Callable[[], None] = lambda: None,
) -> list[Outcome]:
    """Wait until every submitted document's workflow has ended, or waits for a
    reviewer's decision, or the timeout passes."""
    hashed = settings.object_keys_hashed
    ids = [s.document.check_workflow_id(hashed) for s in submissions]
    started = time.monotonic()
    statuses: dict[str, WorkflowExecutionStatus | None] = {}
    # Checks that wait for a reviewer's decision: reported, as far as the demo goes.
    awaiting: dict[str, CheckSummary] = {}
    while True:
        check_alive()
        for workflow_id in ids:
            if statuses.get(workflow_id) not in _DONE and workflow_id not in awaiting:
                statuses[workflow_id] = await workflow_status(client, workflow_id)
                if statuses[workflow_id] == WorkflowExecutionStatus.RUNNING:
                    summary = await reported_awaiting_review(client, settings, workflow_id)
                    if summary is not None:
                        awaiting[workflow_id] = summary
        done = sum(1 for w, s in statuses.items() if s in _DONE or w in awaiting)
        waited = time.monotonic() - started
        on_progress(done, len(ids), waited)
        if done == len(ids) or waited > timeout_s:
            break
        await asyncio.sleep(0.5)
    outcomes = []
    for submission, workflow_id in zip(submissions, ids, strict=True):
        summary, error = awaiting.get(workflow_id), None
        if summary is None and statuses[workflow_id] == WorkflowExecutionStatus.COMPLETED:
            handle = client.get_workflow_handle(workflow_id, result_type=CheckSummary)
            summary = await handle.result()
        elif summary is None and (status := statuses[workflow_id]) in _DONE:
            assert status is not None
            try:
                await client.get_workflow_handle(workflow_id).result()
            except WorkflowFailureError as exc:
                error = f"{status.name.lower()}: {exc.cause or exc}"
            else:
                error = "ended without a result"
        elif summary is None:
            error = f"not finished after {timeout_s:.0f} s"
        outcomes.append(Outcome(submission, workflow_id, summary, error))
    return outcomes


def render_outcomes(settings: Settings, outcomes: Sequence[Outcome]) -> str:
    """The results table, then where to look for each document."""
    rows = [("document", "pages", "verdict", "reasons")]
    for o in outcomes:
        if o.summary:
            rows.append(
                (
                    o.submission.document.key,
                    str(o.summary.page_count),
                    o.summary.verdict,
                    ", ".join(o.summary.reasons) or "-",
                )
            )
        else:
            rows.append((o.submission.document.key, "?", "ERROR", o.error or "?"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    for o in outcomes:
        lines.append(f"{o.submission.document.key}")
        lines.append(f"  workflow  {o.workflow_id}")
        if o.summary:
            lines.append(f"  report    s3://{o.summary.report_bucket}/{o.summary.report_key}")
            if o.summary.review_state == ReviewState.AWAITING:
                lines.append(
                    f"  review    awaiting a decision: docpipe review show {o.workflow_id}"
                )
        lines.append(f"  UI        {workflow_url(settings, o.workflow_id)}")
    return "\n".join(lines)


def review_hint(settings: Settings) -> str:
    """Where the checks that await review are decided: the review page when its URL is
    known (DOCPIPE_REVIEW_URL), else the command line."""
    if settings.review.url:
        return f"review page: {settings.review.url}  (or `docpipe review list`)"
    return "checks await review: `docpipe review list`, then `docpipe review approve ID`"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _submit_and_wait(
    settings: Settings, files: Sequence[Path], timeout_s: float, children: list[ManagedProcess]
) -> list[Outcome]:
    client = await temporal_client(settings.temporal, settings.codec)
    submissions = await submit_files(settings, files, key_prefix="demo/")
    _say(f"submitted {len(submissions)} documents to s3://{settings.s3.documents_buckets[0]}/demo/")
    last = [-1.0]

    def progress(done: int, total: int, waited: float) -> None:
        if done == total or waited - last[0] >= 2:
            last[0] = waited
            _say(f"  checks done: {done}/{total} ({waited:.0f} s)")

    def check_alive() -> None:
        for child in children:
            if not child.alive:
                raise RuntimeError(
                    f"the {child.name} process exited ({child.process.returncode}); "
                    f"see {child.log_path}: {child.exit_reason()}"
                )

    return await wait_for_checks(
        client,
        settings,
        submissions,
        timeout_s=timeout_s,
        on_progress=progress,
        check_alive=check_alive,
    )


def run_demo(
    settings: Settings, config: StackConfig, *, once: bool, timeout_s: float = 180.0
) -> int:
    """Start everything, check the samples, print the results. Returns the exit code."""
    children: list[ManagedProcess] = []
    stack = EmbeddedStack(config, settings)
    with exit_on_sigterm():
        try:
            _say(f"starting the embedded stack (state in {config.state_dir}) ...")
            started = time.monotonic()
            stack.start()
            live = stack.settings()
            _say(
                f"stack ready in {time.monotonic() - started:.1f} s: Temporal "
                f"{live.temporal.address}, Kafka {live.kafka.bootstrap_servers}, "
                f"S3 {live.s3.endpoint_url}"
            )
            _say(f"Temporal UI: {live.temporal.ui_url}")
            if stack.codec_url:
                _say(
                    f"payloads encrypted in Temporal with {live.codec.keyring_file}; the UI "
                    f"decodes them through the codec server {stack.codec_url}"
                )
            review_page = start_dev_review_page(stack, live)
            children.append(review_page.process)
            live = dataclasses.replace(
                live, review=dataclasses.replace(live.review, url=review_page.url)
            )
            logs = config.state_dir / "logs"
            metrics_ports = free_ports(2)
            for command, port in zip((["worker"], ["consume"]), metrics_ports, strict=True):
                children.append(
                    docpipe_process(
                        command,
                        settings_env=to_env(with_metrics_port(live, port)),
                        log_path=logs / f"{command[0]}.log",
                        base_env=os.environ,
                    )
                )
            _say(f"worker and consumer started (logs in {logs})")
            _say(
                "metrics: worker http://127.0.0.1:{}/metrics, consumer "
                "http://127.0.0.1:{}/metrics".format(*metrics_ports)
            )
            outcomes = asyncio.run(_submit_and_wait(live, sample_files(), timeout_s, children))
            print(render_outcomes(live, outcomes), flush=True)
            if any(o.summary and o.summary.review_state == "awaiting_review" for o in outcomes):
                _say(review_hint(live))
            _say(f"log in to the review page as {review_page.reviewer}: {review_page.login_url}")
            failed = [o for o in outcomes if o.summary is None]
            if once:
                return 1 if failed else 0
            _say(
                f"\nEverything keeps running. Temporal UI: {live.temporal.ui_url}  "
                f"(submit more with `docpipe submit FILE` in another terminal); Ctrl-C stops."
            )
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            _say("stopping ...")
            return 0
        finally:
            stop_all(children, timeout=settings.pipeline.graceful_shutdown_s + 5)
            stack.stop()


def add_commands(commands: Commands) -> None:
    """``docpipe demo``."""
    demo = commands.add(
        "demo", "stack + worker + consumer; check the sample documents", _demo, stack_options()
    )
    demo.add_argument("--once", action="store_true", help="exit when the samples are checked")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for checks")


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    """The whole pipeline on the samples, from one command."""
    return run_demo(settings, stack_config(args), once=args.once, timeout_s=args.timeout)
