"""The one way to build each client from the settings.

The ``*_kwargs`` functions are pure so that tests can prove production fields (TLS, API
keys, SASL) reach the clients without a real cluster.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import boto3
from aiokafka import AIOKafkaConsumer, TopicPartition
from botocore.config import Config
from temporalio.client import Client, TLSConfig

from infra.settings import KafkaSettings, S3Settings, TemporalSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# moto accepts any credentials; a fresh machine has none, so dev uses these.
_DEV_CREDENTIALS = ("docpipe-dev", "docpipe-dev")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def s3_kwargs(settings: S3Settings) -> dict[str, Any]:
    """Keyword arguments for ``boto3.client("s3", ...)``."""
    kwargs: dict[str, Any] = {
        "region_name": settings.region,
        "config": Config(
            # total_max_attempts counts the first try; max_attempts would count retries.
            retries={"mode": "standard", "total_max_attempts": settings.max_attempts},
            # Conditional puts must not be silently rewritten by checksum middleware.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    }
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    if settings.access_key_id:
        kwargs["aws_access_key_id"] = settings.access_key_id
        kwargs["aws_secret_access_key"] = settings.secret_access_key
    elif settings.endpoint_url and urlparse(settings.endpoint_url).hostname in _LOOPBACK:
        kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = _DEV_CREDENTIALS
    # Otherwise boto3's default chain (environment, profile, instance role) applies.
    return kwargs


def s3_client(settings: S3Settings) -> S3Client:
    """A new S3 client. boto3 clients are thread-safe; share one per process."""
    return boto3.session.Session().client("s3", **s3_kwargs(settings))


def temporal_kwargs(settings: TemporalSettings) -> dict[str, Any]:
    """Keyword arguments for ``temporalio.client.Client.connect``."""
    kwargs: dict[str, Any] = {"target_host": settings.address, "namespace": settings.namespace}
    if settings.tls_cert or settings.tls_key or settings.tls_ca:
        kwargs["tls"] = TLSConfig(
            client_cert=Path(settings.tls_cert).read_bytes() if settings.tls_cert else None,
            client_private_key=Path(settings.tls_key).read_bytes() if settings.tls_key else None,
            server_root_ca_cert=Path(settings.tls_ca).read_bytes() if settings.tls_ca else None,
        )
    elif settings.tls or settings.api_key:
        # API keys (Temporal Cloud) are only ever sent over TLS.
        kwargs["tls"] = True
    if settings.api_key:
        kwargs["api_key"] = settings.api_key
    return kwargs


async def temporal_client(settings: TemporalSettings, **extra: Any) -> Client:
    """Connect to Temporal as the settings say."""
    return await Client.connect(**temporal_kwargs(settings), **extra)


def kafka_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Connection keyword arguments shared by aiokafka producers, consumers and admin."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = ssl.create_default_context(cafile=settings.ssl_cafile)
    return kwargs


class TopicMissingError(LookupError):
    """The topic to read does not exist."""


@contextlib.asynccontextmanager
async def topic_from_start(
    settings: KafkaSettings, topic: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, list[TopicPartition]]]:
    """A throwaway consumer on every partition of ``topic``, at the start of each.

    No group, nothing committed: reading leaves no trace. For operators' commands and
    tests that read a whole topic.

    Raises:
        TopicMissingError: the topic does not exist.
    """
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # An empty partition answers after this wait; the default makes reading slow.
        fetch_max_wait_ms=100,
        **kafka_kwargs(settings),
    )
    await consumer.start()
    try:
        await consumer.topics()  # refreshes metadata, so that the partitions are known
        numbers = consumer.partitions_for_topic(topic)
        if not numbers:
            raise TopicMissingError(f"topic {topic!r} does not exist")
        partitions = [TopicPartition(topic, n) for n in sorted(numbers)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        yield consumer, partitions
    finally:
        await consumer.stop()
