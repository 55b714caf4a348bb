"""Trace context carried in from an upload event's Kafka headers."""

from __future__ import annotations

from consumers.tracing import trace_carrier


def test_trace_headers_of_a_kafka_record() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    headers = [("traceparent", parent.encode()), ("other", b"x"), ("tracestate", b"\xff")]
    assert trace_carrier(headers) == {"traceparent": parent}
    assert trace_carrier(None) == {}
