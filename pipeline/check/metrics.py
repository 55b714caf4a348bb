"""The worker's own Prometheus metrics (the Temporal SDK's come from its runtime).

Recorded by the activities of one worker process; exported when the process serves
metrics (``DOCPIPE_TELEMETRY_METRICS_PORT``). docs/OPERATIONS.md says which to alert on.
"""

from __future__ import annotations

import functools

from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram

# Pages take ~5 ms typically, seconds when hostile, the page timeout at most.
_PAGE_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Seconds for small documents on an idle stack up to hours for a backlog or an outage.
_REPORT_SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)

# A decision comes minutes to days (the default deadline: 7 days) after its report.
_DECISION_SECONDS_BUCKETS = (60, 300, 900, 3600, 4 * 3600, 86400, 2 * 86400, 7 * 86400, 14 * 86400)

# Activities that work on one document each (publish_result only sends an event).
STEPS = ("inspect", "check_pages", "finalize")


class PipelineMetrics:
    """docpipe's worker metrics, in ``registry`` (default: a private one, not exported).

    Counters count work done, so work redone after a crash or a retry counts again.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.registry = registry
        # Every metric of this worker goes to the same registry.
        counter = functools.partial(Counter, registry=registry)
        gauge = functools.partial(Gauge, registry=registry)
        histogram = functools.partial(Histogram, registry=registry)
        self.pages_checked = counter(
            "docpipe_pages_checked",
            "Pages checked in parser processes (pages checked again after a crash count again).",
        )
        self.page_check_seconds = histogram(
            "docpipe_page_check_seconds",
            "Wall time per page: a page range's time in the parser pool (waiting for a parser "
            "process included) divided by its pages.",
            buckets=_PAGE_SECONDS_BUCKETS,
        )
        self.page_errors = counter(
            "docpipe_page_errors",
            "Pages that could not be checked, by error type (timeout, crashed, memory, limit, "
            "parse errors).",
            ["error_type"],
        )
        self.chunk_writes = counter(
            "docpipe_chunk_writes",
            "Chunk files written to S3; outcome=already_there: a redone chunk found identical; "
            "outcome=kept_first: found stored with other results, which stand.",
            ["outcome"],
        )
        self.pages_from_store = counter(
            "docpipe_pages_from_store",
            "Pages of a resumed check taken from chunk files already stored, not parsed again.",
        )
        self.resumes = counter(
            "docpipe_check_resumes",
            "Page-checking attempts that resumed from a heartbeat checkpoint.",
        )
        self.verdicts = counter(
            "docpipe_verdicts",
            "Reports written, by verdict (a finalize retried after writing counts again).",
            ["verdict"],
        )
        self.verdict_reasons = counter(
            "docpipe_verdict_reasons",
            "Reasons of the verdicts of written reports (a document may have several).",
            ["verdict", "reason"],
        )
        self.upload_to_report = histogram(
            "docpipe_upload_to_report_seconds",
            "From an upload event's timestamp to its report written (first checks only; "
            "re-checks have no upload).",
            buckets=_REPORT_SECONDS_BUCKETS,
        )
        self.in_flight = gauge(
            "docpipe_documents_in_flight",
            "Documents this worker is working on right now, by step.",
            ["step"],
        )
        for step in STEPS:
            self.in_flight.labels(step)
        self.review_decisions = counter(
            "docpipe_review_decisions",
            "Review decisions written to decision.json, by action (approve, reject); "
            "counted once per decision, where it is written.",
            ["action"],
        )
        self.review_decision_seconds = histogram(
            "docpipe_review_decision_seconds",
            "From a report written to the reviewer's decision on it.",
            buckets=_DECISION_SECONDS_BUCKETS,
        )
        self.review_overdue = counter(
            "docpipe_review_overdue",
            "Checks whose review deadline passed (announced overdue on the results topic).",
        )
        self.review_waiting = gauge(
            "docpipe_review_waiting",
            "Checks waiting for a review decision, by review reason (a check may have "
            "several); from Temporal visibility, refreshed periodically.",
            ["reason"],
        )
        self.review_oldest_seconds = gauge(
            "docpipe_review_oldest_seconds",
            "How long the oldest check waiting for a review decision has waited (0: none).",
        )

    def record_range(self, pages: list[dict[str, object]], seconds: float) -> None:
        """One page range checked and written: its pages, their time and their errors."""
        if not pages:
            return
        self.pages_checked.inc(len(pages))
        per_page = seconds / len(pages)
        for page in pages:
            self.page_check_seconds.observe(per_page)
            error_type = page.get("error_type")
            if error_type:
                self.page_errors.labels(str(error_type)).inc()

    def record_verdict(self, verdict: str, reasons: list[str]) -> None:
        """One report written: its verdict and the reasons behind it."""
        self.verdicts.labels(verdict).inc()
        for reason in reasons:
            self.verdict_reasons.labels(verdict, reason).inc()
