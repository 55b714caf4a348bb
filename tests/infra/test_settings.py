"""Settings: defaults, precedence, conversions, what is refused, round trips and display."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable

import pytest

from infra.settings import CodecSettings
from infra.settings import KafkaSettings
from infra.settings import OcrSettings
from infra.settings import PipelineSettings
from infra.settings import PolicySettings
from infra.settings import ReviewSettings
from infra.settings import S3Settings
from infra.settings import Settings
from infra.settings import SettingsError
from infra.settings import TelemetrySettings
from infra.settings import TemporalSettings
from infra.settings import env_name
from infra.settings_env import add_arguments
from infra.settings_env import describe
from infra.settings_env import load_settings
from infra.settings_env import setting_names
from infra.settings_env import to_env
from tests.support.settings import production_like


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


# --- defaults ----------------------------------------------------------------------------


def test_defaults_point_at_the_embedded_stack() -> None:
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.temporal.address == "127.0.0.1:7233"
    assert settings.s3.endpoint_url == "http://127.0.0.1:4566"
    assert settings.s3.documents_buckets == ("documents",)
    assert settings.temporal.tls is False
    assert settings.kafka.sasl_password is None


def test_unrelated_environment_variables_are_ignored() -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": "elsewhere:9092", "DOCPIPE_NO_SUCH_SETTING": "x"}
    assert load_settings(env=env) == Settings()


def test_every_setting_has_a_flag_and_an_env_variable() -> None:
    rows = setting_names()
    envs = {env for env, _, _, _ in rows}
    assert "DOCPIPE_KAFKA_GROUP_ID" in envs
    assert "DOCPIPE_S3_DOCUMENTS_BUCKETS" in envs
    flags = {flag for _, flag, _, _ in rows}
    assert "--kafka-group-id" in flags
    assert "--temporal-api-key" in flags
    secrets = {env for env, _, _, is_secret in rows if is_secret}
    assert secrets == {
        "DOCPIPE_KAFKA_SASL_PASSWORD",
        "DOCPIPE_TEMPORAL_API_KEY",
        "DOCPIPE_S3_SECRET_ACCESS_KEY",
        "DOCPIPE_CODEC_KEYS",
        "DOCPIPE_CODEC_SERVER_TOKEN",
        "DOCPIPE_TELEMETRY_METRICS_TOKEN",
    }


# --- precedence --------------------------------------------------------------------------


def test_cli_flag_beats_env_beats_default() -> None:
    env = {"DOCPIPE_KAFKA_GROUP_ID": "from-env", "DOCPIPE_KAFKA_CLIENT_ID": "env-client"}
    args = _parse("--kafka-group-id", "from-cli")
    settings = load_settings(env=env, args=args)
    assert settings.kafka.group_id == "from-cli"  # flag over env
    assert settings.kafka.client_id == "env-client"  # env over default
    assert settings.kafka.uploads_topic == "document-uploads"  # default


def test_env_beats_default_without_args() -> None:
    settings = load_settings(env={"DOCPIPE_TEMPORAL_NAMESPACE": "prod"})
    assert settings.temporal.namespace == "prod"


def test_unset_flags_fall_through_to_env() -> None:
    args = _parse()
    settings = load_settings(env={"DOCPIPE_S3_REGION": "eu-west-1"}, args=args)
    assert settings.s3.region == "eu-west-1"


def test_cli_flag_is_converted_like_env() -> None:
    args = _parse("--pipeline-chunk-pages", "7", "--temporal-tls", "yes")
    settings = load_settings(env={"DOCPIPE_PIPELINE_CHUNK_PAGES": "99"}, args=args)
    assert settings.pipeline.chunk_pages == 7
    assert settings.temporal.tls is True


# --- conversions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "read", "expected"),
    [
        ("DOCPIPE_KAFKA_SESSION_TIMEOUT_MS", "45000", lambda s: s.kafka.session_timeout_ms, 45000),
        (
            "DOCPIPE_PIPELINE_HEARTBEAT_TIMEOUT_S",
            "2.5",
            lambda s: s.pipeline.heartbeat_timeout_s,
            2.5,
        ),
        ("DOCPIPE_PIPELINE_POOL_SIZE", "3", lambda s: s.pipeline.pool_size, 3),
        (
            "DOCPIPE_REVIEW_OFF",
            "blank_pages,forms",
            lambda s: s.review.review_policy().off,
            ("blank_pages", "forms"),
        ),
        (
            "DOCPIPE_REVIEW_DEADLINE",
            "36h",
            lambda s: s.review.review_policy().deadline_s,
            36 * 3600.0,
        ),
        (
            "DOCPIPE_REVIEW_ON_DEADLINE",
            "reject",
            lambda s: s.review.review_policy().on_deadline,
            "reject",
        ),
    ],
)
def test_a_setting_is_read_from_its_variable_as_its_type(
    variable: str, raw: str, read: Callable[[Settings], object], expected: object
) -> None:
    value = read(load_settings(env={variable: raw}))
    assert value == expected and isinstance(value, type(expected))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        (" yes ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_bool_conversion(raw: str, expected: bool) -> None:
    assert load_settings(env={"DOCPIPE_TEMPORAL_TLS": raw}).temporal.tls is expected


def test_tuple_conversion_splits_on_commas() -> None:
    settings = load_settings(env={"DOCPIPE_S3_DOCUMENTS_BUCKETS": "a,b"})
    assert settings.s3.documents_buckets == ("a", "b")
    spaced = load_settings(env={"DOCPIPE_S3_DOCUMENTS_BUCKETS": " a , b ,, c "})
    assert spaced.s3.documents_buckets == ("a", "b", "c")


def test_optional_str_empty_means_none() -> None:
    settings = load_settings(
        env={"DOCPIPE_KAFKA_SASL_MECHANISM": "", "DOCPIPE_KAFKA_SASL_USERNAME": "svc"}
    )
    assert settings.kafka.sasl_mechanism is None
    assert settings.kafka.sasl_username == "svc"


def test_plain_str_empty_stays_empty() -> None:
    settings = load_settings(env={"DOCPIPE_S3_ENDPOINT_URL": ""})
    assert settings.s3.endpoint_url == ""


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("DOCPIPE_TEMPORAL_TLS", "maybe"),
        ("DOCPIPE_PIPELINE_CHUNK_PAGES", "fifty"),
        ("DOCPIPE_PIPELINE_GRACEFUL_SHUTDOWN_S", "soon"),
    ],
)
def test_a_value_not_of_its_type_is_refused_by_its_variable(variable: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=variable) as info:
        load_settings(env={variable: raw})
    assert raw in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_negative_number_of_concurrent_checks_is_refused() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_PIPELINE_MAX_CONCURRENT_CHECKS"):
        load_settings(env={"DOCPIPE_PIPELINE_MAX_CONCURRENT_CHECKS": "-1"})


def test_a_review_deadline_that_is_not_a_duration_is_refused() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_REVIEW_"):
        load_settings(env={"DOCPIPE_REVIEW_DEADLINE": "next week"})


def test_ocr_is_on_in_english_by_default_and_takes_languages_as_a_list() -> None:
    assert load_settings(env={}).ocr == OcrSettings(
        enabled=True, languages=("eng",), dpi=200, max_pixels=40_000_000
    )
    ocr = load_settings(env={"DOCPIPE_OCR_LANGUAGES": "eng, deu", "DOCPIPE_OCR_ENABLED": "false"})
    assert (ocr.ocr.languages, ocr.ocr.enabled) == (("eng", "deu"), False)


@pytest.mark.parametrize(
    "env",
    [
        {"DOCPIPE_OCR_LANGUAGES": ""},
        {"DOCPIPE_OCR_LANGUAGES": "eng,../etc"},
        {"DOCPIPE_OCR_DPI": "10"},
        {"DOCPIPE_OCR_MAX_PIXELS": "100"},
        {"DOCPIPE_PIPELINE_OCR_TIMEOUT_S": "0"},
        {"DOCPIPE_POLICY_OCR_MIN_CONFIDENCE": "101"},
    ],
)
def test_each_unworkable_ocr_setting_is_refused_by_name(env: dict[str, str]) -> None:
    # Policy settings are named as the policy's (DOCPIPE_POLICY_*: ocr_min_confidence).
    (name,) = env
    with pytest.raises(SettingsError, match="(?i)" + name.replace("POLICY_", "POLICY_.*")):
        load_settings(env=env)


@pytest.mark.parametrize(
    "env",
    [
        {"DOCPIPE_KAFKA_MAX_IN_FLIGHT": "0"},
        {"DOCPIPE_KAFKA_MAX_MESSAGE_BYTES": "0"},
        {"DOCPIPE_KAFKA_RETRY_INITIAL_S": "0"},
        {"DOCPIPE_KAFKA_RETRY_INITIAL_S": "5", "DOCPIPE_KAFKA_RETRY_MAX_S": "1"},
        {"DOCPIPE_KAFKA_COMMIT_INTERVAL_S": "-1"},
        {"DOCPIPE_KAFKA_SHUTDOWN_TIMEOUT_S": "-1"},
        {"DOCPIPE_KAFKA_STATS_INTERVAL_S": "0"},
        {"DOCPIPE_KAFKA_PERMANENT_FAILURE_ATTEMPTS": "0"},
    ],
)
def test_each_unworkable_intake_setting_is_refused_by_name(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=list(env)[-1]):
        load_settings(env=env)


def test_every_unworkable_intake_setting_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as error:
        KafkaSettings(max_in_flight=0, stats_interval_s=0)
    assert "DOCPIPE_KAFKA_MAX_IN_FLIGHT" in str(error.value)
    assert "DOCPIPE_KAFKA_STATS_INTERVAL_S" in str(error.value)


def test_a_setting_is_named_by_its_environment_variable() -> None:
    assert env_name("kafka", "group_id") == "DOCPIPE_KAFKA_GROUP_ID"
    assert {env_name("s3", "max_attempts"), env_name("telemetry", "log_format")} <= {
        env for env, _, _, _ in setting_names()
    }


def test_bad_int_from_a_flag_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_S3_MAX_ATTEMPTS"):
        load_settings(env={}, args=_parse("--s3-max-attempts", "many"))


# --- round trip and display --------------------------------------------------------------


def test_to_env_round_trips_through_load_settings() -> None:
    settings = production_like()
    assert settings != Settings()
    env = to_env(settings)
    assert all(name.startswith("DOCPIPE_") for name in env)
    assert env["DOCPIPE_S3_DOCUMENTS_BUCKETS"] == "inbox,archive"
    assert env["DOCPIPE_TEMPORAL_TLS"] == "true"
    assert load_settings(env=env) == settings


def test_to_env_round_trips_defaults() -> None:
    env = to_env(Settings())
    assert env["DOCPIPE_KAFKA_SASL_PASSWORD"] == ""
    assert load_settings(env=env) == Settings()


def test_to_env_covers_every_field() -> None:
    env = to_env(Settings())
    fields = sum(
        len(dataclasses.fields(section))
        for section in (
            KafkaSettings,
            TemporalSettings,
            S3Settings,
            PipelineSettings,
            OcrSettings,
            PolicySettings,
            ReviewSettings,
            TelemetrySettings,
            CodecSettings,
        )
    )
    assert len(env) == fields
    assert set(env) == {env_name for env_name, _, _, _ in setting_names()}


def test_describe_masks_secrets_only() -> None:
    shown = dict(describe(production_like()))
    assert shown["DOCPIPE_KAFKA_SASL_PASSWORD"] == "***"
    assert shown["DOCPIPE_TEMPORAL_API_KEY"] == "***"
    assert shown["DOCPIPE_S3_SECRET_ACCESS_KEY"] == "***"
    rendered = " ".join(shown.values())
    for secret in ("kafka-s3cret", "temporal-key", "aws-s3cret"):
        assert secret not in rendered
    # Ordinary values are shown as they are, including non-secret credentials' names.
    assert shown["DOCPIPE_KAFKA_SASL_USERNAME"] == "svc-docpipe"
    assert shown["DOCPIPE_S3_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    assert shown["DOCPIPE_KAFKA_GROUP_ID"] == "prod-intake"
    assert shown["DOCPIPE_PIPELINE_CHUNK_PAGES"] == "40"
