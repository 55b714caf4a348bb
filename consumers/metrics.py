"""The intake's metrics: counters and lag read at scrape time, and two latencies.

The intake keeps plain counters (``IntakeCounters``) and its partitions' offsets; the
collector turns them into metrics whenever ``/metrics`` is scraped. The two histograms
(how old an event is when its check starts, how long a message waited on retries) are
observed as it goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from typing import Any
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.core import Metric
from prometheus_client.registry import Collector


def _counter(help_text: str) -> Any:
    # The help text is the metric's: one place says what each counter counts.
    return field(default=0, metadata={"help": help_text})


@dataclass(kw_only=True)
class IntakeCounters:
    """What the intake has done since it started (a process-local view for metrics)."""

    consumed: int = _counter("Upload events received (redeliveries count again).")
    started: int = _counter("Document checks started (new workflows).")
    # This includes, rarely, a start whose first attempt timed out after creating the
    # workflow and was retried.
    deduped: int = _counter("Starts that found the check already running or finished.")
    skipped: int = _counter("S3 notification records skipped (test events, removals).")
    dead_lettered: int = _counter("Upload events written to the dead-letter topic, by reason.")
    retries: int = _counter("Temporal, S3 and dead-letter write failures retried.")
    by_reason: dict[str, int] = field(default_factory=dict)

    def totals(self) -> dict[str, int]:
        """The counters without the per-reason breakdown."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "by_reason"}

    def dead_lettered_for(self, reason: str) -> None:
        """Count one message written to the dead-letter topic for ``reason``."""
        self.dead_lettered += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1

    def __str__(self) -> str:
        text = " ".join(f"{name}={value}" for name, value in self.totals().items())
        if self.by_reason:
            reasons = ",".join(f"{r}:{n}" for r, n in sorted(self.by_reason.items()))
            text += f" by_reason={reasons}"
        return text


_HELP = {f.name: f.metadata["help"] for f in fields(IntakeCounters) if "help" in f.metadata}


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
        for name, value in counters.totals().items():
            if name != "dead_lettered":
                yield CounterMetricFamily(f"docpipe_intake_{name}", _HELP[name], value=value)
        dead = CounterMetricFamily(
            "docpipe_intake_dead_lettered", _HELP["dead_lettered"], labels=["reason"]
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
