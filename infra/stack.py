"""The embedded dev stack: Temporal dev server, a Kafka-compatible broker and an S3 server.

One API starts and stops all three on loopback, for ``docpipe dev``, ``docpipe demo`` and
the test fixtures alike. Children are started in their own session (Ctrl-C reaches only
docpipe, which then stops them in order) and are asked to die with their parent, so even a
SIGKILLed docpipe leaves no server behind.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import TypeVar

from infra.binaries import moto_binary
from infra.binaries import tansu_binary
from infra.binaries import temporal_binary
from infra.codec import EncryptionCodec
from infra.codec import keyring_for
from infra.codec_http import CodecServer
from infra.codec_http import CodecServerConfig
from infra.keyring import ensure_dev_keyring
from infra.ports import LOOPBACK
from infra.ports import free_ports
from infra.ports import port_open
from infra.ports import port_taken
from infra.processes import ManagedProcess
from infra.processes import stop_all
from infra.settings import CODEC_NONE
from infra.settings import CodecSettings
from infra.settings import Settings
from infra.stack_errors import StackError
from infra.stack_setup import create_topics
from infra.stack_setup import prepare_buckets
from infra.stack_setup import prepare_temporal

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """Where the embedded stack listens and keeps its state."""

    state_dir: Path
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    kafka_port: int = 9092
    s3_port: int = 4566
    # The codec server the UI decodes payloads with (when encryption is on).
    codec_port: int = 8235
    # The review page (``docpipe review serve``, started by ``docpipe dev`` and ``demo``).
    review_port: int = 8236
    partitions: int = 3
    startup_timeout_s: float = 60.0

    @classmethod
    def on_free_ports(cls, state_dir: Path, **overrides: Any) -> StackConfig:
        """A config whose ports are free right now (for tests, benchmarks, screenshots)."""
        names = [item.name for item in dataclasses.fields(cls) if item.name.endswith("_port")]
        values: dict[str, Any] = dict(zip(names, free_ports(len(names)), strict=True))
        values.update(overrides)
        return cls(state_dir=state_dir, **values)


# Dynamic config of the embedded Temporal server. Fairness keys are ignored unless
# matching has fairness on; one partition per task queue makes priority and fair shares
# hold for the whole queue (they hold per partition), as a dev server's load never needs
# more. A production cluster needs the first (README, production).
TEMPORAL_DYNAMIC_CONFIG = (
    ("matching.enableFairness", "true"),
    ("matching.numTaskqueueReadPartitions", "1"),
    ("matching.numTaskqueueWritePartitions", "1"),
    ("frontend.enableServerVersionCheck", "false"),
    # A worker that schedules an activity on its own task queue may run it at once,
    # without a round trip through matching (docs/BENCHMARKS.md).
    ("system.enableActivityEagerExecution", "true"),
)

# The embedded Temporal server's SQLite database keeps a write-ahead log and syncs it at
# checkpoints, not at every commit (SQLite's default journal syncs twice a commit). A
# killed server loses nothing; a power cut or a crash of the machine may take the last
# commits back, and the database stays whole: right for a laptop's stack, and a
# production cluster has its own database. 300 workflows of three activities each: the
# server's CPU 17-20 s -> 11 s, their time 18-22 s -> 8.7 s.
TEMPORAL_SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def _dynamic_config(values: Sequence[tuple[str, str]]) -> list[str]:
    return [arg for name, value in values for arg in ("--dynamic-config-value", f"{name}={value}")]


class EmbeddedStack:
    """Temporal + broker + S3 on loopback, with docpipe's topics, buckets and attributes.

    Args:
        config: ports and state directory.
        base: settings whose topic, bucket and namespace names the stack prepares; the
            stack's own endpoints replace the addresses in :meth:`settings`.
    """

    def __init__(self, config: StackConfig, base: Settings | None = None) -> None:
        self.config = config
        self._base = base or Settings()
        self._children: list[ManagedProcess] = []
        self._codec_server: CodecServer | None = None
        self._lock = threading.Lock()

    # -- endpoints ------------------------------------------------------------------------

    @property
    def temporal_address(self) -> str:
        """Where clients reach the Temporal dev server."""
        return f"{LOOPBACK}:{self.config.temporal_port}"

    @property
    def ui_url(self) -> str:
        """The Temporal Web UI, for operators and screenshots."""
        return f"http://{LOOPBACK}:{self.config.temporal_ui_port}"

    @property
    def codec_url(self) -> str | None:
        """The codec server the UI decodes with; None when encryption is off."""
        if self._base.codec.mode == CODEC_NONE:
            return None
        return f"http://{LOOPBACK}:{self.config.codec_port}"

    @property
    def review_url(self) -> str:
        """The review page that ``docpipe dev`` and ``docpipe demo`` start beside the stack."""
        return f"http://{LOOPBACK}:{self.config.review_port}"

    @property
    def kafka_bootstrap(self) -> str:
        """Where Kafka clients reach the broker."""
        return f"{LOOPBACK}:{self.config.kafka_port}"

    @property
    def s3_endpoint(self) -> str:
        """Where S3 clients reach the moto server."""
        return f"http://{LOOPBACK}:{self.config.s3_port}"

    @property
    def dev_keyring_file(self) -> Path:
        """The development keyring the stack encrypts with unless told otherwise."""
        return self.config.state_dir / "codec-keyring.json"

    def codec_settings(self, base: CodecSettings) -> CodecSettings:
        """``base``, with the development keyring (made at first use) if it names none:
        encryption is on in development as in production."""
        if base.mode == CODEC_NONE or base.keyring_file or base.keys:
            return base
        keyring = ensure_dev_keyring(self.dev_keyring_file)
        return dataclasses.replace(base, keyring_file=str(keyring))

    def settings(self, base: Settings | None = None) -> Settings:
        """``base`` (default: the stack's own) pointed at this stack's endpoints."""
        base = base or self._base
        return dataclasses.replace(
            base,
            codec=self.codec_settings(base.codec),
            kafka=dataclasses.replace(base.kafka, bootstrap_servers=self.kafka_bootstrap),
            temporal=dataclasses.replace(
                base.temporal,
                address=self.temporal_address,
                ui_url=self.ui_url,
                tls=False,
                tls_cert=None,
                tls_key=None,
                tls_ca=None,
                api_key=None,
            ),
            s3=dataclasses.replace(
                base.s3, endpoint_url=self.s3_endpoint, access_key_id=None, secret_access_key=None
            ),
        )

    def pids(self) -> list[int]:
        """PIDs of the server processes this stack started and that still run."""
        return [c.pid for c in self._children if c.alive]

    def named_pids(self) -> dict[str, int]:
        """PIDs of the running servers by name (``temporal``, ``kafka``, ``s3``)."""
        return {c.name: c.pid for c in self._children if c.alive}

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start every server, wait until each is ready, then create what docpipe needs.

        Raises:
            StackError: a port is taken, a binary is missing, or a server did not come up.
        """
        config = self.config
        binaries = {
            "temporal": temporal_binary(),
            "kafka": tansu_binary(),
            "s3": moto_binary(),
        }
        ports = {
            "Temporal": (config.temporal_port, "--temporal-port"),
            "Temporal UI": (config.temporal_ui_port, "--ui-port"),
            "Kafka broker": (config.kafka_port, "--kafka-port"),
            "S3": (config.s3_port, "--s3-port"),
            "review page": (config.review_port, "--review-port"),
        }
        if self.codec_url:
            ports["codec server"] = (config.codec_port, "--codec-port")
        for what, (port, flag) in ports.items():
            if port_taken(port):
                raise StackError(
                    f"port {port} ({what}) is already in use on {LOOPBACK}: stop what holds "
                    f"it (another `docpipe dev`?) or choose another with {flag}"
                )
        config.state_dir.mkdir(parents=True, exist_ok=True)
        (config.state_dir / "logs").mkdir(exist_ok=True)
        atexit.register(self.stop)
        deadline = time.monotonic() + config.startup_timeout_s
        try:
            self._start_codec_server()
            self._spawn_temporal(binaries["temporal"])
            self._spawn_broker(binaries["kafka"])
            self._spawn("s3", [str(binaries["s3"]), "-H", LOOPBACK, "-p", str(config.s3_port)])
            self._wait_for_port("kafka", config.kafka_port, deadline)
            self._wait_for_port("temporal", config.temporal_port, deadline)
            self._wait_for_port("s3", config.s3_port, deadline)
            self._wait_for_http("s3", f"{self.s3_endpoint}/moto-api/", deadline)
            self._prepare_temporal(deadline)
            self._prepare_kafka(deadline)
            self._prepare_s3()
            self._wait_for_port("temporal", config.temporal_ui_port, deadline)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every server this stack started (by PID), newest first. Safe to repeat."""
        with self._lock:
            children, self._children = self._children, []
            codec_server, self._codec_server = self._codec_server, None
        stop_all(children)
        if codec_server is not None:
            codec_server.stop()
        atexit.unregister(self.stop)

    def stop_temporal(self) -> None:
        """Stop only the Temporal server (to rehearse an outage); the rest keeps running."""
        self._stop_child("temporal")

    def stop_broker(self) -> None:
        """Stop only the broker (to rehearse an outage). It keeps topics and offsets in
        memory: they go with it."""
        self._stop_child("kafka")

    def start_broker(self) -> None:
        """Start the broker again on the same port, empty, and wait for it.

        Raises:
            StackError: the broker is already running, or did not come back.
        """
        if any(c.name == "kafka" for c in self._children):
            raise StackError("the broker of this stack is already running")
        deadline = time.monotonic() + self.config.startup_timeout_s
        self._spawn_broker(tansu_binary())
        self._wait_for_port("kafka", self.config.kafka_port, deadline)

    def start_temporal(self) -> None:
        """Start the Temporal server again on the same ports and database, and wait for it.

        Raises:
            StackError: Temporal is already running, or did not come back.
        """
        if any(c.name == "temporal" for c in self._children):
            raise StackError("the Temporal server of this stack is already running")
        deadline = time.monotonic() + self.config.startup_timeout_s
        self._spawn_temporal(temporal_binary())
        self._wait_for_port("temporal", self.config.temporal_port, deadline)
        # Registering the search attributes again is harmless and proves the server serves.
        self._prepare_temporal(deadline)

    # -- helpers --------------------------------------------------------------------------

    def _start_codec_server(self) -> None:
        if not self.codec_url:
            return
        keyring = keyring_for(self.settings().codec)
        assert keyring is not None
        ui_port = self.config.temporal_ui_port
        self._codec_server = CodecServer(
            CodecServerConfig(
                host=LOOPBACK,
                port=self.config.codec_port,
                # The UI is reached by either name on loopback.
                allowed_origins=(self.ui_url, f"http://localhost:{ui_port}"),
            ),
            EncryptionCodec(keyring),
        )

    def _stop_child(self, name: str) -> None:
        with self._lock:
            stopping = [c for c in self._children if c.name == name]
            self._children = [c for c in self._children if c.name != name]
        stop_all(stopping)

    def _spawn_broker(self, binary: Path) -> None:
        listener = f"tcp://{self.kafka_bootstrap}"
        self._spawn(
            "kafka",
            [
                str(binary),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
                "--storage-engine",
                "memory://tansu/",
            ],
        )

    def _spawn_temporal(self, binary: Path) -> None:
        config = self.config
        codec = ["--ui-codec-endpoint", self.codec_url] if self.codec_url else []
        self._spawn(
            "temporal",
            [
                str(binary),
                "server",
                "start-dev",
                "--ip",
                LOOPBACK,
                "--port",
                str(config.temporal_port),
                "--ui-port",
                str(config.temporal_ui_port),
                "--db-filename",
                str(config.state_dir / "temporal.db"),
                "--namespace",
                self._base.temporal.namespace,
                *_dynamic_config(TEMPORAL_DYNAMIC_CONFIG),
                *(arg for pragma in TEMPORAL_SQLITE_PRAGMAS for arg in ("--sqlite-pragma", pragma)),
                *codec,
                "--ui-disable-news-fetch",
                "--log-level",
                "warn",
            ],
        )

    def _spawn(self, name: str, argv: list[str]) -> None:
        # Servers get none of docpipe's settings; the broker in particular reads its own
        # configuration from variables such as LISTENER_URL.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCPIPE_")}
        self._children.append(
            ManagedProcess(
                name,
                argv,
                log_path=self.config.state_dir / "logs" / f"{name}.log",
                env=env,
                cwd=self.config.state_dir,
            )
        )

    def _check_alive(self, name: str) -> None:
        for child in self._children:
            if child.name == name and not child.alive:
                raise StackError(
                    f"{name} server exited with code {child.process.returncode} "
                    f"(see {child.log_path}): {child.exit_reason()}"
                )

    def _wait(self, name: str, ready: Callable[[], bool], deadline: float, what: str) -> None:
        while not ready():
            self._check_alive(name)
            if time.monotonic() > deadline:
                raise StackError(
                    f"{name} server did not become ready ({what}) within "
                    f"{self.config.startup_timeout_s:.0f} s; see "
                    f"{self.config.state_dir / 'logs' / (name + '.log')}"
                )
            time.sleep(0.05)

    def _wait_for_port(self, name: str, port: int, deadline: float) -> None:
        self._wait(name, lambda: port_open(port), deadline, f"port {port}")

    def _wait_for_http(self, name: str, url: str, deadline: float) -> None:
        def ok() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    return bool(response.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        self._wait(name, ok, deadline, url)

    def _retry(self, name: str, deadline: float, action: Callable[[], T]) -> T:
        while True:
            try:
                return action()
            except Exception as exc:
                self._check_alive(name)
                if time.monotonic() > deadline:
                    raise StackError(f"{name} server is up but not usable: {exc}") from exc
                time.sleep(0.2)

    def _prepare_temporal(self, deadline: float) -> None:
        settings = self.settings()
        added = self._retry("temporal", deadline, lambda: prepare_temporal(settings))
        if added:
            log.info("registered search attributes: %s", ", ".join(added))

    def _prepare_kafka(self, deadline: float) -> None:
        kafka = self._base.kafka
        topics = [kafka.uploads_topic, kafka.dlq_topic, kafka.results_topic]
        self._retry("kafka", deadline, lambda: self.create_topics(topics))

    def create_topics(self, topics: Sequence[str], partitions: int | None = None) -> None:
        """Create topics that do not exist yet, with ``partitions`` (default: the
        config's) each."""
        create_topics(self.kafka_bootstrap, topics, partitions or self.config.partitions)

    def _prepare_s3(self) -> None:
        prepare_buckets(self.settings().s3)
