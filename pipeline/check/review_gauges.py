"""The review queue's gauges: how many checks wait for a decision, by reason, and how long
the oldest has waited.

A waiting check is a workflow that runs no code while it waits, so no activity can count
it: the gauges come from Temporal visibility, looked at periodically by each worker
process that runs workflows (it has the client and the metrics endpoint already). Every
such worker reports the same numbers: aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from datetime import UTC
from datetime import datetime

from temporalio.client import Client

from pipeline.check.metrics import PipelineMetrics
from pipeline.review_visibility import WaitingReview
from pipeline.review_visibility import list_waiting

log = logging.getLogger(__name__)


def record_queue(metrics: PipelineMetrics, waiting: list[WaitingReview], now: datetime) -> None:
    """Set the gauges from one listing of the waiting checks (a reason no longer waiting
    drops to 0, not to its last value)."""
    by_reason = collections.Counter(reason for item in waiting for reason in item.reasons)
    known = {labels[0] for labels in _label_values(metrics)}
    for reason in known | set(by_reason):
        metrics.review_waiting.labels(reason).set(by_reason.get(reason, 0))
    oldest = max((item.age_s(now) for item in waiting), default=0.0)
    metrics.review_oldest_seconds.set(oldest)


def _label_values(metrics: PipelineMetrics) -> list[tuple[str, ...]]:
    return [
        tuple(sample.labels.values())
        for family in metrics.review_waiting.collect()
        for sample in family.samples
    ]


async def watch_review_queue(client: Client, metrics: PipelineMetrics, interval_s: float) -> None:
    """Refresh the gauges every ``interval_s`` until cancelled; a failed look is logged
    and the gauges keep their last values until the next one."""
    while True:
        try:
            record_queue(metrics, await list_waiting(client), datetime.now(UTC))
        except Exception as exc:  # visibility unavailable: try again next time
            log.warning("could not count the checks waiting for review: %r", exc)
        await asyncio.sleep(interval_s)
