"""Metrics, traces and logs of one docpipe process, set up once when it starts.

- **Metrics**: with ``DOCPIPE_TELEMETRY_METRICS_PORT`` set, ``/metrics`` on that port serves
  docpipe's own metrics (prometheus_client) followed by the Temporal SDK's runtime metrics.
  The SDK serves those itself on a private loopback port; this endpoint appends them as they
  are, so one scrape target per process has both, under Temporal's usual metric names.
- **Traces**: with ``DOCPIPE_TELEMETRY_OTLP_ENDPOINT`` set, spans go to that OTLP/HTTP
  collector, and Temporal clients get the SDK's OpenTelemetry interceptor, which carries
  the trace from a workflow start into the workflow and its activities. Off otherwise.
- **Logs**: see ``infra.logs``. The Temporal SDK core's own records (a workflow task
  that took over 5 s, a poll that failed) are forwarded to the ``temporalio.core`` logger,
  so that they reach the process's log as one line each in its format: left to itself,
  the core writes them to stderr in its own, coloured one.
"""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from urllib.parse import urlparse

from opentelemetry import trace
from prometheus_client import CollectorRegistry
from prometheus_client import generate_latest
from temporalio.runtime import LogForwardingConfig
from temporalio.runtime import LoggingConfig
from temporalio.runtime import PrometheusConfig
from temporalio.runtime import Runtime
from temporalio.runtime import TelemetryConfig
from temporalio.runtime import TelemetryFilter

from infra.settings import TelemetrySettings
from infra.small_http import DEFAULT_MAX_CONNECTIONS
from infra.small_http import BoundedHTTPServer
from infra.small_http import DeadlineHandler
from infra.small_http import bearer_matches
from infra.small_http import serve_in_thread

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds a scrape connection may stay silent before it is closed.
DEFAULT_METRICS_TIMEOUT_SECONDS = 30.0
# Log record attributes that docpipe sets with ``extra=`` and the JSON format keeps.


# -- metrics --------------------------------------------------------------------------------


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MetricsServer:
    """``GET /metrics``: ``registry``, then the text of ``sdk_url`` (the SDK's endpoint).

    Args:
        registry: docpipe's metrics.
        host: address to listen on.
        port: port to listen on (0: any free one; see :attr:`port`).
        sdk_url: the Temporal SDK's own Prometheus endpoint, appended to every scrape.
        timeout_seconds: how long a connection may stay silent before it is closed; a
            request must arrive whole within twice that.
        token: the bearer token every scrape must carry (None: none).
        max_connections: connections served at once; more are answered 503.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        host: str,
        port: int,
        sdk_url: str | None = None,
        timeout_seconds: float = DEFAULT_METRICS_TIMEOUT_SECONDS,
        token: str | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self.registry = registry
        self.sdk_url = sdk_url
        server = self
        deadline_s = timeout_seconds

        class Handler(DeadlineHandler):
            # Without it a client that stops sending, or sends slowly, holds a thread.
            timeout_seconds = deadline_s

            def do_GET(self) -> None:
                if not self.arrived():
                    return
                if token is not None and not bearer_matches(self.headers, token):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", "Bearer")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if urlparse(self.path).path not in ("/metrics", "/"):
                    self.send_error(404)
                    return
                body = server.render()
                self.send_response(200)
                self.send_header("Content-Type", _CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one line per scrape would drown the process's own log

        self._http = BoundedHTTPServer((host, port), Handler, max_connections=max_connections)
        self._thread = serve_in_thread(self._http, "metrics-http")

    @property
    def port(self) -> int:
        """The port it listens on (the one asked for, or the one given for 0)."""
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        """The endpoint a Prometheus scrapes."""
        host = str(self._http.server_address[0])
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{self.port}/metrics"

    def render(self) -> bytes:
        """The scrape: docpipe's metrics, then the SDK's (absent if it does not answer)."""
        body = generate_latest(self.registry)
        if self.sdk_url:
            try:
                with urllib.request.urlopen(self.sdk_url, timeout=2) as response:
                    body += response.read()
            except (urllib.error.URLError, OSError) as exc:
                log.debug("Temporal SDK metrics unavailable: %r", exc)
        return body

    def close(self) -> None:
        """Stop serving (the process is stopping)."""
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


def sdk_metrics_runtime() -> tuple[Runtime, str]:
    """A Temporal runtime whose SDK metrics are served on a private loopback port, and
    whose core logs are forwarded (``core_logging``).

    Returns:
        The runtime (give it to the process's clients) and the URL of its metrics.
    """
    bind = f"127.0.0.1:{_free_loopback_port()}"
    runtime = Runtime(
        telemetry=TelemetryConfig(
            logging=core_logging(), metrics=PrometheusConfig(bind_address=bind)
        )
    )
    return runtime, f"http://{bind}/metrics"


# Where the SDK core's log records go (its warnings and errors, as by default).
CORE_LOGGER = "temporalio.core"


def core_logging_runtime() -> Runtime:
    """A Temporal runtime whose core logs are forwarded (``core_logging``), for the
    clients of a process that serves (without SDK metrics)."""
    return Runtime(telemetry=TelemetryConfig(logging=core_logging()))


def core_logging() -> LoggingConfig:
    """The SDK core's warnings and errors, forwarded to the ``CORE_LOGGER`` logger (the
    part of the core that logged at the head of the message, its fields at the end)."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(
            logger=logging.getLogger(CORE_LOGGER), append_target_to_name=False
        ),
    )


# -- traces ---------------------------------------------------------------------------------


def otlp_traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector endpoint (``/v1/traces`` unless given)."""
    endpoint = endpoint.rstrip("/")
    return endpoint if urlparse(endpoint).path else f"{endpoint}/v1/traces"


def otlp_tracer_provider(endpoint: str, service: str) -> TracerProvider:
    """A tracer provider that batches spans to an OTLP/HTTP collector."""
    # Imported only when tracing is configured.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"docpipe-{service}"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_traces_url(endpoint)))
    )
    return provider


def tracing_interceptors() -> list[Any]:
    """Client interceptors that carry the current trace into workflows and activities."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


# -- the process ----------------------------------------------------------------------------


@dataclass
class Telemetry:
    """What a process set up; :meth:`client_options` go to its Temporal clients."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    interceptors: list[Any] = field(default_factory=list)
    runtime: Runtime | None = None
    metrics: MetricsServer | None = None
    tracer_provider: TracerProvider | None = None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.connect`` (SDK metrics, tracing)."""
        options: dict[str, Any] = {}
        if self.interceptors:
            options["interceptors"] = list(self.interceptors)
        if self.runtime is not None:
            options["runtime"] = self.runtime
        return options

    def close(self) -> None:
        """Stop serving metrics and flush the spans not exported yet."""
        if self.metrics is not None:
            self.metrics.close()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


def start_telemetry(settings: TelemetrySettings, service: str) -> Telemetry:
    """Set up metrics and tracing for this process as the settings say.

    Args:
        service: what this process is (``worker``, ``consume``), for trace resources.
    """
    telemetry = Telemetry()
    if settings.otlp_endpoint:
        provider = otlp_tracer_provider(settings.otlp_endpoint, service)
        trace.set_tracer_provider(provider)
        telemetry.tracer_provider = provider
        telemetry.interceptors = tracing_interceptors()
        log.info("tracing to %s", otlp_traces_url(settings.otlp_endpoint))
    # The process's clients all use its runtime: the core's logs reach the process's log.
    if not settings.metrics_port:
        telemetry.runtime = core_logging_runtime()
    else:
        telemetry.runtime, sdk_url = sdk_metrics_runtime()
        telemetry.metrics = MetricsServer(
            telemetry.registry,
            host=settings.metrics_host,
            port=settings.metrics_port,
            sdk_url=sdk_url,
            token=settings.metrics_token,
        )
        log.info("metrics at %s", telemetry.metrics.url)
    return telemetry
