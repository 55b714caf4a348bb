"""The intake's metrics: counters and lag read at scrape time, latencies as they go."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry

from consumers.intake import IntakeCounters
from consumers.metrics import IntakeCollector
from tests.support.metrics import metric_samples


def test_intake_counters_are_read_at_scrape_time() -> None:
    @dataclasses.dataclass
    class Intake:
        counters: IntakeCounters
        in_flight: int = 0
        behind: dict[tuple[str, int], int] = dataclasses.field(default_factory=dict)

        def lag(self) -> dict[tuple[str, int], int]:
            return self.behind

    intake = Intake(IntakeCounters())
    registry = CollectorRegistry()
    registry.register(IntakeCollector(intake))
    intake.counters.consumed, intake.counters.started, intake.counters.deduped = 5, 3, 1
    intake.counters.dead_lettered = 1
    intake.counters.by_reason["not_json"] = 1
    intake.in_flight = 2
    intake.behind = {("uploads", 0): 7, ("uploads", 2): 0}
    from prometheus_client import generate_latest

    samples = metric_samples(generate_latest(registry).decode())
    assert samples[("docpipe_intake_consumed_total", ())] == 5
    assert samples[("docpipe_intake_started_total", ())] == 3
    assert samples[("docpipe_intake_deduped_total", ())] == 1
    assert samples[("docpipe_intake_dead_lettered_total", (("reason", "not_json"),))] == 1
    assert samples[("docpipe_intake_in_flight", ())] == 2
    assert samples[("docpipe_consumer_lag", (("partition", "0"), ("topic", "uploads")))] == 7
    assert samples[("docpipe_consumer_lag", (("partition", "2"), ("topic", "uploads")))] == 0
