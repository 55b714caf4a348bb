"""The review page's server: the web application on aiohttp, its render processes, and
an access log that names routes, never documents.

Imported only when ``docpipe review serve`` runs (``app.review_web``), so that other
commands and the parser processes do not load a web server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from app.command import EXIT_USAGE
from app.command import CommandError
from app.page_images import PageRenderer
from app.review_auth import ReviewerTokens
from app.review_backend import ReviewBackend
from app.review_pages import ReviewPageConfig
from app.review_pages import ReviewPages
from app.review_pages import route_of
from pipeline.pdf.render import RenderLimits

log = logging.getLogger(__name__)

DEFAULT_PORT = 8236


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """Where the review page listens and how browsers reach it.

    Attributes:
        public_url: the URL reviewers open (a reverse proxy's); default the listening one.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    public_url: str = ""
    render: RenderLimits = field(default_factory=RenderLimits)
    render_processes: int = 2

    @property
    def url(self) -> str:
        """The URL reviewers open."""
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"

    def page_config(self) -> ReviewPageConfig:
        """The origins POSTs may come from (the loopback one by either name), and whether
        cookies are for HTTPS only."""
        parts = urlsplit(self.url)
        origins = [f"{parts.scheme}://{parts.netloc}"]
        if parts.hostname == "127.0.0.1":
            origins.append(f"{parts.scheme}://localhost:{parts.port}")
        return ReviewPageConfig(origins=tuple(origins), secure_cookies=parts.scheme == "https")


class _AccessLog(AbstractAccessLogger):
    """One line per request: the route, never its query string (which names documents)
    nor anything the request carried."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        route = route_of(request) if isinstance(request, web.Request) else "-"
        self.logger.info("%s %s %d %.3f s", request.method, route, response.status, time)


class ReviewServer:
    """The review page on an aiohttp runner, in the running event loop.

    Args:
        backend: the review loop it shows and decides through.
        tokens: the reviewers who may log in.
        config: where it listens.
    """

    def __init__(self, backend: ReviewBackend, tokens: ReviewerTokens, config: ServeConfig) -> None:
        self.config = config
        self.renderer = PageRenderer(config.render, config.render_processes)
        self.pages = ReviewPages(backend, tokens, self.renderer, config.page_config())
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen.

        Raises:
            OSError: the address cannot be bound.
        """
        self._runner = web.AppRunner(
            self.pages.application(), access_log_class=_AccessLog, handle_signals=False
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.config.host, self.config.port).start()

    async def stop(self) -> None:
        """Stop listening and kill the render processes."""
        if self._runner is not None:
            await self._runner.cleanup()
        self.renderer.shutdown()


async def serve_until_stopped(
    backend: ReviewBackend, tokens: ReviewerTokens, config: ServeConfig
) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    server = ReviewServer(backend, tokens, config)
    try:
        await server.start()
    except OSError as exc:
        await server.stop()
        raise CommandError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror}", exit_code=EXIT_USAGE
        ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"review page   {config.url}  ({len(tokens.by_name)} reviewers)", flush=True)
    try:
        await stop.wait()
    finally:
        await server.stop()
