"""Continue an upstream trace: the W3C ``traceparent`` header of an upload event.

The intake handles each event inside a span whose parent is the event's ``traceparent``
(when it has one). With tracing on, the Temporal client's interceptor carries that span
into the workflow start, and from there into the workflow and its activities.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from collections.abc import Sequence
from typing import Any

from opentelemetry import propagate
from opentelemetry import trace

_TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
_tracer = trace.get_tracer("docpipe.consumers")


def trace_carrier(headers: Sequence[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """The W3C trace-context headers of a Kafka record, as a text carrier."""
    carrier: dict[str, str] = {}
    for name, value in headers or ():
        if name.lower() in _TRACE_HEADERS and value:
            try:
                carrier[name.lower()] = value.decode("ascii")
            except UnicodeDecodeError:
                continue  # a broken header starts a new trace instead
    return carrier


@contextlib.contextmanager
def upload_event_span(record: Any) -> Iterator[None]:
    """Handle ``record`` (an aiokafka record) inside a span continuing its trace."""
    parent = propagate.extract(trace_carrier(record.headers))
    with _tracer.start_as_current_span(
        "docpipe.intake upload event",
        context=parent,
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.kafka.destination.partition": record.partition,
            "messaging.kafka.message.offset": record.offset,
        },
    ):
        yield
