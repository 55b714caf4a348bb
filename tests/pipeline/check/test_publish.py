"""The results publisher while the broker cannot be reached."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaConnectionError

from infra.ports import LOOPBACK
from infra.ports import free_ports
from pipeline.check.publish import ResultPublisher
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from tests.support.unclosed import no_kafka_client_left_unclosed

DOCUMENT = DocumentRef(bucket="documents", key="in/a.pdf", version_id="v1")


async def test_a_producer_that_cannot_reach_the_broker_is_closed_each_time() -> None:
    """Each send while no broker answers fails (the activity is retried), and the producer
    it started is closed: none is left for the garbage collector to report unclosed."""
    (port,) = free_ports(1)  # nothing listens there
    publisher = ResultPublisher(
        topic="results",
        producer_kwargs={"bootstrap_servers": f"{LOOPBACK}:{port}", "request_timeout_ms": 1000},
    )
    summary = CheckSummary(document_id=DOCUMENT.document_id, verdict="pass")
    with no_kafka_client_left_unclosed():
        for _ in range(2):
            with pytest.raises(KafkaConnectionError):
                await publisher.send(DOCUMENT, summary, workflow_id="docpipe/a")
    await publisher.close()
