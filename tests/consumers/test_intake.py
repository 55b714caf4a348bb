"""The intake's own settings are checked before it consumes anything."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from consumers.intake import check_intake_settings
from infra.settings import KafkaSettings, SettingsError


def test_sound_intake_settings_pass() -> None:
    check_intake_settings(KafkaSettings())


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"max_in_flight": 0}, "DOCPIPE_KAFKA_MAX_IN_FLIGHT"),
        ({"max_message_bytes": 0}, "DOCPIPE_KAFKA_MAX_MESSAGE_BYTES"),
        ({"retry_initial_s": 0}, "DOCPIPE_KAFKA_RETRY_INITIAL_S"),
        ({"retry_initial_s": 5, "retry_max_s": 1}, "DOCPIPE_KAFKA_RETRY_MAX_S"),
        ({"commit_interval_s": -1}, "DOCPIPE_KAFKA_COMMIT_INTERVAL_S"),
        ({"shutdown_timeout_s": -1}, "DOCPIPE_KAFKA_SHUTDOWN_TIMEOUT_S"),
        ({"stats_interval_s": 0}, "DOCPIPE_KAFKA_STATS_INTERVAL_S"),
    ],
)
def test_each_unworkable_setting_is_named(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        check_intake_settings(dataclasses.replace(KafkaSettings(), **changes))


def test_every_problem_is_named_at_once() -> None:
    bad = dataclasses.replace(KafkaSettings(), max_in_flight=0, stats_interval_s=0)
    with pytest.raises(SettingsError) as error:
        check_intake_settings(bad)
    assert "MAX_IN_FLIGHT" in str(error.value) and "STATS_INTERVAL_S" in str(error.value)
