"""The one way to build each client from the settings.

The ``*_kwargs`` functions are pure so that tests can prove production fields (TLS, API
keys, SASL) reach the clients without a real cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlparse

import boto3
from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from botocore.config import Config
from temporalio.client import Client
from temporalio.client import TLSConfig

from infra.backoff import Backoff
from infra.backoff import until_set
from infra.codec import data_converter
from infra.settings import CodecSettings
from infra.settings import KafkaSettings
from infra.settings import S3Settings
from infra.settings import TemporalSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# moto accepts any credentials; a fresh machine has none, so dev uses these.
_DEV_CREDENTIALS = ("docpipe-dev", "docpipe-dev")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# How a process started before Temporal waits for it to answer.
CONNECT_BACKOFF = Backoff(initial_s=0.5, max_s=30.0)


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
    """A new S3 client. boto3 clients are thread-safe; share one per process.

    Clients are made from one boto3 session per process and AWS environment, which keeps
    the service models it has parsed: a client from a fresh session costs about 0.1 s of
    CPU, most of it reading those models again; from this one, about a tenth of that.
    The session is keyed by the ``AWS_*`` variables, so that a change to them (a profile, a
    config file) is seen as a fresh session would see it. Sessions are not thread-safe:
    clients are made one at a time.
    """
    aws_environment = tuple(
        sorted(item for item in os.environ.items() if item[0].startswith("AWS_"))
    )
    with _SESSION_LOCK:
        return _session(os.getpid(), aws_environment).client("s3", **s3_kwargs(settings))


_SESSION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _session(pid: int, aws_environment: tuple[tuple[str, str], ...]) -> boto3.session.Session:
    # The process ID is part of the key: a forked child makes its own.
    return boto3.session.Session()


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


class ServerUnreachableError(ConnectionError):
    """A server docpipe needs does not answer at the address the settings give.

    Attributes:
        what: which server ("Temporal", "the Kafka broker", "S3").
        address: where it was looked for.
        setting: the setting that points there.
        default: whether that setting is at its default (the embedded stack's address).
    """

    def __init__(self, what: str, address: str, setting: str, default: bool, cause: str) -> None:
        super().__init__(f"cannot reach {what} at {address} ({setting}): {cause}")
        self.what, self.address, self.setting, self.default = what, address, setting, default

    def one_line(self) -> str:
        """What a person needs to know, on one line: what, where, which setting says so,
        and a hint where the setting still points at the embedded stack."""
        line = f"cannot reach {self.what} at {self.address} (set by {self.setting})"
        return line + ("; is `docpipe dev` running?" if self.default else "")


def _unreachable(
    what: str, setting: str, address: str, default_address: str, cause: BaseException
) -> ServerUnreachableError:
    """The error for a server that does not answer at ``address`` (``cause`` says how);
    ``default_address`` is where ``setting`` points by default (the embedded stack)."""
    return ServerUnreachableError(what, address, setting, address == default_address, str(cause))


def s3_unreachable(settings: S3Settings, exc: BaseException) -> ServerUnreachableError:
    """The error for an S3 endpoint that does not answer (botocore's connection errors)."""
    endpoint = settings.endpoint_url or f"AWS S3 ({settings.region})"
    default = S3Settings().endpoint_url
    return _unreachable("S3", "DOCPIPE_S3_ENDPOINT_URL", endpoint, default, exc)


async def temporal_client(settings: TemporalSettings, codec: CodecSettings, **extra: Any) -> Client:
    """Connect to Temporal as the settings say, payloads encrypted as ``codec`` says.

    Raises:
        ServerUnreachableError: Temporal does not answer there.
        SettingsError: encryption is on and there is no usable keyring.
    """
    converter = data_converter(codec)
    try:
        return await Client.connect(**temporal_kwargs(settings), data_converter=converter, **extra)
    except RuntimeError as exc:
        # The SDK says only "Failed client connect: ..." for every way connecting fails.
        address, default = settings.address, TemporalSettings().address
        raise _unreachable("Temporal", "DOCPIPE_TEMPORAL_ADDRESS", address, default, exc) from exc


async def temporal_client_waiting(
    settings: TemporalSettings,
    codec: CodecSettings,
    stop: asyncio.Event,
    *,
    backoff: Backoff = CONNECT_BACKOFF,
    **extra: Any,
) -> Client | None:
    """Connect to Temporal, waiting with backoff (and a log line per try) while it does not
    answer, as a long-running process started before it should; None if ``stop`` is set
    meanwhile."""
    async for attempt in backoff.attempts(wait=until_set(stop)):
        try:
            return await temporal_client(settings, codec, **extra)
        except ServerUnreachableError as exc:
            log.warning("%s; retry in %.1f s", exc, attempt.delay_s)
    return None


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
    await start_kafka(consumer, settings)
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


class _ReportedBelow(logging.Filter):
    """Drops aiokafka's own line about a failed connect: the error raised says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unable connect to")


async def start_kafka(client: Any, settings: KafkaSettings) -> None:
    """Start an aiokafka consumer or producer; closed again when that fails.

    Raises:
        ServerUnreachableError: no broker answers at the bootstrap servers.
    """
    reported = _ReportedBelow()
    logging.getLogger("aiokafka").addFilter(reported)
    try:
        await client.start()
    except KafkaConnectionError as exc:
        await client.stop()
        servers, default = settings.bootstrap_servers, KafkaSettings().bootstrap_servers
        raise _unreachable(
            "the Kafka broker", "DOCPIPE_KAFKA_BOOTSTRAP_SERVERS", servers, default, exc
        ) from exc
    except BaseException:
        await client.stop()
        raise
    finally:
        logging.getLogger("aiokafka").removeFilter(reported)
