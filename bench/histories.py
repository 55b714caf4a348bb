"""What a check's workflow history says about its time: phases, the report, activities."""

from __future__ import annotations

import dataclasses
import statistics
from typing import Any

from temporalio.client import WorkflowHistory

# The activities whose completion means the report is written.
REPORT_ACTIVITIES = ("finalize", "check_document")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclasses.dataclass(frozen=True)
class CheckTimes:
    """Where the time of one check went, in seconds from the upload event being sent.

    Read from the workflow's history (the server's clock, the same machine's): ``report``
    is when ``finalize`` completed, i.e. the report was written, and is what the benchmark
    times ("event to report"); ``done`` also includes the results event.
    """

    started: float  # the intake started the workflow
    inspected: float  # check_document completed (the document inspected)
    pages_started: float  # check_pages began its (last) attempt
    pages_checked: float  # check_pages completed
    report: float
    done: float

    def describe(self) -> str:
        return (
            f"intake {self.started:.2f} s, inspect {self.inspected - self.started:.2f} s, "
            f"check_pages {self.pages_checked - self.pages_started:.2f} s, report at "
            f"{self.report:.2f} s, workflow done at {self.done:.2f} s"
        )


def check_times(history: WorkflowHistory, published_at: float) -> CheckTimes:
    """The phases of one check from its workflow history (see :class:`CheckTimes`)."""
    scheduled: dict[int, str] = {}
    started: dict[str, float] = {}
    completed: dict[str, float] = {}
    workflow: dict[str, float] = {}
    for event in history.events:
        at = event.event_time.seconds + event.event_time.nanos / 1e9 - published_at
        kind = event.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            attributes = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attributes.activity_type.name
        elif kind == "activity_task_started_event_attributes":
            name = scheduled[event.activity_task_started_event_attributes.scheduled_event_id]
            started[name] = at
        elif kind == "activity_task_completed_event_attributes":
            name = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            completed[name] = at
        elif kind in (
            "workflow_execution_started_event_attributes",
            "workflow_execution_completed_event_attributes",
        ):
            workflow[kind] = at
    inspected = completed["check_document"]
    return CheckTimes(
        started=workflow["workflow_execution_started_event_attributes"],
        inspected=inspected,
        # A document of one chunk is checked and reported by check_document alone.
        pages_started=started.get("check_pages", inspected),
        pages_checked=completed.get("check_pages", inspected),
        report=completed.get("finalize", inspected),
        done=workflow["workflow_execution_completed_event_attributes"],
    )


def phase_medians(timings: list[CheckTimes]) -> dict[str, float]:
    phases = {
        "intake": [t.started for t in timings],
        "inspect": [t.inspected - t.started for t in timings],
        "check_pages": [t.pages_checked - t.pages_started for t in timings],
        "report": [t.report for t in timings],
        "done": [t.done for t in timings],
    }
    return {name: round(statistics.median(values), 3) for name, values in phases.items()}


def _at(event: Any) -> float:
    return float(event.event_time.seconds + event.event_time.nanos / 1e9)


def report_time(history: WorkflowHistory) -> float:
    """Epoch seconds at which the report was written: the completion of the activity that
    writes it (the workflow's own completion for the floor, which writes nothing)."""
    scheduled: dict[int, str] = {}
    for event in history.events:
        kind = event.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            scheduled[event.event_id] = (
                event.activity_task_scheduled_event_attributes.activity_type.name
            )
        elif kind == "activity_task_completed_event_attributes":
            attributes = event.activity_task_completed_event_attributes
            if scheduled.get(attributes.scheduled_event_id) in REPORT_ACTIVITIES:
                return _at(event)
        elif kind == "workflow_execution_completed_event_attributes":
            return _at(event)
    raise ValueError(f"no report in the history of {history.workflow_id}")


def activity_count(history: WorkflowHistory) -> int:
    return sum(
        1
        for event in history.events
        if event.WhichOneof("attributes") == "activity_task_scheduled_event_attributes"
    )


def latency_figures(began: float, ends: list[float]) -> dict[str, Any]:
    latencies = [end - began for end in ends]
    return {
        "documents_per_s": round(len(ends) / max(latencies), 2),
        "p50_s": round(percentile(latencies, 0.5), 2),
        "p95_s": round(percentile(latencies, 0.95), 2),
        "seconds": round(max(latencies), 2),
    }
