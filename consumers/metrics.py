"""The intake's counters as Prometheus metrics, read at scrape time.

The intake keeps plain counters (``IntakeCounters``); this collector turns them into
metrics whenever ``/metrics`` is scraped, so the intake's code knows nothing of Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from consumers.intake import IntakeCounters

_COUNTERS = {
    "consumed": "Upload events received (redeliveries count again).",
    "started": "Document checks started (new workflows).",
    "deduped": "Starts that found the check already running or finished.",
    "skipped": "S3 notification records skipped (test events, removals).",
    "retries": "Temporal, S3 and dead-letter write failures retried.",
}


class _Intake(Protocol):
    @property
    def counters(self) -> IntakeCounters: ...

    @property
    def in_flight(self) -> int: ...


class IntakeCollector(Collector):
    """Exports one intake's counters as ``docpipe_intake_*`` metrics."""

    def __init__(self, intake: _Intake) -> None:
        self._intake = intake

    def collect(self) -> Iterator[Metric]:
        """The counters as they are now: read at scrape time, never copied."""
        counters = self._intake.counters
        for name, help_text in _COUNTERS.items():
            yield CounterMetricFamily(
                f"docpipe_intake_{name}", help_text, value=getattr(counters, name)
            )
        dead = CounterMetricFamily(
            "docpipe_intake_dead_lettered",
            "Upload events written to the dead-letter topic, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(counters.by_reason.items()):
            dead.add_metric([reason], count)
        yield dead
        yield GaugeMetricFamily(
            "docpipe_intake_in_flight",
            "Upload events fetched and not finished yet.",
            value=self._intake.in_flight,
        )
