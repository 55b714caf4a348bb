"""Writing a check's ``report.json`` exactly once: the fold of its chunk files, the write,
and what a report already there means.

``finalize`` and ``check_document`` (for a document it sees through) both end here.
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING
from typing import Any

from opentelemetry import trace
from temporalio import activity
from temporalio.exceptions import ApplicationError

from pipeline.check.metrics import PipelineMetrics
from pipeline.check.page_summary import PageSummary
from pipeline.check.report import build_report
from pipeline.check.results import ResultConflictError
from pipeline.check.results import ResultStore
from pipeline.check.results import chunk_key
from pipeline.check.results import to_json_bytes
from pipeline.models import REPORT_NAME
from pipeline.models import CheckSummary
from pipeline.models import FinalizeInput

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The activities' logger: these are the lines of the activity that writes the report, and
# operators find them there (docs/OPERATIONS.md).
log = logging.getLogger("pipeline.check.activities")
# Spans of the work inside activities; Temporal's interceptor makes the activity spans.
_tracer = trace.get_tracer("docpipe.pipeline")


def write_report(
    s3: S3Client,
    input: FinalizeInput,
    workflow_id: str | None = None,
    *,
    metrics: PipelineMetrics,
    own_report_stands: bool = False,
) -> CheckSummary:
    """Fold and write the report. With ``own_report_stands``, a report that an earlier
    attempt of this same check wrote first stands, as its chunks do: the inspection
    it was folded from may have differed (a timeout under load); the check had one
    report and keeps it.

    Args:
        s3: S3 client for the chunk files and the report.
        input: the check's document, inspection, page results and where they are.
        workflow_id: the check's workflow, recorded in the report.
        metrics: where the time from upload to report is observed.
        own_report_stands: keep a report this check wrote before instead of failing.

    Returns:
        The summary of the report that stands.

    Raises:
        ApplicationError: ``incomplete_results`` when the chunks miss pages,
            ``result_conflict`` (non-retryable) when another check's report is there.
    """
    store = ResultStore(s3, input.results_bucket)
    summary = PageSummary()
    keys: list[str] = []
    pages = input.pages
    if pages is not None:
        firsts = [index * pages.chunk_pages + 1 for index in range(pages.chunks)]
        keys = [chunk_key(input.results_prefix, first) for first in firsts]
        folded = _summary_from_state(pages.summary)
        if folded is not None:
            summary = folded
        else:
            for result in store.iter_chunks(input.results_prefix, firsts):
                summary.add(result)
        if summary.pages != input.inspection.page_count:
            raise ApplicationError(
                f"chunks hold {summary.pages} pages, the document has "
                f"{input.inspection.page_count}",
                type="incomplete_results",
            )
    report = build_report(
        document=input.document,
        inspection=input.inspection,
        summary=summary,
        chunk_keys=keys,
        chunk_pages=pages.chunk_pages if pages else input.inspection.plan.chunk_pages,
        results_prefix=input.results_prefix,
        workflow_id=workflow_id,
    )
    report_key = f"{input.results_prefix}/{REPORT_NAME}"
    try:
        with _tracer.start_as_current_span("docpipe.write_report"):
            written = store.write_once(report_key, to_json_bytes(report), "application/json")
    except ResultConflictError as exc:
        stored = _own_report(store, report_key, input, workflow_id)
        if not own_report_stands or stored is None:
            raise _conflict(exc) from exc
        log.warning(
            "the report of %s was written by an earlier attempt of this check; it stands",
            input.document.document_id,
            extra={"document_id": input.document.document_id, "workflow_id": workflow_id},
        )
        report, written = stored, False
    if written and input.uploaded_at is not None:
        # Once per check: a retried finalize finds the report there.
        metrics.upload_to_report.observe(max(0.0, time.time() - input.uploaded_at))
    verdict = report["verdict"]
    log.info(
        "report for %s: %s %s",
        input.document.document_id,
        verdict["verdict"],
        verdict["reasons"],
        extra={"document_id": input.document.document_id, "workflow_id": workflow_id},
    )
    review = input.inspection.plan.review
    return CheckSummary.of_report(
        report,
        bucket=input.results_bucket,
        key=report_key,
        review_wait=(
            review.wait_for(verdict["verdict"], verdict["reasons"]) if input.await_review else None
        ),
    )


def _own_report(
    store: ResultStore, key: str, input: FinalizeInput, workflow_id: str | None
) -> dict[str, Any] | None:
    """The stored report at ``key`` if this check wrote it (same workflow, same object
    version), else None."""
    body = store.read(key)
    try:
        report = json.loads(body) if body is not None else None
    except ValueError:
        return None
    if not isinstance(report, dict):
        return None
    document = report.get("document") or {}
    ours = (report.get("check") or {}).get("workflow_id") == workflow_id and all(
        document.get(name) == value for name, value in input.document.identity_json().items()
    )
    return report if ours else None


def _conflict(exc: ResultConflictError) -> ApplicationError:
    """Something other than this check wrote a report here (the report's bytes follow from
    the chunk files and the check's inputs): retrying cannot help."""
    return ApplicationError(
        f"{exc}: it was not written by this check. Move it away, or check the document "
        "again with `docpipe reprocess`, which writes under a new prefix.",
        {"attempt": activity.info().attempt},
        type="result_conflict",
        non_retryable=True,
    )


def _summary_from_state(state: dict[str, Any] | None) -> PageSummary | None:
    """The page summary ``check_pages`` handed on, or None to read the chunks instead."""
    if state is None:
        return None
    try:
        return PageSummary.from_state(state)
    except (ValueError, TypeError, KeyError) as exc:
        log.warning("unusable page summary (%r): reading the chunks instead", exc)
        return None
