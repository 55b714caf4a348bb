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
import dataclasses
import logging
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from temporalio import activity
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityConfig

from pipeline.check.metrics import PipelineMetrics
from pipeline.check.results import to_json_bytes
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.models import PublishResultInput
from pipeline.models import PublishReviewInput
from pipeline.review import ReviewState
from pipeline.review import ReviewStatus

log = logging.getLogger(__name__)

RESULT_EVENT_VERSION = 1

# What happens once the report is written (the results event, a review decision and its
# event) waits out an outage of the broker or S3, up to a week, past the check's own
# attempt limit: the check's work is done, only its record waits.
OUTLAST_OUTAGES = ActivityConfig(
    start_to_close_timeout=timedelta(minutes=2),
    schedule_to_close_timeout=timedelta(days=7),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(minutes=1),
    ),
)


def result_event(
    document: DocumentRef,
    summary: CheckSummary,
    workflow_id: str | None,
    review: ReviewStatus | None = None,
) -> bytes:
    """The event's bytes: canonical JSON, the same for the same check result (and review
    state: a decision, overdue, superseded; the review's times come from workflow time)."""
    event = {
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
    if review is not None:
        event["review"] = review_json(review)
        event["final_verdict"] = (
            review.outcome.final_verdict if review.outcome is not None else summary.verdict
        )
    return to_json_bytes(event)


def review_json(review: ReviewStatus) -> dict[str, Any]:
    """A review state as the results event carries it (the note stays out: it is in
    decision.json, which only those who may read results read)."""
    shown = dataclasses.asdict(review)
    if review.outcome is not None:
        shown["outcome"]["decision"].pop("note", None)
    return shown


class ResultPublisher:
    """Publishes results events; one producer per worker process, started on first use.

    Args:
        topic: the results topic.
        producer_kwargs: aiokafka connection arguments (``infra.clients.kafka_kwargs``).
    """

    def __init__(
        self,
        *,
        topic: str,
        producer_kwargs: dict[str, Any],
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.topic = topic
        self._kwargs = producer_kwargs
        self._metrics = metrics or PipelineMetrics()
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                # acks=all: an event counts as sent once every in-sync replica has it.
                # Idempotence stays off: the dev broker cannot do it, and the consumers
                # dedupe by key anyway.
                producer = AIOKafkaProducer(acks="all", **self._kwargs)
                try:
                    await producer.start()
                except BaseException:
                    # Closed, so that a broker outage leaves no connection open, nor an
                    # unclosed producer logged for each retry of the activity.
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    @activity.defn(name="publish_result")
    async def publish_result(self, input: PublishResultInput) -> None:
        """Send the results event of a finished check (at least once)."""
        await self.send(input.document, input.summary, activity.info().workflow_id)

    @activity.defn(name="publish_review")
    async def publish_review(self, input: PublishReviewInput) -> None:
        """Announce where a reported check stands with review (decided, overdue,
        superseded), under the document's key like its results event (at least once)."""
        review = input.review
        if review.overdue and review.state is ReviewState.AWAITING:
            # Once per check but for a retried send: the deadline passes once.
            self._metrics.review_overdue.inc()
        await self.send(input.document, input.summary, activity.info().workflow_id, review)

    async def send(
        self,
        document: DocumentRef,
        summary: CheckSummary,
        workflow_id: str | None,
        review: ReviewStatus | None = None,
    ) -> None:
        """Send the results event of a finished check and wait for the broker's ack."""
        producer = await self._started()
        await producer.send_and_wait(
            self.topic,
            value=result_event(document, summary, workflow_id, review),
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
