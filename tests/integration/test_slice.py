"""The thin vertical slice on the real stack: a Kafka event becomes a report in S3."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaProducer
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from temporalio.client import WorkflowExecutionStatus

from infra.clients import s3_client
from infra.clients import temporal_client
from infra.settings import Settings
from pipeline.models import REPORT_NAME
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.reports import assert_valid_report
from tests.support.reports import read_topic


async def test_upload_event_becomes_report(
    settings: Settings, start_component: StartComponent
) -> None:
    start_component(["worker"], settings)
    start_component(["consume"], settings)

    s3 = s3_client(settings.s3)
    bucket = settings.s3.documents_buckets[0]
    body = make_pdf(["text"] * 12 + ["blank"] + ["text"] * 10)
    put = s3.put_object(Bucket=bucket, Key="slice/report me.pdf", Body=body)
    document = DocumentRef(bucket=bucket, key="slice/report me.pdf", version_id=put["VersionId"])

    # A plain producer, as an upstream team would publish.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers)
    await producer.start()
    try:
        event = {"bucket": bucket, "key": document.key, "version_id": document.version_id}
        sent = await producer.send_and_wait(
            settings.kafka.uploads_topic, json.dumps(event).encode(), key=b"slice"
        )
    finally:
        await producer.stop()

    report_key = f"{document.results_prefix(settings.s3.results_prefix)}/{REPORT_NAME}"

    async def report() -> dict[str, object] | None:
        listed = s3.list_objects_v2(Bucket=settings.s3.results_bucket, Prefix=report_key)
        if not listed.get("KeyCount"):
            return None
        obj = s3.get_object(Bucket=settings.s3.results_bucket, Key=report_key)
        loaded: dict[str, object] = json.loads(obj["Body"].read())
        return loaded

    written = assert_valid_report(await async_wait_for(report, 90, "report.json"))
    facts = written["facts"]
    assert isinstance(facts, dict)
    assert facts["page_count"] == 23
    checks = written["checks"]
    assert isinstance(checks, dict)
    assert checks["pages_checked"] == 23
    assert checks["blank_pages"] == {"count": 1, "pages": [13]}
    assert written["verdict"] == {
        "verdict": "review",
        "reasons": ["blank_pages"],
        "informational": [],
    }

    client = await temporal_client(settings.temporal, settings.codec)
    handle = client.get_workflow_handle(document.workflow_id, result_type=CheckSummary)
    summary = await handle.result()
    assert summary.page_count == 23
    assert summary.report_key == report_key
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    # The results event: keyed by document ID, naming the verdict and the report.
    (event,) = await read_topic(settings, settings.kafka.results_topic, count=1)
    assert event.key == document.document_id.encode()
    announced = json.loads(event.value)
    assert announced["verdict"] == "review" and announced["reasons"] == ["blank_pages"]
    assert announced["report"]["key"] == report_key
    assert announced["page_count"] == 23
    assert announced["workflow_id"] == document.workflow_id

    # The offset is committed past the event once its start is durable.
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        partition = TopicPartition(settings.kafka.uploads_topic, sent.partition)

        async def committed() -> int | None:
            offsets = await admin.list_consumer_group_offsets(
                settings.kafka.group_id, partitions=[partition]
            )
            meta = offsets.get(partition)
            return meta.offset if meta and meta.offset > sent.offset else None

        assert await async_wait_for(committed, 30, "committed offset") == sent.offset + 1
    finally:
        await admin.close()
