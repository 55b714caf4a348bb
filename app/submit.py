"""Act as an upstream system: upload PDFs to S3 and publish their upload events."""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaProducer
from botocore.exceptions import ClientError

from app.command import EXIT_USAGE
from app.command import CommandError
from app.command import Commands
from infra.clients import kafka_kwargs
from infra.clients import s3_client
from infra.clients import start_kafka
from infra.settings import Settings
from pipeline.failures import S3Failure
from pipeline.failures import classify_s3
from pipeline.failures import describe_s3
from pipeline.models import DocumentRef
from pipeline.models import object_version_id

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


# Uploads at once: enough to keep S3 busy with small files, within the S3 client's
# connection pool (10 by default).
UPLOAD_CONCURRENCY = 8


class SubmitError(CommandError):
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


def upload(
    settings: Settings, path: Path, bucket: str, key: str, s3: S3Client | None = None
) -> DocumentRef:
    """Put one file into S3; the response names the exact version created.

    ``s3``: the client to use (default: a new one; share one for many files).

    Raises:
        SubmitError: S3 refused the upload, or kept failing after the client's retries.
    """
    s3 = s3 or s3_client(settings.s3)
    body = path.read_bytes()
    try:
        response = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/pdf")
    except ClientError as exc:
        refused = classify_s3(exc) in (S3Failure.ACCESS_DENIED, S3Failure.REJECTED)
        why = "refused" if refused else "failed, after its retries,"
        raise SubmitError(
            f"S3 {why} the upload of {path} to s3://{bucket}/{key}: {describe_s3(exc)}"
        ) from None
    return DocumentRef(
        bucket=bucket,
        key=key,
        version_id=object_version_id(response.get("VersionId")),
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
    concurrency: int = UPLOAD_CONCURRENCY,
) -> list[Submission]:
    """Upload each file and publish its upload event as soon as its upload is done.

    Up to ``concurrency`` uploads run at once, all with one S3 client. On the first
    failure the uploads not yet done are stopped; the files already published stay so.

    Args:
        bucket: target bucket; default: the first documents bucket.
        key: object key, only with a single file; default: ``key_prefix`` + file name.

    Returns:
        The submissions, in the order of ``files``.

    Raises:
        SubmitError: S3 refused or failed an upload.
    """
    if key is not None and len(files) != 1:
        raise ValueError("--key names one object: give exactly one file with it")
    target = bucket or settings.s3.documents_buckets[0]
    s3 = s3_client(settings.s3)
    producer = AIOKafkaProducer(acks="all", **kafka_kwargs(settings.kafka))
    await start_kafka(producer, settings.kafka)
    slots = asyncio.Semaphore(concurrency)

    async def submit(path: Path) -> Submission:
        async with slots:
            document = await asyncio.to_thread(
                upload, settings, path, target, key or f"{key_prefix}{path.name}", s3
            )
        delivered = await producer.send(
            settings.kafka.uploads_topic,
            value=upload_event(document),
            key=f"{document.bucket}/{document.key}".encode(),
        )
        await delivered
        return Submission(path, document)

    try:
        async with asyncio.TaskGroup() as group:
            submitted = [group.create_task(submit(path)) for path in files]
    except BaseExceptionGroup as failed:
        # The first failure as it was; the others are cancelled uploads.
        raise failed.exceptions[0] from None
    finally:
        await producer.stop()
    return [task.result() for task in submitted]


def add_commands(commands: Commands) -> None:
    """``docpipe submit``."""
    submit = commands.add("submit", "upload PDFs to S3 and publish their upload events", _submit)
    submit.add_argument("files", nargs="+", metavar="FILE", help="the PDF files to upload")
    submit.add_argument("--bucket", help="documents bucket (default: the first allowed one)")
    submit.add_argument("--key", help="object key (one file only; default: the file name)")


def _submit(args: argparse.Namespace, settings: Settings) -> int:
    """Act as an upstream system for some files."""
    files = [Path(f) for f in args.files]
    for path in files:
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
    if args.key is not None and len(files) != 1:
        raise CommandError("--key names one object: give exactly one file", exit_code=EXIT_USAGE)
    submissions = asyncio.run(submit_files(settings, files, bucket=args.bucket, key=args.key))
    for submission in submissions:
        workflow_id = submission.document.check_workflow_id(settings.object_keys_hashed)
        print(f"{submission.path}  ->  workflow {workflow_id}")
    return 0
