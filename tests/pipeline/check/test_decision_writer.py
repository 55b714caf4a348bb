"""decision.json: written once beside report.json, counted once, never overwritten."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pipeline.check.decision_writer import DecisionWriter
from pipeline.check.decision_writer import decision_key
from pipeline.check.metrics import PipelineMetrics
from pipeline.check.review_gauges import record_queue
from pipeline.models import WriteDecisionInput
from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision
from pipeline.review import ReviewOutcome
from pipeline.review_visibility import WaitingReview
from tests.support.activities import RESULTS

REPORT_KEY = "results/documents/a.pdf@v1/report.json"
SCHEMA = Path(__file__).resolve().parents[3] / "docs" / "decision.schema.json"


def _outcome(**decision: Any) -> ReviewOutcome:
    taken = ReviewDecision(
        decision_id="d-1", action=ReviewAction.APPROVE, reviewer="ana", note="fine"
    )
    return ReviewOutcome(
        document_id="documents/a.pdf@v1",
        decision=dataclasses.replace(taken, **decision),
        final_verdict="pass",
        report_verdict="review",
        report_reasons=["blank_pages"],
        decided_at="2026-01-02T03:04:05+00:00",
        waited_s=90.0,
        decision_bucket=RESULTS,
        decision_key=decision_key(REPORT_KEY),
    )


def test_the_decision_goes_beside_the_report() -> None:
    assert decision_key(REPORT_KEY) == "results/documents/a.pdf@v1/decision.json"


async def test_a_decision_is_written_once_and_counted_once(s3: Any) -> None:
    metrics = PipelineMetrics()
    writer = DecisionWriter(s3=s3, metrics=metrics)
    run = ActivityEnvironment().run
    outcome = _outcome()
    assert await run(writer.write_decision, WriteDecisionInput(outcome=outcome)) is True
    # A retried write of the same decision succeeds without writing or counting again.
    assert await run(writer.write_decision, WriteDecisionInput(outcome=outcome)) is False
    stored = json.loads(s3.get_object(Bucket=RESULTS, Key=outcome.decision_key)["Body"].read())
    assert stored["schema_version"] == 1
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(stored)
    assert stored["decision"]["reviewer"] == "ana" and stored["final_verdict"] == "pass"
    assert (
        metrics.registry.get_sample_value("docpipe_review_decisions_total", {"action": "approve"})
        == 1
    )
    assert metrics.registry.get_sample_value("docpipe_review_decision_seconds_count") == 1


async def test_another_decision_never_replaces_the_stored_one(s3: Any) -> None:
    writer = DecisionWriter(s3=s3)
    run = ActivityEnvironment().run
    await run(writer.write_decision, WriteDecisionInput(outcome=_outcome()))
    with pytest.raises(ApplicationError) as refused:
        await run(writer.write_decision, WriteDecisionInput(outcome=_outcome(reviewer="bo")))
    assert refused.value.type == "result_conflict" and refused.value.non_retryable


def test_the_queue_gauges_count_by_reason_and_drop_what_no_longer_waits() -> None:
    metrics = PipelineMetrics()
    now = datetime(2026, 1, 2, tzinfo=UTC)

    def waiting(reasons: list[str], age_s: float) -> WaitingReview:
        return WaitingReview(
            workflow_id="w",
            document_id="d",
            reasons=reasons,
            waiting_since=now - timedelta(seconds=age_s),
            deadline=None,
            overdue=False,
            page_count=1,
        )

    record_queue(
        metrics, [waiting(["blank_pages"], 60), waiting(["blank_pages", "needs_ocr"], 600)], now
    )
    sample = metrics.registry.get_sample_value
    assert sample("docpipe_review_waiting", {"reason": "blank_pages"}) == 2
    assert sample("docpipe_review_waiting", {"reason": "needs_ocr"}) == 1
    assert sample("docpipe_review_oldest_seconds") == 600
    record_queue(metrics, [waiting(["blank_pages"], 30)], now)
    assert sample("docpipe_review_waiting", {"reason": "needs_ocr"}) == 0
    assert sample("docpipe_review_oldest_seconds") == 30


def test_the_schema_refuses_a_rejection_without_a_reason() -> None:
    schema = json.loads(SCHEMA.read_text())
    stored = json.loads(json.dumps(dataclasses.asdict(_outcome(action="reject"))))
    stored["schema_version"] = 1
    assert not jsonschema.Draft202012Validator(schema).is_valid(stored)
    stored["decision"]["reject_reason"] = "illegible"
    assert jsonschema.Draft202012Validator(schema).is_valid(stored)
