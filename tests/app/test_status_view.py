"""docpipe status and docpipe list: the visibility query and the --since values."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest

from app.status_view import list_query
from app.status_view import parse_since
from pipeline.labels import object_key_value


def test_list_query_combines_filters_and_quotes_values() -> None:
    since = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    query = list_query(status="review", bucket="docs", since=since, key="it's.pdf")
    assert query == (
        "WorkflowType = 'DocumentCheckWorkflow' AND DocpipeStatus = 'review' AND "
        "DocpipeBucket = 'docs' AND DocpipeObjectKey = 'it''s.pdf' AND "
        "StartTime >= '2026-05-01T12:30:00Z'"
    )
    hashed = list_query(key="a.pdf", hash_keys=True)
    assert hashed.endswith(f"DocpipeObjectKey = '{object_key_value('a.pdf', True)}'")


def test_since_takes_durations_and_times() -> None:
    now = datetime(2026, 5, 2, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 5, 1, 22, 30, tzinfo=UTC)
    assert parse_since("2d", now) == datetime(2026, 4, 30, tzinfo=UTC)
    assert parse_since("2026-04-01", now) == datetime(2026, 4, 1, tzinfo=UTC)
    assert parse_since("2026-04-01T10:00:00+02:00", now).hour == 10
    with pytest.raises(ValueError):
        parse_since("yesterday", now)
