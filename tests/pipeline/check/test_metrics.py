"""The worker's own metrics: pages, page errors, verdicts."""

from __future__ import annotations

import pytest

from pipeline.check.metrics import PipelineMetrics
from tests.support.metrics import metric_samples


def test_pipeline_metrics_count_pages_errors_and_verdicts() -> None:
    metrics = PipelineMetrics()
    pages: list[dict[str, object]] = [
        {"page": 1},
        {"page": 2, "error_type": "timeout"},
        {"page": 3, "error_type": None},
    ]
    metrics.record_range(pages, 0.3)
    metrics.record_verdict("review", ["blank_pages", "needs_ocr"])
    from prometheus_client import generate_latest

    samples = metric_samples(generate_latest(metrics.registry).decode())
    assert samples[("docpipe_pages_checked_total", ())] == 3
    assert samples[("docpipe_page_check_seconds_count", ())] == 3
    assert samples[("docpipe_page_check_seconds_sum", ())] == pytest.approx(0.3)
    assert samples[("docpipe_page_errors_total", (("error_type", "timeout"),))] == 1
    assert samples[("docpipe_verdicts_total", (("verdict", "review"),))] == 1
    reasons = (("reason", "needs_ocr"), ("verdict", "review"))
    assert samples[("docpipe_verdict_reasons_total", reasons)] == 1
    assert samples[("docpipe_documents_in_flight", (("step", "check_pages"),))] == 0
