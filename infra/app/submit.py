"""Act as an upstream system: upload PDFs to S3 and publish their upload events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer
from botocore.exceptions import ClientError

from infra.clients import kafka_kwargs, s3_client, start_kafka
from infra.settings import Settings
from pipeline.failures import S3Failure, classify_s3, describe_s3
from pipeline.models import DocumentRef


class SubmitError(RuntimeError):
    """S3 refused or failed an upload; the message says which file and why."""


@dataclass(frozen=True)
class Submission:
    """One uploaded file and the document version it became."""

    path: Path
    document: DocumentRef


def upload_event(document: DocumentRef, content_type: str = "application/pdf") -> bytes:
    """The native upload event for one object version."""
    event = {
        "bucket": document.bucket,
        "key": document.key,
        "version_id": document.version_id,
        "etag": document.etag,
        "size": document.size,
        "content_type": content_type,
        "event_id": str(uuid.uuid4()),
    }
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


def upload(settings: Settings, path: Path, bucket: str, key: str) -> DocumentRef:
    """Put one file into S3; the response names the exact version created.

    Raises:
        SubmitError: S3 refused the upload, or kept failing after the client's retries.
    """
    s3 = s3_client(settings.s3)
    body = path.read_bytes()
    try:
        response = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/pdf")
    except ClientError as exc:
        refused = classify_s3(exc) in (S3Failure.ACCESS_DENIED, S3Failure.REJECTED)
        why = "refused" if refused else "failed, after its retries,"
        raise SubmitError(
            f"S3 {why} the upload of {path} to s3://{bucket}/{key}: {describe_s3(exc)}"
        ) from None
    version_id = response.get("VersionId")
    return DocumentRef(
        bucket=bucket,
        key=key,
        version_id=version_id if version_id and version_id != "null" else None,
        etag=str(response["ETag"]).strip('"'),
        size=len(body),
    )


async def submit_files(
    settings: Settings,
    files: Sequence[Path],
    *,
    bucket: str | None = None,
    key: str | None = None,
    key_prefix: str = "",
) -> list[Submission]:
    """Upload each file and publish one upload event per file.

    Args:
        bucket: target bucket; default: the first documents bucket.
        key: object key, only with a single file; default: ``key_prefix`` + file name.
    """
    if key is not None and len(files) != 1:
        raise ValueError("--key names one object: give exactly one file with it")
    bucket = bucket or settings.s3.documents_buckets[0]
    submissions = []
    for path in files:
        document = await asyncio.to_thread(
            upload, settings, path, bucket, key or f"{key_prefix}{path.name}"
        )
        submissions.append(Submission(path, document))
    producer = AIOKafkaProducer(acks="all", **kafka_kwargs(settings.kafka))
    await start_kafka(producer, settings.kafka)
    try:
        for submission in submissions:
            document = submission.document
            await producer.send_and_wait(
                settings.kafka.uploads_topic,
                value=upload_event(document),
                key=f"{document.bucket}/{document.key}".encode(),
            )
    finally:
        await producer.stop()
    return submissions
