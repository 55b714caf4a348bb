"""The intake's metrics: counters and lag read at scrape time, and two latencies.

The intake keeps plain counters (``IntakeCounters``) and its partitions' offsets; the
collector turns them into metrics whenever ``/metrics`` is scraped. The two histograms
(how old an event is when its check starts, how long a message waited on retries) are
observed as it goes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Protocol

from prometheus_client import CollectorRegistry, Histogram
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


# From milliseconds (a busy broker's fetch) to hours (an outage the intake waited out).
_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class IntakeMetrics:
    """The intake's latency histograms, in ``registry`` (default: a private one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.event_age = Histogram(
            "docpipe_event_age_seconds",
            "How old an upload event is when its check starts: from the Kafka record's "
            "timestamp to the workflow start.",
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )
        self.retry_wait = Histogram(
            "docpipe_intake_retry_wait_seconds",
            "Time one message waited on retries of one step (an S3 HEAD, a workflow start, a "
            "dead-letter write), observed when the step ends.",
            ["step"],
            buckets=_SECONDS_BUCKETS,
            registry=registry,
        )


class _Intake(Protocol):
    @property
    def counters(self) -> IntakeCounters: ...

    @property
    def in_flight(self) -> int: ...

    def lag(self) -> Mapping[tuple[str, int], int]: ...


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
        lag = GaugeMetricFamily(
            "docpipe_consumer_lag",
            "Messages of an assigned partition not yet committed: its high watermark minus "
            "the committed offset (0 at least).",
            labels=["topic", "partition"],
        )
        for (topic, partition), behind in sorted(self._intake.lag().items()):
            lag.add_metric([topic, str(partition)], behind)
        yield lag
