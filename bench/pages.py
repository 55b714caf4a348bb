"""Page-checking benchmark: docpipe end to end against plain pypdf loops, in one run.

Prints, on the same generated 12,000-page document with the same checks:
- pages/s of docpipe from upload event to report (worker already running; the report's
  time is when ``finalize`` completed, read from the workflow's history with the other
  phases of the check);
- against the **perfect split**: as many plain pypdf loops as docpipe has parser
  processes, side by side, each on an equal share of the pages. ``parallel_efficiency``
  is docpipe ÷ perfect split: what docpipe makes of the cores the machine really gives
  (two loops side by side reach 1.3-1.95x one loop on a shared 2-core machine, so a
  fixed target against one loop would measure the machine). It also prints
  ``pages_ratio``, docpipe ÷ one loop, as before;
- each docpipe run comes with its loops right before or after it (alternately), and the
  ratios are medians of the runs' ratios: a shared machine's speed drifts by tens of
  percent within minutes;
- CPU milliseconds per 1,000 pages of every process (Temporal, S3 server, broker,
  consumer, worker, parser processes), and the fixed cost of a check (a warm 4-page
  document, event to report) as a share of a run;
- heartbeat send latency while parsing: how late the activity's event loop runs a due
  heartbeat (p50/p99), measured in process with ActivityEnvironment;
- peak RSS of a worker process and its parser processes for 200 vs 20,000 pages, and the
  workflow history length for both.

The stack keeps Temporal's database on /dev/shm (``--state-dir``), as the intake benchmark
does: on a shared machine the disk's fsync latency would otherwise add to every workflow
step. The last line is a JSON object of every figure. Usage: ``python bench/pages.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script from a checkout: tests.support (the PDF generators) is found beside it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import AIOKafkaProducer
from common import RssSampler
from common import add_state_dir_option
from common import bench_stack
from common import cpu_per_unit_ms
from common import cpu_snapshot
from common import print_figures
from common import run_in_work_dir
from common import start_worker_and_consumer
from histories import CheckTimes
from histories import check_times
from histories import percentile
from histories import phase_medians
from temporalio.client import WorkflowHistory
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode
from temporalio.testing import ActivityEnvironment

from app.submit import upload
from app.submit import upload_event
from infra.check_requests import check_request
from infra.clients import kafka_kwargs
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.processes import stop_all
from infra.settings import PipelineSettings
from infra.settings import Settings
from pipeline.models import REPORT_NAME
from pipeline.models import CheckPagesInput
from pipeline.models import DocumentRef
from pipeline.pdf.page_checks import check_page
from tests.support.pdfs import make_large_pdf
from workers.worker import document_activities

# (baselines, docpipe) runs on the speed document; the median counts.
SPEED_RUNS = 5
# The speed document: at pypdf's 800 pages/s per core (a fast machine), two cores take
# about 7.5 s, so a check's fixed cost (intake, inspection, report: about 0.3 s on the
# embedded stack) stays under 5% of the run; the run prints the share it measured.
PAGES = 12000


def _loop(path: Path, first: int, last: int) -> tuple[float, float]:
    """A plain pypdf loop over pages ``first``..``last`` with docpipe's page checks; returns
    when it began and ended (epoch seconds)."""
    from pypdf import PdfReader

    began = time.time()
    reader = PdfReader(path)
    for number in range(first, last + 1):
        check_page(reader.pages[number - 1], number)
    return began, time.time()


def baseline_pages_per_s(path: Path, pages: int) -> float:
    """A plain single-process pypdf loop over every page, with docpipe's page checks."""
    began, ended = _loop(path, 1, pages)
    return pages / (ended - began)


def split_pages_per_s(path: Path, pages: int, processes: int) -> float:
    """The perfect split: ``processes`` plain loops side by side, each on an equal share of
    the pages, from the first one's start to the last one's end (process start-up aside)."""
    share = -(-pages // processes)
    bounds = [(1 + n * share, min(pages, (n + 1) * share)) for n in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        spans = pool.starmap(_loop, [(path, first, last) for first, last in bounds])
    return pages / (max(end for _, end in spans) - min(start for start, _ in spans))


def _baseline_run(path: Path, pages: int, processes: int) -> tuple[float, float]:
    print(f"baseline: single-process pypdf loop, {pages} pages ...", flush=True)
    single = baseline_pages_per_s(path, pages)
    print(f"  {single:.0f} pages/s", flush=True)
    print(f"perfect split: {processes} loops side by side ...", flush=True)
    split = split_pages_per_s(path, pages, processes)
    print(f"  {split:.0f} pages/s", flush=True)
    return single, split


async def _publish(settings: Settings, document: DocumentRef) -> None:
    producer = AIOKafkaProducer(acks="all", **kafka_kwargs(settings.kafka))
    await producer.start()
    try:
        await producer.send_and_wait(settings.kafka.uploads_topic, upload_event(document))
    finally:
        await producer.stop()


async def _check_end_to_end(
    settings: Settings, path: Path, key: str, timeout_s: float = 900
) -> tuple[CheckTimes, WorkflowHistory]:
    """Upload, publish the event, wait until the check is done; time it from its history.

    Waits on Temporal's long poll for the workflow result rather than polling S3: polling
    would take CPU from the very processes being measured.
    """
    bucket = settings.s3.documents_buckets[0]
    document = upload(settings, path, bucket, key)
    client = await temporal_client(settings.temporal, settings.codec)
    handle = client.get_workflow_handle(check_request(settings, document).workflow_id)
    started = time.perf_counter()
    published_at = time.time()
    await _publish(settings, document)
    while True:
        try:
            await handle.describe()
            break
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError(f"no check started for {key} after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)
    await asyncio.wait_for(handle.result(), timeout_s)
    history = await handle.fetch_history()
    report_key = f"{document.results_prefix(settings.s3.results_prefix)}/{REPORT_NAME}"
    s3_client(settings.s3).head_object(Bucket=settings.s3.results_bucket, Key=report_key)
    return check_times(history, published_at), history


async def heartbeat_latency_ms(settings: Settings, path: Path, pages: int) -> list[float]:
    """How late a due heartbeat runs on the activity's event loop while pages are parsed."""
    bucket = settings.s3.documents_buckets[0]
    document = upload(settings, path, bucket, "bench/heartbeat.pdf")
    activities = document_activities(settings)
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=None)
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        # Wakes every 100 ms as the heartbeat ticker does; the overshoot is the delay.
        while not done.is_set():
            due = time.perf_counter() + 0.1
            await asyncio.sleep(0.1)
            lags.append((time.perf_counter() - due) * 1000)

    prober = asyncio.create_task(probe())
    await env.run(
        activities.check_pages,
        CheckPagesInput(
            document=document,
            results_bucket=settings.s3.results_bucket,
            results_prefix="bench/heartbeat",
            page_count=pages,
            chunk_pages=settings.pipeline.chunk_pages,
        ),
    )
    done.set()
    await prober
    return lags


async def run(
    pages: int,
    small: int,
    large: int,
    runs: int,
    work: Path,
    state_dir: str | None,
    chunk_pages: int | None = None,
) -> dict[str, Any]:
    figures: dict[str, Any] = {"pages": pages, "cpus": os.cpu_count()}
    doc = work / f"doc-{pages}.pdf"
    make_large_pdf(pages, path=doc)
    baselines: list[float] = []
    splits: list[float] = []
    cpu_runs: list[dict[str, float]] = []

    with bench_stack(state_dir) as stack:
        settings = stack.settings()
        if chunk_pages:
            settings = dataclasses.replace(
                settings,
                pipeline=dataclasses.replace(settings.pipeline, chunk_pages=chunk_pages),
            )
        figures["chunk_pages"] = settings.pipeline.chunk_pages
        processes = settings.pipeline.pool_size or os.cpu_count() or 1
        figures["parser_processes"] = processes
        warmup = work / "warmup.pdf"
        make_large_pdf(4, path=warmup)
        repeats: dict[str, int] = {"small": 1, "large": 1, "speed": runs}
        for label, size in (("small", small), ("large", large), ("speed", pages)):
            path = doc if label == "speed" else work / f"doc-{size}.pdf"
            if label != "speed":
                make_large_pdf(size, path=path)
            # A fresh worker per measurement: peaks of one do not leak into the next.
            children = start_worker_and_consumer(settings, work / f"logs-{label}")
            try:
                await _check_end_to_end(settings, warmup, f"bench/warmup-{label}.pdf")
                if label == "speed":
                    # What any check costs whatever its pages (a warm 4-page document).
                    fixed, _ = await _check_end_to_end(settings, warmup, "bench/fixed-cost.pdf")
                    figures["fixed_cost_s"] = round(fixed.report, 2)
                pids = {
                    **{
                        {"kafka": "broker"}.get(name, name): pid
                        for name, pid in stack.named_pids().items()
                    },
                    "worker": children[0].pid,
                    "consumer": children[1].pid,
                }
                timings = []
                for run_number in range(repeats[label]):
                    # Pairs alternate which side goes first, so that a machine speeding
                    # up or slowing down favours neither.
                    baseline_first = run_number % 2 == 0
                    if label == "speed" and baseline_first:
                        single, split = _baseline_run(doc, pages, processes)
                        baselines.append(single)
                        splits.append(split)
                    print(f"docpipe end to end: {size} pages ...", flush=True)
                    # Memory is measured on its own runs: sampling /proc 20 times a second
                    # costs a few percent of a core, taken from the speed runs.
                    sampler = RssSampler(children[0].pid, enabled=label != "speed")
                    before = cpu_snapshot(pids, parsers_of=children[0].pid)
                    with sampler:
                        times, history = await _check_end_to_end(
                            settings, path, f"bench/{label}-{run_number}.pdf"
                        )
                    if label == "speed":
                        after = cpu_snapshot(pids, parsers_of=children[0].pid)
                        cpu_runs.append(cpu_per_unit_ms(before, after, size / 1000))
                    timings.append(times)
                    events = len(history.events)
                    rss = f", peak RSS {sampler.peak_kb / 1024:.0f} MB" if sampler.enabled else ""
                    print(
                        f"  {times.report:.1f} s to the report, {size / times.report:.0f} "
                        f"pages/s{rss}, {events} history events\n  ({times.describe()})",
                        flush=True,
                    )
                    if label == "speed" and not baseline_first:
                        single, split = _baseline_run(doc, pages, processes)
                        baselines.append(single)
                        splits.append(split)
                figures[f"{label}_seconds"] = round(statistics.median(t.report for t in timings), 2)
                if label == "speed":
                    figures[f"{label}_runs_seconds"] = [round(t.report, 2) for t in timings]
                    figures[f"{label}_phases_median_s"] = phase_medians(timings)
                figures[f"{label}_history_events"] = events
                if sampler.enabled:
                    figures[f"{label}_peak_rss_mb"] = round(sampler.peak_kb / 1024, 1)
            finally:
                stop_all(children, timeout=15)

        print("heartbeat latency while parsing ...", flush=True)
        lags = await heartbeat_latency_ms(settings, doc, pages)

    speeds = [pages / seconds for seconds in figures["speed_runs_seconds"]]
    ratios = [speed / baseline for speed, baseline in zip(speeds, baselines, strict=True)]
    figures["baseline_pages_per_s"] = round(statistics.median(baselines), 1)
    figures["baseline_runs_pages_per_s"] = [round(b, 1) for b in baselines]
    figures["docpipe_pages_per_s"] = round(statistics.median(speeds), 1)
    figures["pages_ratio"] = round(statistics.median(ratios), 2)
    figures["pages_ratio_runs"] = [round(r, 2) for r in ratios]
    efficiencies = [speed / split for speed, split in zip(speeds, splits, strict=True)]
    figures["split_pages_per_s"] = round(statistics.median(splits), 1)
    figures["split_ratio"] = round(
        statistics.median(split / single for split, single in zip(splits, baselines, strict=True)),
        2,
    )
    figures["parallel_efficiency"] = round(statistics.median(efficiencies), 2)
    figures["parallel_efficiency_runs"] = [round(e, 2) for e in efficiencies]
    figures["cpu_ms_per_1000_pages"] = {
        name: round(statistics.median(run[name] for run in cpu_runs), 1) for name in cpu_runs[0]
    }
    figures["fixed_cost_share"] = round(figures["fixed_cost_s"] / figures["speed_seconds"], 3)
    figures["heartbeat_p50_ms"] = round(statistics.median(lags), 2)
    figures["heartbeat_p99_ms"] = round(percentile(lags, 0.99), 2)
    figures["rss_ratio"] = round(figures["large_peak_rss_mb"] / figures["small_peak_rss_mb"], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--pages", type=int, default=PAGES)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=SPEED_RUNS, help="baselines/docpipe runs")
    parser.add_argument(
        "--chunk-pages",
        type=int,
        default=None,
        help=f"the workers' chunk size (default: {PipelineSettings().chunk_pages})",
    )
    add_state_dir_option(parser)
    args = parser.parse_args()
    figures = run_in_work_dir(
        lambda work: run(
            args.pages,
            args.small,
            args.large,
            args.runs,
            work,
            args.state_dir,
            args.chunk_pages,
        )
    )
    print_figures(
        figures,
        f"pages/s: docpipe {figures['docpipe_pages_per_s']} vs baseline "
        f"{figures['baseline_pages_per_s']} (medians) -> ratio {figures['pages_ratio']} "
        f"(median of pairs {figures['pages_ratio_runs']})",
        f"parallel efficiency: docpipe vs the perfect split ({figures['parser_processes']} "
        f"plain loops side by side, {figures['split_pages_per_s']} pages/s, "
        f"{figures['split_ratio']}x one loop) -> {figures['parallel_efficiency']} "
        f"(median of {figures['parallel_efficiency_runs']}; target >= 0.9)",
        f"CPU ms per 1,000 pages: {figures['cpu_ms_per_1000_pages']}; fixed cost of a check "
        f"{figures['fixed_cost_s']} s = {100 * figures['fixed_cost_share']:.1f}% of the run",
        f"heartbeat latency p50 {figures['heartbeat_p50_ms']} ms, "
        f"p99 {figures['heartbeat_p99_ms']} ms",
        f"peak RSS {figures['small_peak_rss_mb']} MB ({args.small} pages) vs "
        f"{figures['large_peak_rss_mb']} MB ({args.large} pages) -> ratio "
        f"{figures['rss_ratio']} (target <= 1.25); history events "
        f"{figures['small_history_events']} vs {figures['large_history_events']}",
    )


if __name__ == "__main__":
    main()
