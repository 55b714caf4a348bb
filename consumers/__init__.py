"""The Kafka intake: upload events in, one Temporal workflow start per document version out.

- ``events``: parse an event (native or S3 notification shape) into uploads, or a
  ``Rejected(reason, message)`` with a stable reason code.
- ``intake``: ``UploadIntake`` and ``run_intake`` (``docpipe consume``): the loop that
  fetches, works on messages concurrently, commits offsets only below finished work,
  pauses fetching while Temporal, S3 or the broker fail, and follows rebalances.
- ``handling``: ``UploadHandler``, one message: its documents identified and their checks
  started idempotently (``start_upload_check``), or its dead letter written.
- ``retry``: ``Retries``, one step of one message retried: outages waited out with backoff,
  refusals given up after a few tries as the message's dead letter.
- ``offsets``: ``PartitionOffsets``, the commit position of a partition whose messages
  finish out of order.
- ``dead_letters``: the dead-letter headers, and how a dead letter reads back.
- ``metrics``: ``IntakeCounters`` and ``IntakeCollector``, the intake's counters as
  Prometheus metrics.
- ``tracing``: each event handled in a span continuing its ``traceparent`` header.

Nothing here knows about PDFs.
"""
