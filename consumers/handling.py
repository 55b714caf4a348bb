"""Handling one upload event: its documents' checks started, or its dead letter written.

A message is parsed (``consumers.events``); every object it names is identified (its
version, from the event or from one S3 HEAD) before any check starts, so that a message
naming a missing object is dead-lettered whole; then each document's check is started,
idempotently. Every step that talks to S3, Temporal or the broker runs through the
intake's ``Retries``: outages are waited out, refusals become the message's dead letter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from aiokafka.errors import MessageSizeTooLargeError
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from consumers.dead_letters import VALUE_OMITTED
from consumers.dead_letters import dead_letter_headers
from consumers.events import Rejected
from consumers.events import Upload
from consumers.events import parse_upload_event
from consumers.metrics import IntakeCounters
from consumers.metrics import IntakeMetrics
from consumers.retry import Retries
from consumers.retry import classify_dead_letter
from consumers.retry import classify_head
from consumers.retry import classify_start
from consumers.tracing import upload_event_span
from infra.check_requests import check_request
from infra.check_requests import intake_lane
from infra.settings import Settings
from infra.temporal_setup import check_search_attributes
from pipeline.failures import S3Failure
from pipeline.failures import classify_s3
from pipeline.lanes import event_field
from pipeline.models import DocumentRef
from pipeline.models import object_version_id
from pipeline.reasons import Reason
from pipeline.starts import start_check

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# Starts one document's check: True if new, False if it ran or runs already.
StartCheck = Callable[[DocumentRef, float | None, str | None], Awaitable[bool]]


class DeadLetterProducer(Protocol):
    """What the handling needs of a Kafka producer (aiokafka's ``AIOKafkaProducer``)."""

    async def send_and_wait(
        self, topic: str, value: bytes | None, key: bytes | None, headers: list[Any]
    ) -> Any: ...


async def start_upload_check(
    client: Client,
    settings: Settings,
    document: DocumentRef,
    uploaded_at: float | None = None,
    tenant: str | None = None,
) -> bool:
    """Start the check of an uploaded document version as the intake does: its request,
    task queue and lane (live uploads go before re-checks, in fair shares of tenants).

    Args:
        uploaded_at: when the upload event was published (epoch seconds).
        tenant: the upload event's fairness field, if it had one.

    Returns:
        True if this started the check, False if it was running or had run.

    Raises:
        RPCError: Temporal failed, refused the start or cannot be reached.
        SearchAttributesMissingError: Temporal refused the start because the namespace
            lacks docpipe's search attributes (every start would be refused alike).
    """
    try:
        return await start_check(
            client,
            check_request(settings, document, uploaded_at=uploaded_at),
            task_queue=settings.temporal.task_queue,
            priority=intake_lane(settings, document, tenant),
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.INVALID_ARGUMENT:
            await check_search_attributes(client, settings.temporal.namespace)
        raise


@dataclass(kw_only=True)
class UploadHandler:
    """Handles upload events, one call of ``handle`` per Kafka record.

    Attributes:
        settings: the allowlist and limits of events, the dead-letter topic.
        start: starts one document's check (``start_upload_check`` on a client).
        s3: used only to learn the version of an object whose event names none.
        producer: writes dead letters.
        retries: runs every step that may fail.
        counters: what the handling counts.
        metrics: where the age of an event at its start is observed.
    """

    settings: Settings
    start: StartCheck
    s3: S3Client
    producer: DeadLetterProducer
    retries: Retries
    counters: IntakeCounters
    metrics: IntakeMetrics

    async def handle(self, record: Any) -> None:
        """Start the checks an aiokafka record asks for, or write its dead letter;
        returns once that is done (the record's offset may then be committed)."""
        with upload_event_span(record):
            await self._handle(record)

    async def _handle(self, record: Any) -> None:
        self.counters.consumed += 1
        parsed = parse_upload_event(
            record.value,
            allowed_buckets=self.settings.s3.documents_buckets,
            max_bytes=self.settings.kafka.max_message_bytes,
            tenant_field=event_field(self.settings.temporal.fairness_key),
        )
        if isinstance(parsed, Rejected):
            await self._dead_letter(record, parsed)
            return
        self.counters.skipped += parsed.skipped
        documents = []
        for upload in parsed.uploads:
            where = f"s3://{upload.bucket}/{upload.key}"
            document = await self.retries.run(
                "head", f"HEAD {where}", partial(self._identify, upload), classify_head
            )
            if document is None:
                document = Rejected(Reason.OBJECT_MISSING, f"object {where} does not exist")
            if isinstance(document, Rejected):
                await self._dead_letter(record, document)
                return
            documents.append((document, upload.tenant))
        uploaded_at = record.timestamp / 1000 if record.timestamp and record.timestamp > 0 else None
        for document, tenant in documents:
            started = await self.retries.run(
                "start",
                f"start {self._workflow_id(document)}",
                partial(self._start_check, document, uploaded_at, tenant),
                classify_start,
            )
            if isinstance(started, Rejected):
                await self._dead_letter(record, started)
                return

    async def _identify(self, upload: Upload) -> DocumentRef | None:
        """The document an upload names; HEADs the object when the event has no version."""
        version_id, etag, size = upload.version_id, upload.etag, upload.size
        if not (version_id or etag):
            try:
                meta = await asyncio.to_thread(
                    self.s3.head_object, Bucket=upload.bucket, Key=upload.key
                )
            except Exception as exc:
                if classify_s3(exc) is S3Failure.MISSING:
                    return None
                raise
            version_id = object_version_id(meta.get("VersionId"))
            etag = str(meta.get("ETag", "")).strip('"') or None
            size = int(meta.get("ContentLength", 0))
        return DocumentRef(
            bucket=upload.bucket, key=upload.key, version_id=version_id, etag=etag, size=size
        )

    async def _start_check(
        self, document: DocumentRef, uploaded_at: float | None, tenant: str | None
    ) -> bool:
        if not await self.start(document, uploaded_at, tenant):
            # A running check is not doubled, a finished one is not redone.
            self.counters.deduped += 1
            log.debug("already checked or running: %s", self._workflow_id(document))
            return False
        self.counters.started += 1
        if uploaded_at is not None:
            self.metrics.event_age.observe(max(0.0, time.time() - uploaded_at))
        log.info(
            "started the check of %s",
            document.document_id,
            extra={"document_id": document.document_id, "workflow_id": self._workflow_id(document)},
        )
        return True

    def _workflow_id(self, document: DocumentRef) -> str:
        """The ID of the document's check (its object key hashed when the settings say so)."""
        return document.check_workflow_id(self.settings.object_keys_hashed)

    async def _dead_letter(self, record: Any, rejected: Rejected) -> None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        await self.retries.run(
            "dead_letter",
            f"dead-letter {where}",
            partial(self._write_dead_letter, record, rejected),
            classify_dead_letter,
        )
        self.counters.dead_lettered_for(rejected.reason)
        log.warning("dead-lettered %s: %s (%s)", where, rejected.reason, rejected.message)

    async def _write_dead_letter(self, record: Any, rejected: Rejected) -> None:
        dlq_topic = self.settings.kafka.dlq_topic
        headers = dead_letter_headers(
            rejected,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            original=record.headers or (),
        )
        try:
            await self.producer.send_and_wait(
                dlq_topic, value=record.value, key=record.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # Retrying cannot help; the reason and origin must still be visible.
            size = len(record.value or b"")
            log.warning("the dead-letter topic refuses %d bytes: keeping the headers only", size)
            await self.producer.send_and_wait(
                dlq_topic,
                value=None,
                key=record.key,
                headers=[*headers, (VALUE_OMITTED, str(size).encode())],
            )
