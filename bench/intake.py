"""Benchmark: upload events -> workflow starts per second through the intake.

Against a plain loop of the same starts at the same concurrency, on the same stack in the
same run: both sides call ``start_upload_check``, so that Temporal is sent the same
requests (options, search attributes, summary, details, priority and fairness key), and
the ratio says what the intake costs on top of them (Kafka fetches, parsing, offset
tracking, commits, retries' bookkeeping). Target: ratio >= 0.9. ``--bare`` adds a third
side, starts with the request alone (no search attributes, summary, details nor lane):
what those cost Temporal, which is not the intake's cost.

Starts its own embedded stack on free ports (Temporal's database on /dev/shm by default:
on a shared machine the disk otherwise sets the pace of both sides, and the noise). The
events name their version and ETag, so the intake needs no S3 HEAD; no worker runs, so the
workflows are started and stay pending. The events are split into rounds that alternate
which side goes first, so that a stack slowing down (or a neighbour's load) favours neither
side. The last line of output is a JSON object of all figures.

    python bench/intake.py [--events 2000] [--concurrency 32] [--rounds 4] [--bare]
                           [--state-dir D]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path
from typing import Any
from typing import cast

from aiokafka import AIOKafkaProducer
from common import BENCH_BASE
from common import add_state_dir_option
from common import cpu_snapshot
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.common import WorkflowIDReusePolicy

from app.submit import upload_event
from consumers.handling import start_upload_check
from consumers.intake import UploadIntake
from infra.check_requests import check_request
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import KafkaSettings
from infra.settings import Settings
from infra.stack import EmbeddedStack
from infra.stack import StackConfig
from pipeline.models import WORKFLOW_NAME
from pipeline.models import DocumentRef

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
    """Seconds a plain loop takes to start every document as the intake starts it (the same
    function, so the same request): Temporal's share of the intake's work, nothing else."""

    async def start(document: DocumentRef) -> None:
        # An upload event's age is known to the intake: its request carries it too.
        await start_upload_check(client, settings, document, uploaded_at=time.time())

    return await _started_in(start, documents, concurrency)


async def bare(
    settings: Settings, client: Client, documents: list[DocumentRef], concurrency: int
) -> float:
    """Seconds a plain loop takes to start every document with the request alone: no
    search attributes, summary, details, priority or fairness key."""

    async def start(document: DocumentRef) -> None:
        await client.start_workflow(
            WORKFLOW_NAME,
            check_request(settings, document, uploaded_at=time.time()),
            id=document.workflow_id,
            task_queue=settings.temporal.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )

    return await _started_in(start, documents, concurrency)


async def _started_in(
    start: Callable[[DocumentRef], Awaitable[None]], documents: list[DocumentRef], concurrency: int
) -> float:
    limit = asyncio.Semaphore(concurrency)

    async def limited(document: DocumentRef) -> None:
        async with limit:
            await start(document)

    began = time.perf_counter()
    await asyncio.gather(*(limited(d) for d in documents))
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


# CPU seconds so far of the Temporal server, the broker and this process ("bench").
CpuMeter = Callable[[], dict[str, float]]


def cpu_meter(stack: EmbeddedStack) -> CpuMeter:
    """Reads the CPU seconds of the servers that do the work measured, and of this process
    (the intake and the Temporal client): where a start's time goes, and less noisy than
    rates on a shared machine."""
    servers = {name: stack.named_pids()[name] for name in ("temporal", "kafka")}
    return lambda: {**cpu_snapshot(servers), "bench": time.process_time()}


def _cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in after}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Round:
    """One side's round: from its first start call to its last start's answer."""

    seconds: float
    # CPU seconds each process used meanwhile (this one's: the intake's and the client's).
    cpu_s: dict[str, float]
    # Starts in flight on average while enough were left to fill every slot: how well the
    # intake keeps Temporal busy (the loops keep every slot busy by construction).
    in_flight: float


class _TimedClient:
    """The client the intake starts checks with, timing the round as it goes: from the
    first start call to the last start's answer, with the CPU used meanwhile, and the
    intake's messages in flight at each answer. Neither hooks in the intake nor a polling
    loop, whose wake-ups would cost CPU on the very machine being measured."""

    def __init__(self, client: Any, expected: int, slots: int, meter: CpuMeter) -> None:
        self._client = client
        self._expected = expected
        self._slots = slots
        self._meter = meter
        self._answered = 0
        self._began = 0.0
        self._cpu_before: dict[str, float] = {}
        self._in_flight: list[int] = []
        self.in_flight_of: Callable[[], int] = lambda: 0
        self.result: Round | None = None
        self.done = asyncio.Event()

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any:
        if not self._began:
            self._began, self._cpu_before = time.perf_counter(), self._meter()
        handle = await self._client.start_workflow(*args, **kwargs)
        self._answered += 1
        if self._expected - self._answered >= self._slots:
            self._in_flight.append(self.in_flight_of())
        if self._answered == self._expected:
            self.result = Round(
                seconds=time.perf_counter() - self._began,
                cpu_s=_cpu_used(self._cpu_before, self._meter()),
                in_flight=statistics.fmean(self._in_flight) if self._in_flight else math.nan,
            )
            self.done.set()
        return handle


async def through_intake(
    settings: Settings, client: Any, documents: list[DocumentRef], meter: CpuMeter
) -> Round:
    """Run UploadIntake over ``documents`` and measure it.

    The events are published first, so that the producer does not limit the rate, and the
    clock starts at the first start call, so that joining the group does not count.
    """
    await publish(settings, documents)
    timed = _TimedClient(client, len(documents), settings.kafka.max_in_flight, meter)
    intake = UploadIntake(settings, cast(Client, timed), s3_client(settings.s3))
    timed.in_flight_of = lambda: intake.in_flight
    stop = asyncio.Event()
    running = asyncio.create_task(intake.run(stop))
    finished = asyncio.create_task(timed.done.wait())
    try:
        await asyncio.wait({running, finished}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        finished.cancel()
        await running
    counters = intake.counters
    # Deduped starts are possible even here, rarely: a start whose first attempt timed out
    # after creating the workflow is answered "already running" on the client's retry.
    if timed.result is None or counters.consumed != len(documents) or counters.dead_lettered:
        raise RuntimeError(f"the intake stopped early, or went wrong: {counters}")
    return timed.result


async def _timed_loop(
    loop: Callable[[Settings, Client, list[DocumentRef], int], Awaitable[float]],
    settings: Settings,
    client: Client,
    documents: list[DocumentRef],
    concurrency: int,
    meter: CpuMeter,
) -> Round:
    before = meter()
    seconds = await loop(settings, client, documents, concurrency)
    return Round(seconds=seconds, cpu_s=_cpu_used(before, meter()), in_flight=concurrency)


class _InstantTemporal:
    """A stand-in for the Temporal client whose starts cost nothing: what remains is the
    intake's own cost (fetching, parsing, tracking, committing)."""

    async def start_workflow(self, *args: object, **kwargs: object) -> None:
        # Returning (not raising WorkflowAlreadyStartedError) is a new run to the intake.
        await asyncio.sleep(0)


async def ceiling(settings: Settings, events: int, meter: CpuMeter) -> tuple[float, float]:
    """Events per second and CPU milliseconds per event of the intake alone."""
    kafka = dataclasses.replace(settings.kafka, uploads_topic="bench-ceiling", group_id="ceiling")
    settings = dataclasses.replace(settings, kafka=kafka)
    run = await through_intake(settings, _InstantTemporal(), _documents("ceiling", events), meter)
    return events / run.seconds, run.cpu_s["bench"] / events * 1000


async def measure(
    stack: EmbeddedStack, events: int, concurrency: int, rounds: int, with_bare: bool = False
) -> dict[str, Any]:
    base = stack.settings()
    settings = dataclasses.replace(
        base,
        kafka=dataclasses.replace(base.kafka, max_in_flight=concurrency, stats_interval_s=3600.0),
        temporal=dataclasses.replace(base.temporal, task_queue="bench-intake"),
    )
    client = await temporal_client(settings.temporal, settings.codec)
    # Warm up Temporal (first shard and task-queue work) before anything is timed.
    await baseline(settings, client, _documents("warmup", 200), concurrency)

    meter = cpu_meter(stack)
    per_round = max(events // rounds, 1)
    sides = ("baseline", "intake", "bare") if with_bare else ("baseline", "intake")
    seconds = dict.fromkeys(sides, 0.0)
    cpu = {side: dict.fromkeys(meter(), 0.0) for side in sides}
    in_flight: list[float] = []
    ratios = []
    for n in range(rounds):
        # A-B, B-A, ... (A-B-C, B-C-A, ...): a stack that slows down (or speeds up)
        # favours no side.
        order = sides[n % len(sides) :] + sides[: n % len(sides)]
        rates = {}
        for side in order:
            documents = _documents(f"{side}-{n}", per_round)
            if side == "intake":
                # A topic and a group of its own: the round reads only its own events.
                kafka = dataclasses.replace(
                    settings.kafka, uploads_topic=f"bench-uploads-{n}", group_id=f"bench-{n}"
                )
                await asyncio.to_thread(stack.create_topics, [kafka.uploads_topic])
                round_settings = dataclasses.replace(settings, kafka=kafka)
                run = await through_intake(round_settings, client, documents, meter)
                in_flight.append(run.in_flight)
            else:
                loop = baseline if side == "baseline" else bare
                run = await _timed_loop(loop, settings, client, documents, concurrency, meter)
            seconds[side] += run.seconds
            for name, used_s in run.cpu_s.items():
                cpu[side][name] += used_s
            rates[side] = per_round / run.seconds
            print(f"round {n + 1}  {side:<8}  {rates[side]:8.1f} starts/s", flush=True)
        ratios.append(rates["intake"] / rates["baseline"])

    await asyncio.to_thread(stack.create_topics, ["bench-ceiling"])
    ceiling_per_s, cpu_ms = await ceiling(settings, events, meter)
    print(f"intake alone (Temporal stubbed)  {ceiling_per_s:8.1f} events/s", flush=True)

    per_s = {side: per_round * rounds / seconds[side] for side in sides}
    figures: dict[str, Any] = {
        "events": per_round * rounds,
        "concurrency": concurrency,
        "rounds": rounds,
        "events_per_s": round(per_s["intake"], 1),
        "baseline_per_s": round(per_s["baseline"], 1),
        "ratio": round(per_s["intake"] / per_s["baseline"], 3),
        "ratio_median_round": round(statistics.median(ratios), 3),
        "intake_in_flight": round(statistics.fmean(in_flight), 1),
        "intake_alone_per_s": round(ceiling_per_s, 1),
        "intake_alone_cpu_ms_per_event": round(cpu_ms, 3),
    }
    for side in sides:
        # Per start, in each process: the intake's own share is the difference of the two
        # sides (the broker's fetches and commits, the intake's work in this process).
        figures[f"cpu_ms_per_start_{side}"] = {
            name: round(used_s * 1000 / (per_round * rounds), 2)
            for name, used_s in cpu[side].items()
        }
    if with_bare:
        figures["bare_per_s"] = round(per_s["bare"], 1)
        # What the full request keeps of bare starts' rate: Temporal's cost, not the intake's.
        figures["full_over_bare"] = round(per_s["baseline"] / per_s["bare"], 3)
    return figures


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
        "--bare",
        action="store_true",
        help="a third side: starts with the request alone (no search attributes, summary, "
        "details, priority or fairness key), to see what those cost Temporal",
    )
    add_state_dir_option(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="docpipe-bench-", dir=args.state_dir) as state:
        config = StackConfig.on_free_ports(Path(state), partitions=PARTITIONS)
        with EmbeddedStack(config, BENCH_BASE) as stack:
            figures = asyncio.run(
                measure(stack, args.events, args.concurrency, args.rounds, args.bare)
            )

    print(
        f"intake:   {figures['events_per_s']:8.1f} events -> starts per second\n"
        f"baseline: {figures['baseline_per_s']:8.1f} the intake's starts per second, "
        f"alone (same concurrency {args.concurrency})\n"
        f"ratio:    {figures['ratio']:8.3f} (target >= 0.9; median of the rounds "
        f"{figures['ratio_median_round']:.3f})\n"
        f"intake in flight: {figures['intake_in_flight']:.1f} of {args.concurrency} on "
        "average while there was work for all\n"
        f"intake alone, Temporal stubbed: {figures['intake_alone_per_s']:.0f} events/s, "
        f"{figures['intake_alone_cpu_ms_per_event']:.2f} ms CPU per event\n"
        + (
            f"bare starts: {figures['bare_per_s']:.1f} per second; the full request keeps "
            f"{figures['full_over_bare']:.3f} of that\n"
            if args.bare
            else ""
        )
        + "".join(
            f"CPU ms per start, {side}: "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in figures[key].items())
            + "\n"
            for side in ("baseline", "intake", "bare")
            if (key := f"cpu_ms_per_start_{side}") in figures
        )
        + f"machine:  {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
