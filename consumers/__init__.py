"""The Kafka intake: upload events in, one Temporal workflow start per document version out.

- ``events``: parse an event (native or S3 notification shape) into uploads, or a
  ``Rejected(reason, message)`` with a stable reason code.
- ``intake``: ``UploadIntake`` and ``run_intake`` (``docpipe consume``): concurrent,
  idempotent starts, dead letters, offset commits only below finished work, backoff and
  paused fetching while Temporal, S3 or the broker fail.
- ``offsets``: ``PartitionOffsets``, the commit position of a partition whose messages
  finish out of order.
- ``dead_letters``: the dead-letter headers, and ``docpipe dlq list`` / ``replay``.
- ``backoff``: capped exponential backoff with jitter.
- ``metrics``: ``IntakeCollector``, the intake's counters as Prometheus metrics.
- ``tracing``: each event handled in a span continuing its ``traceparent`` header.

Nothing here knows about PDFs.
"""
