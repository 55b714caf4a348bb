"""Settings: defaults, precedence, conversions, round trips, and what reaches the clients."""

from __future__ import annotations

import argparse
import dataclasses
import ssl
from pathlib import Path

import pytest
from temporalio.client import TLSConfig

from infra.clients import kafka_kwargs, s3_client, s3_kwargs, temporal_kwargs
from infra.settings import (
    CodecSettings,
    KafkaSettings,
    PipelineSettings,
    PolicySettings,
    ReviewSettings,
    S3Settings,
    Settings,
    SettingsError,
    TelemetrySettings,
    TemporalSettings,
    env_name,
)
from infra.settings_env import add_arguments, describe, load_settings, setting_names, to_env


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


def test_int_and_float_conversion() -> None:
    settings = load_settings(
        env={
            "DOCPIPE_KAFKA_SESSION_TIMEOUT_MS": "45000",
            "DOCPIPE_PIPELINE_HEARTBEAT_TIMEOUT_S": "2.5",
            "DOCPIPE_PIPELINE_POOL_SIZE": "3",
        }
    )
    assert settings.kafka.session_timeout_ms == 45000
    assert isinstance(settings.kafka.session_timeout_ms, int)
    assert settings.pipeline.heartbeat_timeout_s == 2.5
    assert settings.pipeline.pool_size == 3


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


def test_bad_bool_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_TEMPORAL_TLS"):
        load_settings(env={"DOCPIPE_TEMPORAL_TLS": "maybe"})


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


def test_bad_int_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_PIPELINE_CHUNK_PAGES") as info:
        load_settings(env={"DOCPIPE_PIPELINE_CHUNK_PAGES": "fifty"})
    assert "fifty" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_bad_float_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_PIPELINE_GRACEFUL_SHUTDOWN_S"):
        load_settings(env={"DOCPIPE_PIPELINE_GRACEFUL_SHUTDOWN_S": "soon"})


def test_a_negative_number_of_concurrent_checks_is_refused() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_PIPELINE_MAX_CONCURRENT_CHECKS"):
        load_settings(env={"DOCPIPE_PIPELINE_MAX_CONCURRENT_CHECKS": "-1"})


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


def _non_default() -> Settings:
    return Settings(
        kafka=KafkaSettings(
            bootstrap_servers="broker-1:9093,broker-2:9093",
            group_id="prod-intake",
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username="svc-docpipe",
            sasl_password="kafka-s3cret",
            session_timeout_ms=30_000,
        ),
        temporal=TemporalSettings(
            address="ns.acct.tmprl.cloud:7233",
            namespace="ns.acct",
            page_task_queue="docpipe-pages",
            tls=True,
            api_key="temporal-key",
        ),
        s3=S3Settings(
            endpoint_url="",
            region="eu-central-1",
            access_key_id="AKIAEXAMPLE",
            secret_access_key="aws-s3cret",
            documents_buckets=("inbox", "archive"),
            results_bucket="results-prod",
            max_attempts=9,
        ),
        pipeline=PipelineSettings(
            chunk_pages=40, heartbeat_timeout_s=12.5, pool_size=4, graceful_shutdown_s=0.5
        ),
    )


def test_to_env_round_trips_through_load_settings() -> None:
    settings = _non_default()
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
            PolicySettings,
            ReviewSettings,
            TelemetrySettings,
            CodecSettings,
        )
    )
    assert len(env) == fields
    assert set(env) == {env_name for env_name, _, _, _ in setting_names()}


def test_describe_masks_secrets_only() -> None:
    shown = dict(describe(_non_default()))
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


# --- clients -----------------------------------------------------------------------------


def test_kafka_kwargs_plaintext_has_no_sasl_or_ssl() -> None:
    kwargs = kafka_kwargs(KafkaSettings())
    assert kwargs["bootstrap_servers"] == "127.0.0.1:9092"
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in kwargs
    assert "sasl_mechanism" not in kwargs
    assert "sasl_plain_password" not in kwargs


def test_kafka_kwargs_sasl_ssl_reach_the_client() -> None:
    settings = _non_default().kafka
    kwargs = kafka_kwargs(settings)
    assert kwargs["bootstrap_servers"] == "broker-1:9093,broker-2:9093"
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "svc-docpipe"
    assert kwargs["sasl_plain_password"] == "kafka-s3cret"
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_temporal_kwargs_default_has_no_tls() -> None:
    kwargs = temporal_kwargs(TemporalSettings())
    assert kwargs == {"target_host": "127.0.0.1:7233", "namespace": "default"}


def test_temporal_kwargs_api_key_turns_tls_on() -> None:
    kwargs = temporal_kwargs(TemporalSettings(address="x.tmprl.cloud:7233", api_key="k-123"))
    assert kwargs["tls"] is True
    assert kwargs["api_key"] == "k-123"
    assert kwargs["target_host"] == "x.tmprl.cloud:7233"


def test_temporal_kwargs_tls_flag_alone() -> None:
    kwargs = temporal_kwargs(TemporalSettings(tls=True))
    assert kwargs["tls"] is True
    assert "api_key" not in kwargs


def test_temporal_kwargs_mtls_files_are_read(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    key = tmp_path / "client.key"
    cert.write_bytes(b"-----BEGIN CERTIFICATE-----\ncert-bytes\n-----END CERTIFICATE-----\n")
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nkey-bytes\n-----END PRIVATE KEY-----\n")
    kwargs = temporal_kwargs(
        TemporalSettings(namespace="ns.acct", tls_cert=str(cert), tls_key=str(key))
    )
    tls = kwargs["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.client_cert == cert.read_bytes()
    assert tls.client_private_key == key.read_bytes()
    assert tls.server_root_ca_cert is None
    assert kwargs["namespace"] == "ns.acct"
    assert "api_key" not in kwargs


def test_temporal_kwargs_ca_file_is_read(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"ca-bytes")
    tls = temporal_kwargs(TemporalSettings(tls_ca=str(ca)))["tls"]
    assert isinstance(tls, TLSConfig)
    assert tls.server_root_ca_cert == b"ca-bytes"
    assert tls.client_cert is None


def test_s3_kwargs_aws_uses_default_credential_chain() -> None:
    kwargs = s3_kwargs(S3Settings(endpoint_url="", region="eu-west-1"))
    assert "endpoint_url" not in kwargs
    assert "aws_access_key_id" not in kwargs
    assert "aws_secret_access_key" not in kwargs
    assert kwargs["region_name"] == "eu-west-1"


def test_s3_kwargs_explicit_keys_are_passed() -> None:
    kwargs = s3_kwargs(_non_default().s3)
    assert "endpoint_url" not in kwargs
    assert kwargs["aws_access_key_id"] == "AKIAEXAMPLE"
    assert kwargs["aws_secret_access_key"] == "aws-s3cret"
    assert kwargs["region_name"] == "eu-central-1"
    assert kwargs["config"].retries == {"mode": "standard", "total_max_attempts": 9}


def test_s3_kwargs_explicit_keys_win_over_dev_credentials() -> None:
    kwargs = s3_kwargs(S3Settings(access_key_id="mine", secret_access_key="also-mine"))
    assert kwargs["endpoint_url"] == "http://127.0.0.1:4566"
    assert (kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"]) == (
        "mine",
        "also-mine",
    )


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:4566", "http://localhost:9000", "http://[::1]:4566"]
)
def test_s3_kwargs_loopback_without_keys_uses_dev_credentials(endpoint: str) -> None:
    kwargs = s3_kwargs(S3Settings(endpoint_url=endpoint))
    assert kwargs["endpoint_url"] == endpoint
    assert kwargs["aws_access_key_id"] == "docpipe-dev"
    assert kwargs["aws_secret_access_key"] == "docpipe-dev"


def test_s3_kwargs_remote_endpoint_without_keys_uses_default_chain() -> None:
    kwargs = s3_kwargs(S3Settings(endpoint_url="https://minio.internal:9000"))
    assert kwargs["endpoint_url"] == "https://minio.internal:9000"
    assert "aws_access_key_id" not in kwargs


@pytest.fixture
def isolated_aws_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real AWS configuration, and no instance-metadata lookups, for client creation."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("isolated_aws_env")
def test_s3_client_uses_endpoint_and_region() -> None:
    client = s3_client(S3Settings(endpoint_url="http://127.0.0.1:4566", region="eu-west-3"))
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
    assert client.meta.region_name == "eu-west-3"


@pytest.mark.usefixtures("isolated_aws_env")
def test_s3_client_for_aws_uses_the_regional_endpoint() -> None:
    client = s3_client(S3Settings(endpoint_url="", region="eu-west-1"))
    assert client.meta.region_name == "eu-west-1"
    assert "127.0.0.1" not in client.meta.endpoint_url
    assert client.meta.endpoint_url.startswith("https://")
    assert "amazonaws.com" in client.meta.endpoint_url


def test_review_settings_read_from_their_variables() -> None:
    settings = load_settings(
        env={
            "DOCPIPE_REVIEW_OFF": "blank_pages,forms",
            "DOCPIPE_REVIEW_DEADLINE": "36h",
            "DOCPIPE_REVIEW_ON_DEADLINE": "reject",
        }
    )
    policy = settings.review.review_policy()
    assert policy.off == ("blank_pages", "forms")
    assert policy.deadline_s == 36 * 3600 and policy.on_deadline == "reject"


def test_a_review_deadline_that_is_not_a_duration_is_refused() -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_REVIEW_"):
        load_settings(env={"DOCPIPE_REVIEW_DEADLINE": "next week"})
