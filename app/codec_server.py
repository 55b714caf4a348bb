"""``docpipe codec-server``: lets the Temporal UI and CLI show what docpipe encrypted.

Point the UI at it (``--ui-codec-endpoint`` of a dev server, or the codec endpoint in the
UI's settings or its ``TEMPORAL_CODEC_ENDPOINT``) and the CLI with
``temporal --codec-endpoint http://127.0.0.1:8081/{namespace}``. It decodes with the same
keyring as the workers (``DOCPIPE_CODEC_*``); docs/OPERATIONS.md, "Encryption".
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from urllib.parse import urlsplit

from app.command import Commands
from infra.codec import EncryptionCodec
from infra.codec import describe_keyring
from infra.codec import keyring_for
from infra.codec_http import DEFAULT_MAX_BODY_BYTES
from infra.codec_http import CodecServer
from infra.codec_http import CodecServerConfig
from infra.settings import CODEC_NONE
from infra.settings import Settings
from infra.settings import SettingsError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8081


def ui_origin(ui_url: str) -> str:
    """The origin (``scheme://host:port``) a browser sends from the UI at ``ui_url``."""
    parts = urlsplit(ui_url)
    return f"{parts.scheme}://{parts.netloc}"


def server_config(args: argparse.Namespace, settings: Settings) -> CodecServerConfig:
    """The server the command line and the settings describe."""
    origins = tuple(args.ui_origin or [ui_origin(settings.temporal.ui_url)])
    return CodecServerConfig(
        host=args.host,
        port=args.port,
        allowed_origins=origins,
        token=settings.codec.server_token,
        max_body_bytes=args.max_body_bytes,
    )


def cmd_codec_server(args: argparse.Namespace, settings: Settings) -> int:
    """Serve encode and decode until SIGTERM or Ctrl-C."""
    if settings.codec.mode == CODEC_NONE:
        raise SettingsError("DOCPIPE_CODEC_MODE=none: there is nothing for a codec server to do")
    keyring = keyring_for(settings.codec)
    assert keyring is not None
    config = server_config(args, settings)
    try:
        server = CodecServer(config, EncryptionCodec(keyring))
    except OSError as exc:
        raise SettingsError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror}"
        ) from None
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.set())
    print(f"codec server  {server.url}  ({describe_keyring(settings.codec)})")
    print(f"UI origins    {', '.join(config.allowed_origins)}")
    print(f"CLI           temporal --codec-endpoint '{server.url}/{{namespace}}' ...", flush=True)
    try:
        stopped.wait()
    finally:
        server.stop()
    return 0


def add_commands(commands: Commands) -> None:
    """``docpipe codec-server``."""
    help = "serve Temporal's remote codec protocol: the UI and CLI show decrypted payloads"
    parser = commands.add("codec-server", help, cmd_codec_server)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    parser.add_argument(
        "--ui-origin",
        action="append",
        metavar="ORIGIN",
        help="origin of the Temporal UI allowed to call it (repeatable; default: the origin "
        "of DOCPIPE_TEMPORAL_UI_URL)",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="larger requests are refused (413)",
    )
