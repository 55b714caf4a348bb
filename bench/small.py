"""Small-document benchmark: documents/s from upload events to reports, against a floor.

Most real uploads are small (invoices, forms, letters), so this is the throughput most users
see. Each round:
- **docpipe**: 200 one- to five-page real-world PDFs (``../shared/corpus``, cycled under
  distinct keys) are in S3; their 200 upload events are published at once; one worker and
  one consumer process (already running) check them. The time of a document is from the
  publishing of the events to its report being written (the completion, in the workflow's
  history, of the activity that writes ``report.json``).
- **floor**: on the same Temporal server, a workflow of four no-op activities, one per step
  of a check (inspect, check pages, report, publish), started as many times at once by a
  plain client and run by one worker process (``bench/floor.py``): what the engine allows
  for a check done as four separate steps. docpipe may do its steps in fewer activities
  (a document of one chunk takes one), and that saving is part of what the ratio measures.
- **same-shape floor**: the same with as many no-op activities as docpipe scheduled per
  document (read from a history of this run), for the record: what the engine allows for
  docpipe's own shape, its checks aside.
- **docpipe in clear**: docpipe again, on its own task queue, topic and worker and consumer
  processes, with encryption off (``DOCPIPE_CODEC_MODE=none``): what the payload codec
  costs. ``codec_cost_ratio`` is encrypted ÷ clear documents/s (target >= 0.95).

Rounds alternate which side goes first. Temporal's database is on disk by default, as a
durable Temporal's is: both sides then wait on its writes as they would in production.
``--state-dir /dev/shm`` takes the disk away, and the ratio becomes one of CPU per document
on a machine whose cores the parsers share with Temporal.

It prints documents/s of both, the p50 and p95 time from event to report, and the CPU
milliseconds per document of every process (Temporal, S3 server, broker, consumer, worker,
the worker's parser processes), and how fast ``docpipe submit`` uploads 600 files. The last
line is a JSON object of every figure; ``small_ratio`` is docpipe ÷ floor and
``same_shape_ratio`` docpipe ÷ same-shape floor (medians of the rounds' ratios).

    python bench/small.py [--documents 200] [--rounds 3] [--submit 600] [--state-dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Iterator
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from common import bench_stack
from common import cpu_per_unit_ms
from common import cpu_snapshot
from common import print_figures
from common import run_in_work_dir
from common import start_worker_and_consumer
from floor import FLOOR_QUEUE
from floor import floor_worker
from histories import activity_count
from histories import latency_figures
from histories import report_time
from temporalio.client import Client
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from app.submit import submit_files
from app.submit import upload
from app.submit import upload_event
from infra.check_requests import check_request
from infra.clients import kafka_kwargs
from infra.clients import temporal_client
from infra.processes import ManagedProcess
from infra.processes import stop_all
from infra.settings import CodecSettings
from infra.settings import Settings
from pipeline.models import DocumentRef

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pypdf-resources"
# Small documents: a few pages, at most this many bytes.
MAX_PAGES = 5
MAX_BYTES = 1024 * 1024
# The floor's steps: inspect, check pages, report, publish.
FLOOR_ACTIVITIES = 4


# -- documents ------------------------------------------------------------------------------


def small_corpus_files() -> list[Path]:
    """The corpus's small, readable, unencrypted PDFs (decided from the files themselves)."""
    from pypdf import PdfReader

    files = []
    for path in sorted(CORPUS.rglob("*.pdf")):
        if path.stat().st_size > MAX_BYTES:
            continue
        try:
            reader = PdfReader(path)
            if reader.is_encrypted or not 1 <= len(reader.pages) <= MAX_PAGES:
                continue
        except Exception:  # a file pypdf cannot open is not a small document
            continue
        files.append(path)
    if not files:
        raise SystemExit(f"no small PDFs found under {CORPUS}")
    return files


def upload_all(settings: Settings, files: list[Path], count: int, label: str) -> list[DocumentRef]:
    bucket = settings.s3.documents_buckets[0]
    return [
        upload(settings, files[n % len(files)], bucket, f"bench/{label}/{n:04d}.pdf")
        for n in range(count)
    ]


async def publish_all(settings: Settings, documents: list[DocumentRef]) -> None:
    producer = AIOKafkaProducer(acks="all", **kafka_kwargs(settings.kafka))
    await producer.start()
    try:
        sent = [
            await producer.send(
                settings.kafka.uploads_topic,
                upload_event(d),
                key=f"{d.bucket}/{d.key}".encode(),
            )
            for d in documents
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


# -- the two sides ------------------------------------------------------------------------


async def run_docpipe(
    settings: Settings,
    client: Client,
    documents: list[DocumentRef],
    pids: Mapping[str, int],
    worker_pid: int,
) -> dict[str, Any]:
    handles = [
        client.get_workflow_handle(check_request(settings, d).workflow_id) for d in documents
    ]
    before = cpu_snapshot(pids, parsers_of=worker_pid)
    began = time.time()
    await publish_all(settings, documents)
    results = await asyncio.gather(*(_result_when_started(h) for h in handles))
    after = cpu_snapshot(pids, parsers_of=worker_pid)
    histories = [await h.fetch_history() for h in handles]
    figures = latency_figures(began, [report_time(h) for h in histories])
    figures["cpu_ms_per_document"] = cpu_per_unit_ms(before, after, len(documents))
    figures["activities_per_document"] = statistics.median(activity_count(h) for h in histories)
    figures["history_events_per_document"] = statistics.median(len(h.events) for h in histories)
    figures["verdicts"] = {
        verdict: sum(1 for r in results if r["verdict"] == verdict)
        for verdict in sorted({r["verdict"] for r in results})
    }
    return figures


async def _result_when_started(handle: WorkflowHandle[Any, Any], timeout_s: float = 900) -> Any:
    """The workflow's result, once the intake has started it (Temporal long-polls it)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await asyncio.wait_for(handle.result(), max(1.0, deadline - time.monotonic()))
        except RPCError as exc:
            # Not found yet: the intake has not started it.
            if exc.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def run_floor(
    client: Client, count: int, activities: int, pids: Mapping[str, int], label: str
) -> dict[str, Any]:
    before = cpu_snapshot(pids)
    began = time.time()
    handles = await asyncio.gather(
        *(
            client.start_workflow(
                "BenchFloor", activities, id=f"bench-floor-{label}-{n}", task_queue=FLOOR_QUEUE
            )
            for n in range(count)
        )
    )
    await asyncio.gather(*(h.result() for h in handles))
    after = cpu_snapshot(pids)
    histories = [await h.fetch_history() for h in handles]
    figures = latency_figures(began, [report_time(h) for h in histories])
    figures["cpu_ms_per_document"] = cpu_per_unit_ms(before, after, count)
    figures["history_events_per_document"] = statistics.median(len(h.events) for h in histories)
    return figures


async def submit_speed(
    settings: Settings, files: list[Path], count: int, work: Path
) -> dict[str, Any]:
    """Files/s of ``docpipe submit`` for ``count`` small files, against uploading them one at
    a time with a new client each and publishing once all are up (as it did before)."""
    batch = work / "submit"
    batch.mkdir()
    paths = []
    for n in range(count):
        path = batch / f"{n:04d}-{files[n % len(files)].name}"
        path.write_bytes(files[n % len(files)].read_bytes())
        paths.append(path)
    began = time.perf_counter()
    await submit_files(settings, paths, key_prefix="bench/submit/")
    concurrent = count / (time.perf_counter() - began)
    began = time.perf_counter()
    bucket = settings.s3.documents_buckets[0]
    documents = [upload(settings, p, bucket, f"bench/submit-one/{p.name}") for p in paths]
    await publish_all(settings, documents)
    one_at_a_time = count / (time.perf_counter() - began)
    return {
        "submit_files_per_s": round(concurrent, 1),
        "one_at_a_time_files_per_s": round(one_at_a_time, 1),
    }


@contextmanager
def processes(children: list[ManagedProcess]) -> Iterator[list[ManagedProcess]]:
    try:
        yield children
    finally:
        stop_all(children, timeout=15)


def _floor_child(settings: Settings, logs: Path) -> ManagedProcess:
    return ManagedProcess(
        "floor-worker",
        [sys.executable, __file__, "--floor-worker", settings.temporal.address],
        log_path=logs / "floor-worker.log",
        env=os.environ,
    )


async def run(
    documents: int,
    rounds: int,
    submit: int,
    floor_activities: int,
    work: Path,
    state_dir: str | None,
) -> dict[str, Any]:
    files = small_corpus_files()
    print(f"{len(files)} small corpus files, cycled to {documents} documents", flush=True)
    figures: dict[str, Any] = {"documents": documents, "cpus": os.cpu_count(), "rounds": []}
    with bench_stack(state_dir) as stack:
        settings = stack.settings()
        client = await temporal_client(settings.temporal, settings.codec)
        clear = _in_clear(settings)
        # The floor is the engine's alone: the SDK's defaults, no codec (bench/floor.py).
        floor_client = await temporal_client(clear.temporal, clear.codec)
        stack.create_topics([clear.kafka.uploads_topic])
        servers = stack.named_pids()
        if submit:
            print(f"docpipe submit of {submit} files ...", flush=True)
            # A topic of their own: the consumer must not check these.
            stack.create_topics(["bench-submit"])
            aside = dataclasses.replace(
                settings, kafka=dataclasses.replace(settings.kafka, uploads_topic="bench-submit")
            )
            figures.update(await submit_speed(aside, files, submit, work))
            print(
                f"  {figures['submit_files_per_s']} files/s (one at a time: "
                f"{figures['one_at_a_time_files_per_s']})",
                flush=True,
            )
        with (
            processes(start_worker_and_consumer(settings, work / "logs")) as children,
            processes([_floor_child(settings, work / "logs")]) as floor,
            processes(start_worker_and_consumer(clear, work / "logs-clear")) as clear_children,
        ):
            worker, consumer = children
            clear_worker, clear_consumer = clear_children
            clear_warm = upload_all(clear, files, 1, "warmup-clear")
            await publish_all(clear, clear_warm)
            clear_id = check_request(clear, clear_warm[0]).workflow_id
            await _result_when_started(client.get_workflow_handle(clear_id))
            # Warm up both sides; docpipe's warm-up tells how many activities it runs.
            warm = upload_all(settings, files, 1, "warmup")
            await publish_all(settings, warm)
            handle = client.get_workflow_handle(check_request(settings, warm[0]).workflow_id)
            await _result_when_started(handle)
            shape = activity_count(await handle.fetch_history())
            floors = {"floor": floor_activities, "same_shape_floor": shape}
            figures["floor_activities"] = floor_activities
            figures["same_shape_floor_activities"] = shape
            await run_floor(floor_client, 2, shape, {}, "warmup")
            docpipe_pids = {
                "temporal": servers["temporal"],
                "s3": servers["s3"],
                "broker": servers["kafka"],
                "consumer": consumer.pid,
                "worker": worker.pid,
            }
            clear_pids = {
                **docpipe_pids,
                "consumer": clear_consumer.pid,
                "worker": clear_worker.pid,
            }
            floor_pids = {"temporal": servers["temporal"], "worker": floor[0].pid}
            for number in range(rounds):
                batch = upload_all(settings, files, documents, f"round-{number}")
                sides: dict[str, dict[str, Any]] = {}
                clear_batch = upload_all(clear, files, documents, f"round-{number}-clear")
                order = ["docpipe", "docpipe_clear", *floors]
                for side in order if number % 2 == 0 else reversed(order):
                    print(f"round {number + 1}: {side} ...", flush=True)
                    if side == "docpipe":
                        sides[side] = await run_docpipe(
                            settings, client, batch, docpipe_pids, worker.pid
                        )
                    elif side == "docpipe_clear":
                        sides[side] = await run_docpipe(
                            clear, client, clear_batch, clear_pids, clear_worker.pid
                        )
                    else:
                        sides[side] = await run_floor(
                            floor_client, documents, floors[side], floor_pids, f"{side}-{number}"
                        )
                    print(f"  {_describe(sides[side])}", flush=True)
                speed = sides["docpipe"]["documents_per_s"]
                figures["rounds"].append(
                    {
                        **sides,
                        "ratio": round(speed / sides["floor"]["documents_per_s"], 2),
                        "same_shape_ratio": round(
                            speed / sides["same_shape_floor"]["documents_per_s"], 2
                        ),
                        "codec_cost_ratio": round(
                            speed / sides["docpipe_clear"]["documents_per_s"], 2
                        ),
                    }
                )
    rounds_ = figures["rounds"]
    for side in ("docpipe", "docpipe_clear", "floor", "same_shape_floor"):
        figures[f"{side}_documents_per_s"] = round(
            statistics.median(r[side]["documents_per_s"] for r in rounds_), 2
        )
        figures[f"{side}_p50_s"] = round(statistics.median(r[side]["p50_s"] for r in rounds_), 2)
        figures[f"{side}_p95_s"] = round(statistics.median(r[side]["p95_s"] for r in rounds_), 2)
        names = rounds_[0][side]["cpu_ms_per_document"]
        figures[f"{side}_cpu_ms_per_document"] = {
            name: round(statistics.median(r[side]["cpu_ms_per_document"][name] for r in rounds_), 1)
            for name in names
        }
    figures["docpipe_activities_per_document"] = rounds_[0]["docpipe"]["activities_per_document"]
    figures["docpipe_history_events_per_document"] = rounds_[0]["docpipe"][
        "history_events_per_document"
    ]
    figures["small_ratio"] = round(statistics.median(r["ratio"] for r in rounds_), 2)
    figures["same_shape_ratio"] = round(
        statistics.median(r["same_shape_ratio"] for r in rounds_), 2
    )
    figures["codec_cost_ratio"] = round(
        statistics.median(r["codec_cost_ratio"] for r in rounds_), 2
    )
    return figures


def _in_clear(settings: Settings) -> Settings:
    """docpipe with encryption off, on a task queue, topic and group of its own."""
    return dataclasses.replace(
        settings,
        codec=CodecSettings(mode="none"),
        temporal=dataclasses.replace(settings.temporal, task_queue="docpipe-clear"),
        kafka=dataclasses.replace(
            settings.kafka, uploads_topic="bench-clear-uploads", group_id="bench-clear"
        ),
    )


def _describe(side: Mapping[str, Any]) -> str:
    cpu = ", ".join(f"{name} {ms:.0f}" for name, ms in side["cpu_ms_per_document"].items())
    return (
        f"{side['documents_per_s']} documents/s, event to report p50 {side['p50_s']} s, "
        f"p95 {side['p95_s']} s; CPU ms per document: {cpu}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--floor-activities",
        type=int,
        default=FLOOR_ACTIVITIES,
        help="no-op activities of the floor's workflow (default: one per step of a check)",
    )
    parser.add_argument(
        "--submit", type=int, default=600, help="files for the `docpipe submit` speed (0: skip)"
    )
    parser.add_argument(
        "--state-dir",
        default=None,
        help="where the stack keeps Temporal's database (default: the temporary directory, "
        "on disk: a durable Temporal, as in production; /dev/shm measures CPU alone)",
    )
    parser.add_argument("--floor-worker", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_worker:
        asyncio.run(floor_worker(args.floor_worker))
        return
    figures = run_in_work_dir(
        lambda work: run(
            args.documents,
            args.rounds,
            args.submit,
            args.floor_activities,
            work,
            args.state_dir,
        )
    )
    print_figures(
        figures,
        f"documents/s: docpipe {figures['docpipe_documents_per_s']} vs floor "
        f"{figures['floor_documents_per_s']} ({figures['floor_activities']} no-op activities) "
        f"-> small_ratio {figures['small_ratio']} (target >= 0.8); against "
        f"{figures['same_shape_floor_activities']} no-op activities (docpipe's own shape): "
        f"{figures['same_shape_floor_documents_per_s']} -> {figures['same_shape_ratio']}",
        f"event to report: p50 {figures['docpipe_p50_s']} s, p95 {figures['docpipe_p95_s']} s; "
        f"CPU ms per document: {figures['docpipe_cpu_ms_per_document']}",
        f"encryption: {figures['docpipe_documents_per_s']} documents/s encrypted vs "
        f"{figures['docpipe_clear_documents_per_s']} in clear -> codec_cost_ratio "
        f"{figures['codec_cost_ratio']} (target >= 0.95); worker CPU ms per document "
        f"{figures['docpipe_cpu_ms_per_document']['worker']} vs "
        f"{figures['docpipe_clear_cpu_ms_per_document']['worker']}",
    )


if __name__ == "__main__":
    main()
