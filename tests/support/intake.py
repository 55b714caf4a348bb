"""What the intake tests share: publishing events, uploading objects, counting results."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from urllib.parse import quote_plus

from aiokafka import AIOKafkaProducer
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from temporalio.client import Client

from app.dead_letters import read_dead_letters
from consumers.dead_letters import DeadLetter
from consumers.intake import UploadIntake
from infra.processes import ManagedProcess
from infra.settings import Settings
from pipeline.models import DocumentRef
from tests.support.polling import async_wait_for
from tests.support.s3 import shared_s3


@dataclass(frozen=True)
class Message:
    """One message to publish to the uploads topic."""

    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()


@dataclass(frozen=True)
class Sent:
    message: Message
    partition: int
    offset: int


def unique_prefix(name: str) -> str:
    """A key prefix no other test (or earlier run on the same stack) uses."""
    return f"{name}/{uuid.uuid4().hex[:8]}"


def upload(settings: Settings, key: str, body: bytes = b"%PDF-1.4 not really\n") -> DocumentRef:
    """Put one object into the first documents bucket; its exact new version."""
    bucket = settings.s3.documents_buckets[0]
    put = shared_s3(settings.s3).put_object(Bucket=bucket, Key=key, Body=body)
    return DocumentRef(
        bucket=bucket,
        key=key,
        version_id=put["VersionId"],
        etag=str(put["ETag"]).strip('"'),
        size=len(body),
    )


def native_event(document: DocumentRef, *, version: bool = True, etag: bool = True) -> bytes:
    event: dict[str, Any] = {"bucket": document.bucket, "key": document.key}
    if version:
        event["version_id"] = document.version_id
    if etag:
        event["etag"] = document.etag
    return json.dumps(event).encode()


def s3_record(
    document: DocumentRef, *, event_name: str = "ObjectCreated:Put", plus: bool = True
) -> dict[str, Any]:
    # Real notifications encode spaces as "+"; "%20" is accepted too.
    key = quote_plus(document.key, safe="/") if plus else quote(document.key, safe="/")
    obj: dict[str, Any] = {"key": key, "eTag": document.etag}
    if document.version_id:
        obj["versionId"] = document.version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {"bucket": {"name": document.bucket}, "object": obj},
    }


def s3_event(*records: dict[str, Any]) -> bytes:
    return json.dumps({"Records": list(records)}).encode()


async def publish(settings: Settings, messages: Sequence[Message]) -> list[Sent]:
    """Publish in order, each acknowledged; where each landed."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka.bootstrap_servers, max_request_size=8 << 20
    )
    await producer.start()
    try:
        sent = []
        for message in messages:
            meta = await producer.send_and_wait(
                settings.kafka.uploads_topic,
                message.value,
                key=message.key,
                partition=message.partition,
                headers=list(message.headers) or None,
            )
            sent.append(Sent(message, meta.partition, meta.offset))
        return sent
    finally:
        await producer.stop()


def ends(sent: Sequence[Sent]) -> dict[int, int]:
    """Per partition, the offset after the last message sent there."""
    out: dict[int, int] = {}
    for s in sent:
        out[s.partition] = max(out.get(s.partition, 0), s.offset + 1)
    return out


async def committed(settings: Settings, partitions: int = 3) -> dict[int, int]:
    """The group's committed offsets by partition (absent: nothing committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        tps = [TopicPartition(settings.kafka.uploads_topic, p) for p in range(partitions)]
        offsets = await admin.list_consumer_group_offsets(settings.kafka.group_id, partitions=tps)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    finally:
        await admin.close()


async def wait_committed(settings: Settings, sent: Sequence[Sent], seconds: float) -> None:
    """Until the group has committed every message of ``sent`` (its offsets past them)."""
    expected = ends(sent)

    async def reached() -> bool:
        now = await committed(settings)
        return all(now.get(p, -1) >= offset for p, offset in expected.items())

    await async_wait_for(reached, seconds, f"committed offsets {expected}")


async def workflow_runs(client: Client, task_queue: str) -> Counter[str]:
    """Runs per workflow ID on a task queue (each test has its own queue)."""
    runs: Counter[str] = Counter()
    async for execution in client.list_workflows(f'TaskQueue = "{task_queue}"'):
        runs[execution.id] += 1
    return runs


async def wait_runs(
    client: Client, task_queue: str, expected: set[str], seconds: float
) -> Counter[str]:
    """Until visibility shows every expected workflow ID (it lags by about a second)."""

    async def complete() -> Counter[str] | None:
        runs = await workflow_runs(client, task_queue)
        return runs if expected <= set(runs) else None

    return await async_wait_for(complete, seconds, f"{len(expected)} workflows")


async def wait_started_once(
    client: Client, task_queue: str, documents: Iterable[DocumentRef], seconds: float
) -> None:
    """Until visibility shows the check of every document, then that each ran exactly once."""
    expected = {d.workflow_id for d in documents}
    runs = await wait_runs(client, task_queue, expected, seconds)
    assert runs == dict.fromkeys(expected, 1)


@contextlib.asynccontextmanager
async def running(intake: UploadIntake, stop_within_s: float = 60) -> AsyncIterator[None]:
    """An intake running in this process for the block; stopped (and waited for) after."""
    stop = asyncio.Event()
    run = asyncio.create_task(intake.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(run, stop_within_s)


async def dead_letters(settings: Settings) -> list[DeadLetter]:
    found = []
    async with contextlib.aclosing(read_dead_letters(settings.kafka)) as letters:
        async for letter in letters:
            found.append(letter)
    return found


_COUNTERS = re.compile(r"intake stopped: (.*)$", re.MULTILINE)


def final_counters(process: ManagedProcess) -> dict[str, int]:
    """The counters a ``docpipe consume`` process logged when it stopped."""
    text = process.log_path.read_text(errors="replace")
    found = _COUNTERS.findall(text)
    assert found, f"no final counters in {process.log_path}: {process.tail()}"
    pairs = (item.split("=", 1) for item in found[-1].split() if "=" in item)
    return {name: int(value) for name, value in pairs if value.isdigit()}


def with_kafka(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, kafka=dataclasses.replace(settings.kafka, **changes))
