"""Writing a check's ``decision.json`` exactly once, next to its ``report.json``.

The decision's bytes come from the workflow's accepted outcome only (its time is workflow
time), so a retried write carries the same bytes; different bytes mean another decision is
there already, which is never overwritten.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import TYPE_CHECKING
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pipeline.check.metrics import PipelineMetrics
from pipeline.check.results import ResultConflictError
from pipeline.check.results import ResultStore
from pipeline.check.results import to_json_bytes
from pipeline.models import WriteDecisionInput
from pipeline.review import DECISION_NAME
from pipeline.review import DECISION_SCHEMA_VERSION
from pipeline.review import ReviewOutcome

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)


def decision_key(report_key: str) -> str:
    """Where the decision on the report at ``report_key`` is written: beside it."""
    folder, _, _ = report_key.rpartition("/")
    return f"{folder}/{DECISION_NAME}" if folder else DECISION_NAME


def decision_json(outcome: ReviewOutcome) -> dict[str, Any]:
    """``decision.json``'s content (docs/REPORT.md, docs/decision.schema.json)."""
    return {"schema_version": DECISION_SCHEMA_VERSION, **dataclasses.asdict(outcome)}


def write_decision_once(s3: S3Client, outcome: ReviewOutcome) -> bool:
    """Write ``decision.json`` unless it already holds exactly this decision.

    Returns:
        True if this call wrote it, False if it was there already.

    Raises:
        ResultConflictError: another decision is stored there.
    """
    store = ResultStore(s3, outcome.decision_bucket)
    body = to_json_bytes(decision_json(outcome))
    return store.write_once(outcome.decision_key, body, "application/json")


class DecisionWriter:
    """The activity that records a reviewer's decision in S3.

    Args:
        s3: S3 client for the results bucket.
        metrics: where decisions are counted (once each: where they are written).
    """

    def __init__(self, *, s3: S3Client, metrics: PipelineMetrics | None = None) -> None:
        self._s3 = s3
        self._metrics = metrics or PipelineMetrics()

    @activity.defn(name="write_decision")
    async def write_decision(self, input: WriteDecisionInput) -> bool:
        """Write the decision once; True if this attempt wrote it."""
        outcome = input.outcome
        try:
            written = await asyncio.to_thread(write_decision_once, self._s3, outcome)
        except ResultConflictError as exc:
            raise ApplicationError(
                f"{exc}: a decision not taken by this check is stored there; it stands",
                type="result_conflict",
                non_retryable=True,
            ) from exc
        if written:
            action = str(outcome.decision.action)
            self._metrics.review_decisions.labels(action).inc()
            self._metrics.review_decision_seconds.observe(outcome.waited_s)
        log.info(
            "decision on %s: %s by %s%s",
            outcome.document_id,
            outcome.decision.action,
            outcome.decision.reviewer,
            "" if written else " (already written)",
            extra={"document_id": outcome.document_id},
        )
        return written
