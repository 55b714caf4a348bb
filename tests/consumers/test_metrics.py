"""The intake's metrics: counters and lag read at scrape time, latencies as they go."""

from __future__ import annotations

import dataclasses

from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest

from consumers.metrics import IntakeCollector
from consumers.metrics import IntakeCounters
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
    intake.counters.dead_lettered_for("not_json")
    intake.in_flight = 2
    intake.behind = {("uploads", 0): 7, ("uploads", 2): 0}
    samples = metric_samples(generate_latest(registry).decode())
    assert samples[("docpipe_intake_consumed_total", ())] == 5
    assert samples[("docpipe_intake_started_total", ())] == 3
    assert samples[("docpipe_intake_deduped_total", ())] == 1
    assert samples[("docpipe_intake_dead_lettered_total", (("reason", "not_json"),))] == 1
    assert samples[("docpipe_intake_in_flight", ())] == 2
    assert samples[("docpipe_consumer_lag", (("partition", "0"), ("topic", "uploads")))] == 7
    assert samples[("docpipe_consumer_lag", (("partition", "2"), ("topic", "uploads")))] == 0


def test_every_counter_is_exported_with_its_help_text() -> None:
    registry = CollectorRegistry()
    registry.register(IntakeCollector(_Idle()))
    text = generate_latest(registry).decode()
    for name in IntakeCounters().totals():
        assert f"# HELP docpipe_intake_{name}_total " in text, name


def test_counters_read_as_one_line_of_name_value_pairs() -> None:
    counters = IntakeCounters(consumed=3, started=1)
    counters.dead_lettered_for("not_json")
    counters.dead_lettered_for("not_json")
    counters.dead_lettered_for("bad_key")
    assert str(counters) == (
        "consumed=3 started=1 deduped=0 skipped=0 dead_lettered=3 retries=0 "
        "by_reason=bad_key:1,not_json:2"
    )


class _Idle:
    counters = IntakeCounters()
    in_flight = 0

    def lag(self) -> dict[tuple[str, int], int]:
        return {}
