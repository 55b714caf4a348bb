"""The results event: one message on the results topic per finished check.

Keyed by document ID, so every event about one document lands on one partition, in order.
Delivery is at-least-once: a retried ``publish_result`` activity (a lost acknowledgement,
a worker that died after sending) sends the same event again. The payload is built only
from the check's result (no clocks), so a repeated event is byte-for-byte the same, and
consumers dedupe by key (the latest event of a key is the document's current result: a
deliberate re-check announces itself under the same key with its own workflow ID and
report location).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from temporalio import activity

from pipeline.check.results import to_json_bytes
from pipeline.models import CheckSummary, DocumentRef, PublishResultInput

log = logging.getLogger(__name__)

RESULT_EVENT_VERSION = 1


def result_event(document: DocumentRef, summary: CheckSummary, workflow_id: str | None) -> bytes:
    """The event's bytes: canonical JSON, the same for the same check result."""
    return to_json_bytes(
        {
            "event_version": RESULT_EVENT_VERSION,
            "document": document.identity_json(),
            "workflow_id": workflow_id,
            "verdict": summary.verdict,
            "reasons": summary.reasons,
            "page_count": summary.page_count,
            "report": {
                "bucket": summary.report_bucket,
                "key": summary.report_key,
                "url": f"s3://{summary.report_bucket}/{summary.report_key}",
            },
        }
    )


class ResultPublisher:
    """Publishes results events; one producer per worker process, started on first use.

    Args:
        topic: the results topic.
        producer_kwargs: aiokafka connection arguments (``infra.clients.kafka_kwargs``).
    """

    def __init__(self, *, topic: str, producer_kwargs: dict[str, Any]) -> None:
        self.topic = topic
        self._kwargs = producer_kwargs
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                # acks=all: an event counts as sent once every in-sync replica has it.
                # Idempotence stays off: the dev broker cannot do it, and the consumers
                # dedupe by key anyway.
                producer = AIOKafkaProducer(acks="all", **self._kwargs)
                await producer.start()
                self._producer = producer
            return self._producer

    @activity.defn(name="publish_result")
    async def publish_result(self, input: PublishResultInput) -> None:
        """Send the results event of a finished check (at least once)."""
        await self.send(input.document, input.summary, activity.info().workflow_id)

    async def send(
        self, document: DocumentRef, summary: CheckSummary, workflow_id: str | None
    ) -> None:
        """Send the results event of a finished check and wait for the broker's ack."""
        producer = await self._started()
        await producer.send_and_wait(
            self.topic,
            value=result_event(document, summary, workflow_id),
            key=document.document_id.encode(),
        )
        log.info(
            "published the result of %s to %s",
            document.document_id,
            self.topic,
            extra={"document_id": document.document_id, "workflow_id": workflow_id},
        )

    async def close(self) -> None:
        """Flush and stop the producer, if it was ever started."""
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
