"""``docpipe review serve``: the review page, where reviewers decide in a browser.

It serves the queue of checks that wait for a decision and, per check, the pages to look
at drawn as images with their reasons and masked samples, with Approve and Reject. Each
reviewer logs in with their own token (``app.review_auth``); it listens on 127.0.0.1
unless told otherwise, and is exposed beyond the machine through a TLS reverse proxy
(docs/OPERATIONS.md, "The review page"). ``docpipe dev`` and ``docpipe demo`` start it
beside the embedded stack, with a reviewer token of their own.

The server itself (aiohttp, jinja2) is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass

from app.command import EXIT_USAGE
from app.command import CommandError
from app.command import Commands
from app.review_auth import ReviewerTokensError
from app.review_auth import ensure_dev_tokens
from app.review_auth import load_tokens
from infra.clients import temporal_client
from infra.ports import port_open
from infra.processes import ManagedProcess
from infra.processes import docpipe_process
from infra.settings import Settings
from infra.settings_env import to_env
from infra.stack import EmbeddedStack
from pipeline.pdf.render import RenderLimits

DEFAULT_PORT = 8236
DEV_TOKENS_FILE = "review-tokens"
# How long the review page of `docpipe dev` may take to listen.
STARTUP_TIMEOUT_S = 60.0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the review page until SIGTERM or Ctrl-C."""
    from app.review_backend import TemporalReviewBackend
    from app.review_server import ServeConfig
    from app.review_server import serve_until_stopped
    from infra.telemetry import core_logging_runtime

    try:
        tokens = load_tokens(os.environ, args.tokens_file)
    except ReviewerTokensError as exc:
        raise CommandError(str(exc), exit_code=EXIT_USAGE) from None
    config = ServeConfig(
        host=args.host,
        port=args.port,
        public_url=args.public_url or "",
        render=RenderLimits(seconds=args.render_timeout, memory_mb=args.render_memory_mb),
    )

    async def serve() -> None:
        # Its core's warnings in its log, as a worker's are (infra.telemetry).
        client = await temporal_client(
            settings.temporal, settings.codec, runtime=core_logging_runtime()
        )
        await serve_until_stopped(TemporalReviewBackend(client, settings), tokens, config)

    asyncio.run(serve())
    return 0


def add_serve_command(review: Commands) -> None:
    """``docpipe review serve``, added to the ``review`` commands."""
    parser = review.add(
        "serve", "serve the review page: the queue, the pages, the decisions", _serve
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument(
        "--public-url",
        help="the URL reviewers open, when a reverse proxy serves it (https://...: the "
        "session cookie is then sent over HTTPS only)",
    )
    parser.add_argument(
        "--tokens-file",
        help="file of name:token lines (default DOCPIPE_REVIEW_TOKENS_FILE, else "
        "DOCPIPE_REVIEW_TOKENS=name:token,...)",
    )
    limits = RenderLimits()
    parser.add_argument(
        "--render-timeout", type=float, default=limits.seconds, help="seconds a page may take"
    )
    parser.add_argument(
        "--render-memory-mb",
        type=int,
        default=limits.memory_mb,
        help="memory limit of a render process",
    )


@dataclass(frozen=True)
class DevReviewPage:
    """The review page ``docpipe dev`` or ``demo`` started, and how to log in to it."""

    process: ManagedProcess
    url: str
    reviewer: str
    # The token travels in the fragment: the browser never sends it to the server.
    login_url: str


def start_dev_review_page(stack: EmbeddedStack, live: Settings) -> DevReviewPage:
    """Start the review page beside the embedded stack, with the stack's reviewer token
    (made in its state directory at first use), and wait until it listens.

    Raises:
        CommandError: it exited or did not listen in time (its log says why).
    """
    state = stack.config.state_dir
    tokens_file = state / DEV_TOKENS_FILE
    reviewer, token = ensure_dev_tokens(tokens_file)
    port = stack.config.review_port
    process = docpipe_process(
        ["review", "serve", "--port", str(port), "--tokens-file", str(tokens_file)],
        settings_env=to_env(live),
        log_path=state / "logs" / "review.log",
        base_env=os.environ,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not port_open(port):
        if not process.alive or time.monotonic() > deadline:
            process.stop()
            raise CommandError(
                f"the review page did not start (see {process.log_path}): {process.exit_reason()}"
            )
        time.sleep(0.1)
    url = stack.review_url
    return DevReviewPage(process, url, reviewer, f"{url}/login#token={token}")
