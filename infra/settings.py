"""The one settings object, read once at process start.

Every field comes, in order of precedence, from a CLI flag (``--kafka-group-id``), an
environment variable (``DOCPIPE_KAFKA_GROUP_ID``) or its default. Defaults point at the
embedded stack (``docpipe dev``); production sets the same fields to real clusters.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union, get_args, get_origin, get_type_hints

ENV_PREFIX = "DOCPIPE_"
_SECRET = {"secret": True}


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    """Kafka (or any Kafka-compatible broker) connection and topics."""

    bootstrap_servers: str = "127.0.0.1:9092"
    uploads_topic: str = "document-uploads"
    dlq_topic: str = "document-uploads.dlq"
    results_topic: str = "document-results"
    group_id: str = "docpipe-intake"
    client_id: str = "docpipe"
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, metadata=_SECRET)
    ssl_cafile: str | None = None
    session_timeout_ms: int = 10_000


@dataclass(frozen=True, kw_only=True)
class TemporalSettings:
    """Temporal cluster (dev server, self-hosted or Temporal Cloud)."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "docpipe"
    # Empty means "same as task_queue"; set it to run CPU-heavy page checking on its own
    # pool of worker processes.
    page_task_queue: str = ""
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    api_key: str | None = field(default=None, metadata=_SECRET)
    ui_url: str = "http://127.0.0.1:8233"

    @property
    def effective_page_task_queue(self) -> str:
        return self.page_task_queue or self.task_queue


@dataclass(frozen=True, kw_only=True)
class S3Settings:
    """S3 (AWS or any S3-compatible server) and where documents and results live."""

    # Empty means AWS itself; the default is the embedded moto server.
    endpoint_url: str = "http://127.0.0.1:4566"
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, metadata=_SECRET)
    # Buckets docpipe may read documents from; an event naming any other bucket is refused.
    documents_buckets: tuple[str, ...] = ("documents",)
    results_bucket: str = "docpipe-results"
    results_prefix: str = "results"
    max_attempts: int = 5


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    """How documents are checked."""

    chunk_pages: int = 50
    heartbeat_timeout_s: float = 30.0
    # 0 means one parser process per CPU core.
    pool_size: int = 0
    graceful_shutdown_s: float = 10.0


@dataclass(frozen=True, kw_only=True)
class Settings:
    """All of docpipe's configuration."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _sections() -> list[tuple[str, type[Any]]]:
    hints = get_type_hints(Settings)
    return [(f.name, hints[f.name]) for f in dataclasses.fields(Settings)]


def _fields(section_type: type[Any]) -> list[tuple[dataclasses.Field[Any], Any]]:
    hints = get_type_hints(section_type)
    return [(f, hints[f.name]) for f in dataclasses.fields(section_type)]


def _convert(raw: str, hint: Any, name: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if raw == "":
            return None
        (inner,) = [a for a in get_args(hint) if a is not type(None)]
        return _convert(raw, inner, name)
    if origin is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name}: cannot read {raw!r} as {hint.__name__}") from None
    return raw


def setting_names() -> list[tuple[str, str, Any, bool]]:
    """Every setting as (env variable, CLI flag, default, is_secret), for docs and help."""
    rows = []
    for section, section_type in _sections():
        for f, _ in _fields(section_type):
            env = f"{ENV_PREFIX}{section}_{f.name}".upper()
            flag = f"--{section}-{f.name}".replace("_", "-")
            rows.append((env, flag, f.default, bool(f.metadata.get("secret"))))
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add one ``--section-field`` flag per setting to a CLI parser."""
    group = parser.add_argument_group("settings (also DOCPIPE_* environment variables)")
    for section, section_type in _sections():
        for f, _ in _fields(section_type):
            group.add_argument(
                f"--{section}-{f.name}".replace("_", "-"),
                dest=f"setting__{section}__{f.name}",
                metavar="VALUE",
                default=None,
                help=argparse.SUPPRESS,
            )


def load_settings(
    env: Mapping[str, str] | None = None, args: argparse.Namespace | None = None
) -> Settings:
    """Build the settings from CLI flags, then ``DOCPIPE_*`` variables, then defaults.

    Raises:
        SettingsError: a value cannot be converted to its field's type.
    """
    env = os.environ if env is None else env
    flags = vars(args) if args is not None else {}
    sections: dict[str, Any] = {}
    for section, section_type in _sections():
        values: dict[str, Any] = {}
        for f, hint in _fields(section_type):
            env_name = f"{ENV_PREFIX}{section}_{f.name}".upper()
            raw = flags.get(f"setting__{section}__{f.name}")
            if raw is None:
                raw = env.get(env_name)
            if raw is not None:
                values[f.name] = _convert(raw, hint, env_name)
        sections[section] = section_type(**values)
    return Settings(**sections)


def to_env(settings: Settings) -> dict[str, str]:
    """Render settings as ``DOCPIPE_*`` variables, to hand them to a child process."""
    out: dict[str, str] = {}
    for section, section_type in _sections():
        values = getattr(settings, section)
        for f, _ in _fields(section_type):
            value = getattr(values, f.name)
            env_name = f"{ENV_PREFIX}{section}_{f.name}".upper()
            if value is None:
                out[env_name] = ""
            elif isinstance(value, tuple):
                out[env_name] = ",".join(value)
            elif isinstance(value, bool):
                out[env_name] = "true" if value else "false"
            else:
                out[env_name] = str(value)
    return out


def describe(settings: Settings) -> list[tuple[str, str]]:
    """(env variable, value) pairs for display, with secrets masked."""
    secret = {env for env, _, _, is_secret in setting_names() if is_secret}
    rendered = to_env(settings)
    return [(k, "***" if k in secret and v else v) for k, v in rendered.items()]
