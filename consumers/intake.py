"""The Kafka intake: upload events in, one Temporal workflow start per document version out.

An offset is committed only once every message before it was either started in Temporal
(durably: the start call returned) or written to the dead-letter topic (acknowledged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from botocore.exceptions import ClientError
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from consumers.events import Parsed, Rejected, Upload, parse_upload_event
from infra.clients import kafka_kwargs
from infra.settings import Settings
from pipeline.models import WORKFLOW_NAME, CheckRequest, DocumentRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

OBJECT_MISSING = "object_missing"


@dataclass
class IntakeCounters:
    """What the intake has done since it started."""

    consumed: int = 0
    started: int = 0
    deduped: int = 0
    skipped: int = 0
    dead_lettered: int = 0
    retries: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)


def dlq_headers(
    rejected: Rejected, record: ConsumerRecord[bytes, bytes]
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: why, and where the original came from."""
    return [
        ("docpipe.reason", rejected.reason.encode()),
        ("docpipe.message", rejected.message.encode()),
        ("docpipe.source.topic", record.topic.encode()),
        ("docpipe.source.partition", str(record.partition).encode()),
        ("docpipe.source.offset", str(record.offset).encode()),
    ]


class UploadIntake:
    """Consumes upload events and starts document checks.

    Args:
        settings: all settings (Kafka for the topics, Temporal for the start, S3 for the
            allowlist and the results location).
        client: a connected Temporal client.
        s3: used only to learn the version of an object whose event names none.
    """

    def __init__(self, settings: Settings, client: Client, s3: S3Client) -> None:
        self._settings = settings
        self._client = client
        self._s3 = s3
        self.counters = IntakeCounters()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then commit what is done and leave the group."""
        kafka = self._settings.kafka
        consumer = AIOKafkaConsumer(
            kafka.uploads_topic,
            group_id=kafka.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=max(kafka.session_timeout_ms // 3, 100),
            **kafka_kwargs(kafka),
        )
        producer = AIOKafkaProducer(acks="all", **kafka_kwargs(kafka))
        await producer.start()
        await consumer.start()
        log.info("consuming %s as group %s", kafka.uploads_topic, kafka.group_id)
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=100)
                for tp, records in batches.items():
                    for record in records:
                        await self._handle(record, producer)
                        await consumer.commit({tp: record.offset + 1})
        finally:
            await consumer.stop()
            await producer.stop()
            log.info("intake stopped: %s", self.counters)

    async def _handle(
        self, record: ConsumerRecord[bytes, bytes], producer: AIOKafkaProducer
    ) -> None:
        self.counters.consumed += 1
        parsed = parse_upload_event(
            record.value, allowed_buckets=self._settings.s3.documents_buckets
        )
        if isinstance(parsed, Parsed):
            self.counters.skipped += parsed.skipped
            documents = [await self._identify(u) for u in parsed.uploads]
            missing = [u for u, d in zip(parsed.uploads, documents, strict=True) if d is None]
            if missing:
                parsed = Rejected(OBJECT_MISSING, f"object {missing[0].key!r} does not exist")
            else:
                await self._start_all([d for d in documents if d is not None])
                return
        await self._dead_letter(record, parsed, producer)

    async def _identify(self, upload: Upload) -> DocumentRef | None:
        """The document an upload names; HEADs the object when the event has no version."""
        version_id, etag, size = upload.version_id, upload.etag, upload.size
        if not (version_id or etag):
            try:
                meta = await asyncio.to_thread(
                    self._s3.head_object, Bucket=upload.bucket, Key=upload.key
                )
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey"):
                    return None
                raise
            version_id = meta.get("VersionId") if meta.get("VersionId") != "null" else None
            etag = str(meta.get("ETag", "")).strip('"') or None
            size = int(meta.get("ContentLength", 0))
        return DocumentRef(
            bucket=upload.bucket, key=upload.key, version_id=version_id, etag=etag, size=size
        )

    async def _start_all(self, documents: Sequence[DocumentRef]) -> None:
        for document in documents:
            await self.start(document)

    async def start(self, document: DocumentRef) -> bool:
        """Start the check of one document version; True if new, False if deduped."""
        settings = self._settings
        request = CheckRequest(
            document=document,
            results_bucket=settings.s3.results_bucket,
            results_prefix=document.results_prefix(settings.s3.results_prefix),
            page_task_queue=settings.temporal.page_task_queue,
        )
        try:
            await self._client.start_workflow(
                WORKFLOW_NAME,
                request,
                id=document.workflow_id,
                task_queue=settings.temporal.task_queue,
                # A running check is not doubled, a finished one is not redone.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            self.counters.deduped += 1
            log.info("already checked: %s", document.workflow_id)
            return False
        self.counters.started += 1
        log.info("started %s", document.workflow_id)
        return True

    async def _dead_letter(
        self, record: ConsumerRecord[bytes, bytes], rejected: Rejected, producer: Any
    ) -> None:
        await producer.send_and_wait(
            self._settings.kafka.dlq_topic,
            value=record.value,
            key=record.key,
            headers=dlq_headers(rejected, record),
        )
        self.counters.dead_lettered += 1
        self.counters.by_reason[rejected.reason] = (
            self.counters.by_reason.get(rejected.reason, 0) + 1
        )
        log.warning(
            "dead-lettered %s[%d]@%d: %s",
            record.topic,
            record.partition,
            record.offset,
            rejected.reason,
        )
