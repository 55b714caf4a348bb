"""Priority lanes and fairness keys: what a check is started with."""

from __future__ import annotations

import pytest
from temporalio.common import Priority

from consumers.events import Parsed
from consumers.events import parse_upload_event
from infra.check_requests import intake_lane
from infra.check_requests import recheck_lane
from infra.settings import Settings
from infra.settings import SettingsError
from infra.settings import TemporalSettings
from infra.settings_env import load_settings
from pipeline.lanes import MAX_FAIRNESS_KEY_BYTES
from pipeline.lanes import check_fairness_mode
from pipeline.lanes import describe_lane
from pipeline.lanes import event_field
from pipeline.lanes import fairness_key
from pipeline.models import DocumentRef

DOC = DocumentRef(bucket="documents", key="acme/2026/a.pdf", version_id="v1")


def test_default_fairness_key_is_bucket_and_first_key_segment() -> None:
    assert fairness_key(DOC, "prefix") == "documents/acme"
    assert fairness_key(DocumentRef(bucket="b", key="top.pdf", etag="e"), "prefix") == "b"
    assert fairness_key(DOC, "bucket") == "documents"
    assert fairness_key(DOC, "none") is None


def test_event_field_wins_when_the_event_has_it() -> None:
    assert event_field("field:tenant") == "tenant"
    assert event_field("prefix") is None
    assert fairness_key(DOC, "field:tenant", tenant="globex") == "globex"
    assert fairness_key(DOC, "field:tenant") == "documents/acme"


def test_fairness_keys_fit_temporal_limit_and_hide_hashed_keys() -> None:
    long = DocumentRef(bucket="documents", key="x" * 300 + "/a.pdf", version_id="v")
    key = fairness_key(long, "prefix")
    assert key is not None and len(key.encode()) <= MAX_FAIRNESS_KEY_BYTES
    assert key != fairness_key(
        DocumentRef(bucket="documents", key="x" * 299 + "y/a", etag="e"), "prefix"
    )
    hashed = fairness_key(DOC, "prefix", hashed=True)
    assert hashed is not None and "acme" not in hashed and hashed.startswith("documents/sha256:")


def test_unknown_fairness_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        check_fairness_mode("tenant")
    with pytest.raises(ValueError):
        check_fairness_mode("field:")
    with pytest.raises(SettingsError, match="FAIRNESS_KEY"):
        load_settings({"DOCPIPE_TEMPORAL_FAIRNESS_KEY": "tenant"})
    with pytest.raises(SettingsError, match="INTAKE_PRIORITY"):
        TemporalSettings(intake_priority=0)


def test_intake_goes_before_rechecks_by_default() -> None:
    # Keys in clear, to read the share (with encryption they are hashed by default).
    settings = Settings(temporal=TemporalSettings(hash_object_keys=False))
    intake, recheck = intake_lane(settings, DOC), recheck_lane(settings, DOC)
    assert intake == Priority(priority_key=1, fairness_key="documents/acme")
    assert recheck == Priority(priority_key=5, fairness_key="documents/acme")
    assert recheck_lane(settings, DOC, priority=2).priority_key == 2
    configured = load_settings(
        {"DOCPIPE_TEMPORAL_INTAKE_PRIORITY": "2", "DOCPIPE_TEMPORAL_RECHECK_PRIORITY": "4"}
    )
    assert intake_lane(configured, DOC).fairness_key == fairness_key(DOC, "prefix", hashed=True)
    assert intake_lane(configured, DOC).priority_key == 2
    assert recheck_lane(configured, DOC).priority_key == 4
    assert describe_lane(intake) == "priority 1, share documents/acme"


def test_upload_event_field_names_the_tenant() -> None:
    event = b'{"bucket": "documents", "key": "a.pdf", "version_id": "v", "tenant": "globex"}'
    parsed = parse_upload_event(event, allowed_buckets=["documents"], tenant_field="tenant")
    assert isinstance(parsed, Parsed) and parsed.uploads[0].tenant == "globex"
    plain = parse_upload_event(event, allowed_buckets=["documents"])
    assert isinstance(plain, Parsed) and plain.uploads[0].tenant is None
