"""Reports in tests: every one the suite writes is checked against the shipped JSON Schema."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from aiokafka import ConsumerRecord

from infra.clients import topic_from_start
from infra.settings import Settings
from pipeline.check.activities import inspection_of
from pipeline.check.page_summary import PageSummary
from pipeline.check.report import build_report
from pipeline.models import CheckPlan
from pipeline.models import DocumentRef
from pipeline.pdf.document_checks import DocumentFacts
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import open_pdf
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.page_checks import check_pages
from pipeline.policy import VerdictPolicy
from tests.support.feature_pdfs import SEEDED

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"


@cache
def _validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def assert_valid_report(report: dict[str, Any] | bytes) -> dict[str, Any]:
    """Validate a report (a dict, or the bytes written to S3) and return it as a dict."""
    loaded: dict[str, Any] = json.loads(report) if isinstance(report, bytes) else report
    errors = sorted(_validator().iter_errors(loaded), key=lambda e: list(e.absolute_path))
    if errors:
        details = "\n".join(f"  {list(e.absolute_path)}: {e.message}" for e in errors[:10])
        raise AssertionError(f"report does not match {SCHEMA_PATH.name}:\n{details}")
    return loaded


def report_of_file(path: Path, policy: VerdictPolicy | None = None) -> dict[str, Any]:
    """Check a local PDF as the pipeline does (without Temporal or S3) and return its
    validated report: inspect, check every page, fold, build."""
    facts = inspect_document(path)
    results = [] if facts.problem else check_pages(open_pdf(path), 1, facts.page_count)
    return report_of_results(path, facts, results, policy)


def report_of_results(
    path: Path,
    facts: DocumentFacts,
    results: list[PageResult],
    policy: VerdictPolicy | None = None,
) -> dict[str, Any]:
    """The validated report of a document whose facts and page results are known."""
    plan = CheckPlan(chunk_pages=50, heartbeat_timeout_s=30.0, policy=policy or VerdictPolicy())
    inspection = inspection_of(facts, size=path.stat().st_size, plan=plan)
    summary = PageSummary()
    for result in results:
        summary.add(result.to_json())
    document = DocumentRef(bucket="documents", key=path.name, version_id="v1")
    report = build_report(
        document=document,
        inspection=inspection,
        summary=summary,
        chunk_keys=[],
        chunk_pages=plan.chunk_pages,
        results_prefix=f"results/{document.document_id}",
        workflow_id=document.workflow_id,
    )
    return assert_valid_report(json.loads(json.dumps(report)))


async def read_topic(
    settings: Settings, topic: str, *, count: int, timeout_s: float = 60.0, settle_s: float = 1.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message of ``topic`` from its start, once at least ``count`` are there.

    Reads on for ``settle_s`` more, so that a test asserting "exactly one" also sees an
    unexpected second. A throwaway consumer: no group, nothing committed.
    """
    async with topic_from_start(settings.kafka, topic) as (consumer, _):
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout_s
        settled: float | None = None
        while settled is None or time.monotonic() < settled:
            assert time.monotonic() < deadline, f"{len(records)} of {count} on {topic!r}"
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
            if settled is None and len(records) >= count:
                settled = time.monotonic() + settle_s
        return records


def seeded_found(*types: str) -> dict[str, Any]:
    """The ``total`` and ``by_type`` of a report's block of sensitive data outside the
    pages (``checks.sensitive_data.metadata``, ``attachments``...) that holds the first
    ``SEEDED`` value of each of ``types`` once, masked."""
    return {
        "total": len(types),
        "by_type": {kind: {"count": 1, "samples": [SEEDED[kind][0][1]]} for kind in types},
    }
