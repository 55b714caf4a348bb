"""What the settings hand to the clients: Kafka's SASL and TLS, Temporal's TLS and API key,
S3's endpoint, region and credentials."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import pytest
from botocore.awsrequest import AWSPreparedRequest
from temporalio.client import TLSConfig

from infra.clients import kafka_kwargs
from infra.clients import s3_client
from infra.clients import s3_kwargs
from infra.clients import temporal_kwargs
from infra.settings import KafkaSettings
from infra.settings import S3Settings
from infra.settings import TemporalSettings
from tests.support.settings import production_like

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def test_kafka_kwargs_plaintext_has_no_sasl_or_ssl() -> None:
    kwargs = kafka_kwargs(KafkaSettings())
    assert kwargs["bootstrap_servers"] == "127.0.0.1:9092"
    assert kwargs["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in kwargs
    assert "sasl_mechanism" not in kwargs
    assert "sasl_plain_password" not in kwargs


def test_kafka_kwargs_sasl_ssl_reach_the_client() -> None:
    settings = production_like().kafka
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
    kwargs = s3_kwargs(production_like().s3)
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


class _Sent(Exception):
    """Raised in place of sending a request, with the request's Authorization header."""

    def __init__(self, authorization: str) -> None:
        super().__init__("not sent")
        self.authorization = authorization


def _signed_by(client: S3Client) -> str:
    """The access key ID the client signs with (the request is stopped before it is sent)."""

    def stop(request: AWSPreparedRequest, **_: Any) -> None:
        value = request.headers["Authorization"]
        raise _Sent(value.decode() if isinstance(value, bytes) else value)

    client.meta.events.register("before-send.s3.ListBuckets", stop)
    with pytest.raises(_Sent) as sent:
        client.list_buckets()
    match = re.search(r"Credential=([^/]+)/", sent.value.authorization)
    assert match is not None, sent.value.authorization
    return match[1]


@pytest.mark.usefixtures("isolated_aws_env")
def test_s3_clients_made_one_after_another_keep_their_handlers_apart() -> None:
    """Clients come from one session per process; each has its own event handlers (the
    fault injection of tests, boto3's own retry handlers)."""
    remote = S3Settings(endpoint_url="https://s3.example.test", region="eu-west-1")
    first, second = s3_client(remote), s3_client(remote)
    assert first is not second
    sent_by_first: list[str] = []

    def count(**_: Any) -> None:
        sent_by_first.append("ListBuckets")

    first.meta.events.register("before-send.s3.ListBuckets", count)
    assert _signed_by(second) == "from-env"
    assert sent_by_first == [], "the first client's handler acted on the second's request"
    assert _signed_by(first) == "from-env"
    assert sent_by_first == ["ListBuckets"]


@pytest.mark.usefixtures("isolated_aws_env")
def test_an_s3_client_sees_the_aws_environment_of_when_it_is_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A change to the ``AWS_*`` variables reaches the next client, as it would reach a
    client from a fresh session."""
    remote = S3Settings(endpoint_url="https://s3.example.test", region="eu-west-1")
    assert _signed_by(s3_client(remote)) == "from-env"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "rotated")
    assert _signed_by(s3_client(remote)) == "rotated"
