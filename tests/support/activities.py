"""Document activities for in-process tests: a worker's collaborators, small and quick,
against moto's in-process S3."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

from pipeline.check.activities import DocumentActivities
from pipeline.check.pool import PagePool
from pipeline.check.spool import Spooler
from pipeline.models import CheckPlan
from pipeline.policy import VerdictPolicy

DOCS, RESULTS = "documents", "results"


@contextmanager
def in_process_s3() -> Iterator[Any]:
    """moto's in-process S3 with a versioned documents bucket and a results bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=DOCS)
        client.create_bucket(Bucket=RESULTS)
        client.put_bucket_versioning(Bucket=DOCS, VersioningConfiguration={"Status": "Enabled"})
        yield client


def make_activities(
    s3: Any,
    *,
    chunk_pages: int = 10,
    pool_size: int = 2,
    policy: VerdictPolicy | None = None,
    spool_dir: str | None = None,
    shelve: bool = True,
    max_document_bytes: int = 1 << 30,
    publisher: Any = None,
) -> DocumentActivities:
    """Activities as a worker builds them, with a pool of ``pool_size`` processes (started
    on first use; the caller closes them) and a 5 s heartbeat timeout in the plan."""
    pool = PagePool(pool_size)
    return DocumentActivities(
        s3=s3,
        pool=pool,
        spooler=Spooler(s3, directory=spool_dir, shelve=shelve, forget=pool.forget),
        plan=CheckPlan(
            chunk_pages=chunk_pages, heartbeat_timeout_s=5, policy=policy or VerdictPolicy()
        ),
        max_document_bytes=max_document_bytes,
        publisher=publisher,
    )
