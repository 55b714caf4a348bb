"""Benchmark: upload events -> workflow starts per second through the intake.

Against a plain loop of ``start_workflow`` calls at the same concurrency, on the same stack
in the same run: the ratio says what the intake costs on top of Temporal itself (Kafka
fetches, parsing, offset tracking, commits). Target: ratio >= 0.9.

Starts its own embedded stack on free ports (Temporal's database on /dev/shm by default:
on a shared machine the disk otherwise sets the pace of both sides, and the noise). The
events name their version and ETag, so the intake needs no S3 HEAD; no worker runs, so the
workflows are started and stay pending. The events are split into rounds that alternate
which side goes first, so that a stack slowing down (or a neighbour's load) favours neither
side. The last line of output is a JSON object of all figures.

    python bench/intake.py [--events 2000] [--concurrency 32] [--rounds 4] [--state-dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

from aiokafka import AIOKafkaProducer
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from app.submit import upload_event
from consumers.intake import UploadIntake
from infra.clients import s3_client, temporal_client
from infra.settings import KafkaSettings, Settings, check_request
from infra.stack import EmbeddedStack, StackConfig
from pipeline.models import WORKFLOW_NAME, DocumentRef

PARTITIONS = 3


def _documents(round_name: str, count: int) -> list[DocumentRef]:
    return [
        DocumentRef(
            bucket="documents",
            key=f"bench/{round_name}/doc-{n:05d}.pdf",
            version_id=f"v-{round_name}-{n}",
            etag=f"{n:032x}",
            size=1024,
        )
        for n in range(count)
    ]


async def baseline(
    settings: Settings, client: Client, documents: list[DocumentRef], concurrency: int
) -> float:
    """Seconds a plain loop takes to start every document: the intake's calls, nothing else."""
    limit = asyncio.Semaphore(concurrency)

    async def start(document: DocumentRef) -> None:
        async with limit:
            await client.start_workflow(
                WORKFLOW_NAME,
                check_request(settings, document),
                id=document.workflow_id,
                task_queue=settings.temporal.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )

    began = time.perf_counter()
    await asyncio.gather(*(start(d) for d in documents))
    return time.perf_counter() - began


async def publish(settings: Settings, documents: list[DocumentRef]) -> None:
    producer = AIOKafkaProducer(acks="all", bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        sends = []
        for n, document in enumerate(documents):
            sends.append(
                await producer.send(
                    settings.kafka.uploads_topic,
                    upload_event(document),
                    partition=n % PARTITIONS,
                )
            )
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def through_intake(
    settings: Settings, client: Client, documents: list[DocumentRef]
) -> tuple[float, float]:
    """Seconds UploadIntake takes from its first message to its last start, and the CPU
    seconds this process used meanwhile (the intake's, and the Temporal client's).

    The events are published first, so that the producer does not limit the rate, and the
    clock starts at the first consumed message, so that joining the group does not count.
    """
    await publish(settings, documents)
    intake = UploadIntake(settings, client, s3_client(settings.s3))
    counters = intake.counters
    stop = asyncio.Event()
    running = asyncio.create_task(intake.run(stop))
    try:
        # Polling (not an event) keeps the intake free of benchmark hooks; 5 ms is far
        # below the seconds-long rounds measured, and costs the intake little CPU.
        while counters.consumed == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        began, cpu = time.perf_counter(), time.process_time()
        while counters.started + counters.deduped + counters.dead_lettered < len(documents):
            if running.done():
                running.result()
                raise RuntimeError("the intake stopped early")
            await asyncio.sleep(0.005)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    finally:
        stop.set()
        await running
    # Deduped starts are possible even here, rarely: a start whose first attempt timed out
    # after creating the workflow is answered "already running" on the client's retry.
    if counters.consumed != len(documents) or counters.dead_lettered:
        raise RuntimeError(f"unexpected intake counters: {counters}")
    return elapsed, cpu


class _InstantTemporal:
    """A stand-in for the Temporal client whose starts cost nothing: what remains is the
    intake's own cost (fetching, parsing, tracking, committing)."""

    async def start_workflow(self, *args: object, **kwargs: object) -> None:
        # Returning (not raising WorkflowAlreadyStartedError) is a new run to the intake.
        await asyncio.sleep(0)


async def ceiling(settings: Settings, events: int) -> tuple[float, float]:
    """Events per second and CPU milliseconds per event of the intake alone."""
    kafka = dataclasses.replace(settings.kafka, uploads_topic="bench-ceiling", group_id="ceiling")
    settings = dataclasses.replace(settings, kafka=kafka)
    stub = cast(Client, _InstantTemporal())
    elapsed, cpu = await through_intake(settings, stub, _documents("ceiling", events))
    return events / elapsed, cpu / events * 1000


async def measure(
    stack: EmbeddedStack, events: int, concurrency: int, rounds: int
) -> dict[str, float | int]:
    base = stack.settings()
    settings = dataclasses.replace(
        base,
        kafka=dataclasses.replace(base.kafka, max_in_flight=concurrency, stats_interval_s=3600.0),
        temporal=dataclasses.replace(base.temporal, task_queue="bench-intake"),
    )
    client = await temporal_client(settings.temporal, settings.codec)
    # Warm up Temporal (first shard and task-queue work) before anything is timed.
    await baseline(settings, client, _documents("warmup", 200), concurrency)

    per_round = max(events // rounds, 1)
    seconds = {"intake": 0.0, "baseline": 0.0}
    ratios = []
    for n in range(rounds):
        # A-B, B-A, ...: a stack that slows down (or speeds up) favours neither side.
        order = ("baseline", "intake") if n % 2 == 0 else ("intake", "baseline")
        rates = {}
        for side in order:
            documents = _documents(f"{side}-{n}", per_round)
            if side == "baseline":
                elapsed = await baseline(settings, client, documents, concurrency)
            else:
                # A topic and a group of its own: the round reads only its own events.
                kafka = dataclasses.replace(
                    settings.kafka, uploads_topic=f"bench-uploads-{n}", group_id=f"bench-{n}"
                )
                await asyncio.to_thread(stack.create_topics, [kafka.uploads_topic])
                round_settings = dataclasses.replace(settings, kafka=kafka)
                elapsed, _ = await through_intake(round_settings, client, documents)
            seconds[side] += elapsed
            rates[side] = per_round / elapsed
            print(f"round {n + 1}  {side:<8}  {rates[side]:8.1f} starts/s", flush=True)
        ratios.append(rates["intake"] / rates["baseline"])

    await asyncio.to_thread(stack.create_topics, ["bench-ceiling"])
    ceiling_per_s, cpu_ms = await ceiling(settings, events)
    print(f"intake alone (Temporal stubbed)  {ceiling_per_s:8.1f} events/s", flush=True)

    events_per_s = per_round * rounds / seconds["intake"]
    baseline_per_s = per_round * rounds / seconds["baseline"]
    return {
        "events": per_round * rounds,
        "concurrency": concurrency,
        "rounds": rounds,
        "events_per_s": round(events_per_s, 1),
        "baseline_per_s": round(baseline_per_s, 1),
        "ratio": round(events_per_s / baseline_per_s, 3),
        "ratio_median_round": round(statistics.median(ratios), 3),
        "intake_alone_per_s": round(ceiling_per_s, 1),
        "intake_alone_cpu_ms_per_event": round(cpu_ms, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events per side, all rounds")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=KafkaSettings().max_in_flight,
        help="in-flight starts of both sides (default: the intake's default)",
    )
    parser.add_argument("--rounds", type=int, default=4, help="rounds, alternating the order")
    parser.add_argument(
        "--state-dir",
        default="/dev/shm" if Path("/dev/shm").is_dir() else None,
        help="where the stack keeps Temporal's database (default: /dev/shm, so that the "
        "disk of a shared machine does not set the pace)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="docpipe-bench-", dir=args.state_dir) as state:
        config = StackConfig.on_free_ports(Path(state), partitions=PARTITIONS)
        with EmbeddedStack(config) as stack:
            figures = asyncio.run(measure(stack, args.events, args.concurrency, args.rounds))

    print(
        f"intake:   {figures['events_per_s']:8.1f} events -> starts per second\n"
        f"baseline: {figures['baseline_per_s']:8.1f} start_workflow calls per second "
        f"(same concurrency {args.concurrency})\n"
        f"ratio:    {figures['ratio']:8.3f} (target >= 0.9; median of the rounds "
        f"{figures['ratio_median_round']:.3f})\n"
        f"intake alone, Temporal stubbed: {figures['intake_alone_per_s']:.0f} events/s, "
        f"{figures['intake_alone_cpu_ms_per_event']:.2f} ms CPU per event\n"
        f"machine:  {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
