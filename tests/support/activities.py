"""Document activities for in-process tests: a worker's collaborators, small and quick,
against moto's in-process S3."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws
from temporalio.testing import ActivityEnvironment

from pipeline.check.activities import DocumentActivities
from pipeline.check.pool import PagePool
from pipeline.check.results import chunk_key
from pipeline.check.spool import Spooler
from pipeline.models import CheckDocumentInput
from pipeline.models import CheckPagesInput
from pipeline.models import CheckPagesResult
from pipeline.models import CheckPlan
from pipeline.models import DocumentRef
from pipeline.models import FinalizeInput
from pipeline.models import InspectResult
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


# The document the activity tests check: 35 pages in chunks of 10, page 21 blank.
PAGES = 35
PREFIX = "out/doc"

_made: list[DocumentActivities] = []


def tracked_activities(s3: Any, chunk_pages: int = 10, **options: Any) -> DocumentActivities:
    """``make_activities``, closed after the test by ``close_tracked_activities``."""
    made = make_activities(s3, chunk_pages=chunk_pages, **options)
    _made.append(made)
    return made


def close_tracked_activities() -> None:
    """Stop the parser processes of every ``tracked_activities`` made so far."""
    while _made:
        _made.pop().close()


def retry_env(details: list[Any], heartbeats: list[Any]) -> ActivityEnvironment:
    """An attempt 2 with these heartbeat details, its heartbeats appended to ``heartbeats``."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, heartbeat_details=details, heartbeat_timeout=timedelta(seconds=5), attempt=2
    )
    env.on_heartbeat = lambda *args: heartbeats.append(args[0])
    return env


def written_chunks(s3: Any) -> list[str]:
    """The keys of the chunk files stored under ``PREFIX``, sorted."""
    listed = s3.list_objects_v2(Bucket=RESULTS, Prefix=f"{PREFIX}/pages/")
    return sorted(obj["Key"] for obj in listed.get("Contents", []))


def stored_chunk_pages(s3: Any, first: int) -> list[dict[str, Any]]:
    """The page results of the chunk file that starts at page ``first``."""
    body = s3.get_object(Bucket=RESULTS, Key=chunk_key(PREFIX, first))["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def document_input(document: DocumentRef, *, ocr_elsewhere: bool = False) -> CheckDocumentInput:
    """What the workflow hands ``check_document`` for a document whose results go under
    ``PREFIX``."""
    return CheckDocumentInput(
        document=document,
        results_bucket=RESULTS,
        results_prefix=PREFIX,
        ocr_elsewhere=ocr_elsewhere,
    )


def finalize_input(
    document: DocumentRef, inspection: InspectResult, pages: CheckPagesResult
) -> FinalizeInput:
    """What the workflow hands ``finalize`` for the document under ``PREFIX``, made as the
    workflow makes it."""
    return document_input(document).finalize_input(inspection, pages)


def pages_input(document: DocumentRef, chunk_pages: int = 10) -> CheckPagesInput:
    """What the workflow hands ``check_pages`` for the ``PAGES``-page document."""
    return CheckPagesInput(
        document=document,
        results_bucket=RESULTS,
        results_prefix=PREFIX,
        page_count=PAGES,
        chunk_pages=chunk_pages,
    )


def count_parsed(activities: DocumentActivities, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every page this worker's parser processes are sent, in the order sent."""
    real_check = activities.pool.check_range
    sent: list[int] = []

    async def check_range(
        path: Any, first: int, last: int, log_extra: Any = None, *, ocr: bool = True
    ) -> list[dict[str, Any]]:
        sent.extend(range(first, last + 1))
        return await real_check(path, first, last, log_extra, ocr=ocr)

    monkeypatch.setattr(activities.pool, "check_range", check_range)
    return sent
