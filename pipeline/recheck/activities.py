"""The activities of a bulk re-check: find a page of matching documents, supersede the
checks of a document that wait for review (or still check) once its re-check is reported,
compare the reports of a page's re-checks with their originals, and fold every page into
the diff.

S3 calls run in threads (boto3 blocks); each activity heartbeats while it works, so that a
killed worker's activity is retried within 30 s, as a document check's is. Every activity
can be repeated: listing is read only, and the objects written are a function of the
reports they are made from.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.client import WorkflowExecution

from pipeline.check.heartbeat import Heartbeater
from pipeline.check.results import ResultStore
from pipeline.check.results import to_json_bytes
from pipeline.models import RECHECK_ID_MARK
from pipeline.models import REPORT_NAME
from pipeline.models import DocumentRef
from pipeline.models import object_version_id
from pipeline.recheck.diff import build_diff
from pipeline.recheck.diff import comparison_row
from pipeline.recheck.diff import is_change
from pipeline.recheck.diff import policy_fingerprint
from pipeline.recheck.models import ComparePageInput
from pipeline.recheck.models import ListMatchesInput
from pipeline.recheck.models import Match
from pipeline.recheck.models import MatchPage
from pipeline.recheck.models import PageComparison
from pipeline.recheck.models import WriteDiffInput
from pipeline.recheck.models import diff_key
from pipeline.recheck.models import outcomes_key
from pipeline.recheck.models import recheck_home
from pipeline.starts import started_request

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _encode(token: bytes) -> str:
    return base64.b64encode(token).decode()


class RecheckActivities:
    """Activities of ``RecheckWorkflow``: the Temporal client reads visibility and the
    checks' inputs, the S3 client lists documents and reads and writes reports."""

    def __init__(self, client: Client, s3: S3Client) -> None:
        self._client = client
        self._s3 = s3

    @activity.defn(name="list_matches")
    async def list_matches(self, request: ListMatchesInput) -> MatchPage:
        """One page of matching documents, and where the next page starts."""
        async with Heartbeater():
            if request.selection.query:
                return await self._from_visibility(request)
            return await asyncio.to_thread(self._from_listing, request)

    async def _from_visibility(self, request: ListMatchesInput) -> MatchPage:
        token = base64.b64decode(request.cursor) if request.cursor else None
        executions = self._client.list_workflows(
            request.selection.query, page_size=request.page_size, next_page_token=token
        )
        await executions.fetch_next_page()
        matches: list[Match] = []
        seen: set[str] = set()
        for execution in executions.current_page or ():
            # A re-check matches what its original matches: it is not a document of its own.
            if RECHECK_ID_MARK in execution.id or execution.id in seen:
                continue
            seen.add(execution.id)
            found = await self._match_of(execution)
            if found is not None:
                matches.append(found)
        next_token = executions.next_page_token
        return MatchPage(matches=matches, next_cursor=_encode(next_token) if next_token else None)

    async def _match_of(self, execution: WorkflowExecution) -> Match | None:
        """The document a check checked and where its report is, from its input."""
        try:
            request = await started_request(self._client, execution.id, execution.run_id)
        except ValueError:
            return None
        # None: gone from Temporal between the listing and now (retention).
        if request is None:
            return None
        return Match(
            document=request.document,
            results_bucket=request.results_bucket,
            results_prefix=request.results_prefix,
        )

    def _from_listing(self, request: ListMatchesInput) -> MatchPage:
        selection = request.selection
        kwargs: dict[str, Any] = {
            "Bucket": selection.bucket,
            "Prefix": selection.prefix,
            "MaxKeys": request.page_size,
        }
        if request.cursor:
            kwargs["ContinuationToken"] = request.cursor
        listing = self._s3.list_objects_v2(**kwargs)
        matches = []
        for item in listing.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):
                continue
            document = self._current_version(selection.bucket, key)
            if document is not None:
                matches.append(
                    Match(
                        document=document,
                        results_bucket=request.results_bucket,
                        results_prefix=document.results_prefix(request.results_root),
                    )
                )
        next_cursor = listing.get("NextContinuationToken") if listing.get("IsTruncated") else None
        return MatchPage(matches=matches, next_cursor=next_cursor)

    def _current_version(self, bucket: str, key: str) -> DocumentRef | None:
        try:
            head = self._s3.head_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None  # deleted since it was listed
            raise
        return DocumentRef(
            bucket=bucket,
            key=key,
            version_id=object_version_id(head.get("VersionId")),
            etag=str(head.get("ETag", "")).strip('"') or None,
            size=int(head.get("ContentLength", 0)),
        )

    @activity.defn(name="compare_page")
    async def compare_page(self, request: ComparePageInput) -> PageComparison:
        """Compare each re-check's report with its original's; store the page's rows."""
        async with Heartbeater():
            return await asyncio.to_thread(self._compare_page, request)

    def _compare_page(self, request: ComparePageInput) -> PageComparison:
        rows = []
        policies: dict[str, Any] = {}
        for outcome in request.outcomes:
            match = outcome.match
            store = ResultStore(self._s3, match.results_bucket)
            before = _report(store, f"{match.results_prefix}/{REPORT_NAME}")
            after = _report(store, f"{match.recheck_prefix(request.recheck_id)}/{REPORT_NAME}")
            for report in (before, after):
                fingerprint = policy_fingerprint((report or {}).get("policy"))
                if fingerprint and report:
                    policies[fingerprint] = report["policy"]
            rows.append(comparison_row(match, outcome.outcome, before, after, request.recheck_id))
        body = {"rows": rows, "policies": policies}
        key = outcomes_key(request.results_root, request.recheck_id, request.chain, request.page)
        self._s3.put_object(
            Bucket=request.results_bucket,
            Key=key,
            Body=to_json_bytes(body),
            ContentType="application/json",
        )
        return PageComparison(documents=len(rows), changed=sum(1 for r in rows if is_change(r)))

    @activity.defn(name="write_diff")
    async def write_diff(self, request: WriteDiffInput) -> str:
        """Fold every page's rows into the diff report; its key."""
        async with Heartbeater():
            return await asyncio.to_thread(self._write_diff, request)

    def _write_diff(self, request: WriteDiffInput) -> str:
        prefix = f"{recheck_home(request.results_root, request.recheck_id)}/pages/{request.chain}/"
        policies: dict[str, Any] = {}

        def rows() -> Iterator[dict[str, Any]]:
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=request.results_bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    body = self._s3.get_object(Bucket=request.results_bucket, Key=item["Key"])
                    stored = json.loads(body["Body"].read())
                    policies.update(stored.get("policies", {}))
                    yield from stored.get("rows", [])

        diff = build_diff(
            recheck_id=request.recheck_id,
            selection=request.selection,
            rows=rows(),
            policies=policies,
            max_listed=request.max_listed,
            totals=request.totals,
        )
        key = diff_key(request.results_root, request.recheck_id)
        self._s3.put_object(
            Bucket=request.results_bucket,
            Key=key,
            Body=json.dumps(diff, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
        )
        return key


def _report(store: ResultStore, key: str) -> dict[str, Any] | None:
    body = store.read(key)
    return json.loads(body) if body is not None else None
