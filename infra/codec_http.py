"""Temporal's remote codec protocol over HTTP, so that people read what docpipe encrypted.

The Temporal Web UI (``--ui-codec-endpoint``) and CLI (``--codec-endpoint``) send the
payloads they show to ``POST /decode`` (and ``/encode`` for what they send), also under
``/{namespace}/``, as JSON ``{"payloads": [{"metadata": {..base64..}, "data": base64}]}``,
and get the same shape back. The UI calls it from the browser: only its origin may (CORS,
preflight included). A bearer token may be required; the body size and the number of
payloads are limited; a request that is not the protocol gets a 4xx with its reason, never a
traceback, and a connection that goes silent is closed.

It runs in a thread of the process that starts it: ``docpipe codec-server``, or the
embedded stack for the demo.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.common.v1 import Payloads

from infra.codec import EncryptionCodec
from infra.codec import PayloadDecodeError
from infra.keyring import KeyringError
from infra.ports import is_loopback_host
from infra.settings import SettingsError
from infra.small_http import DEFAULT_MAX_CONNECTIONS
from infra.small_http import BoundedHTTPServer
from infra.small_http import DeadlineHandler
from infra.small_http import bearer_matches
from infra.small_http import serve_in_thread

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
# The UI and the CLI send one Payloads field per request (the arguments or the result of one
# call in one history event): a handful. Each payload costs ~20 us of CPU and ~180 bytes of
# answer even when empty, so without a cap an 8 MiB body of "{}," costs minutes and gigabytes.
DEFAULT_MAX_PAYLOADS = 1000
# Seconds a connection may stay silent, mid-request or between requests, before it is
# closed; a request must arrive whole within twice that (infra.small_http).
DEFAULT_TIMEOUT_SECONDS = 30.0
_OPERATIONS = ("encode", "decode")
# The headers the UI and CLI send besides the body's type.
_ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"


@dataclass(frozen=True, kw_only=True)
class CodecServerConfig:
    """Where the codec server listens and whom it serves."""

    host: str = "127.0.0.1"
    port: int = 0
    # The Temporal UI's origins (scheme://host:port); browsers elsewhere are refused.
    allowed_origins: tuple[str, ...] = ()
    # Bearer token every encode and decode must carry; None: none required.
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_payloads: int = DEFAULT_MAX_PAYLOADS
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    # Connections served at once (a browser keeps six open); more are answered 503.
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def __post_init__(self) -> None:
        # Anyone who can call a codec server can decrypt every payload.
        if self.token is None and not is_loopback_host(self.host):
            raise SettingsError(
                f"a codec server on {self.host} would let anyone who reaches it decrypt "
                "every payload: set DOCPIPE_CODEC_SERVER_TOKEN (and serve it behind TLS), "
                "or keep it on 127.0.0.1"
            )


class CodecRequestError(ValueError):
    """A request the codec server refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def operation_of(path: str) -> str:
    """``encode`` or ``decode`` for ``/encode``, ``/{namespace}/decode``, ...

    Raises:
        CodecRequestError: any other path (404).
    """
    parts = [part for part in path.split("?", 1)[0].split("/") if part]
    if 1 <= len(parts) <= 2 and parts[-1] in _OPERATIONS:
        return parts[-1]
    raise CodecRequestError(HTTPStatus.NOT_FOUND, "the codec server serves /encode and /decode")


def content_length(values: list[str], limit: int) -> int:
    """The body's size from a request's ``Content-Length`` header values.

    Raises:
        CodecRequestError: no value (411); several, or one that is not a byte count (400);
            more than ``limit`` (413).
    """
    if not values:
        raise CodecRequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
    if len(values) > 1:
        raise CodecRequestError(HTTPStatus.BAD_REQUEST, "Content-Length is given more than once")
    text = values[0].strip()
    # str.isdigit() also holds for digits such as "²" that int() refuses.
    if not (text.isascii() and text.isdigit()):
        raise CodecRequestError(
            HTTPStatus.BAD_REQUEST, f"Content-Length is not a byte count: {text[:20]!r}"
        )
    # Digits are counted first: int() refuses a string of more than 4300.
    if len(text.lstrip("0")) > len(str(limit)) or int(text) > limit:
        raise CodecRequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body is larger than {limit} bytes"
        )
    return int(text)


def transcode(
    codec: EncryptionCodec,
    operation: str,
    body: bytes,
    *,
    max_payloads: int = DEFAULT_MAX_PAYLOADS,
) -> bytes:
    """The protocol's answer to one request body.

    Raises:
        CodecRequestError: the body is not ``{"payloads": [...]}``, or a payload cannot be
            decoded (its key ID is unknown, or it fails authentication), as a 400; it holds
            more than ``max_payloads`` payloads, as a 413.
    """
    try:
        document = json.loads(body)
    except RecursionError:
        # Not a ValueError: the parser gives up on nesting deeper than the recursion limit.
        raise CodecRequestError(HTTPStatus.BAD_REQUEST, "the body is nested too deeply") from None
    except ValueError:
        raise CodecRequestError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("payloads"), list):
        raise CodecRequestError(HTTPStatus.BAD_REQUEST, 'the body must be {"payloads": [...]}')
    if len(document["payloads"]) > max_payloads:
        raise CodecRequestError(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"more than {max_payloads} payloads in one request",
        )
    payloads = Payloads()
    try:
        json_format.ParseDict(document, payloads)
    except json_format.ParseError as exc:
        raise CodecRequestError(HTTPStatus.BAD_REQUEST, f"not payloads: {exc}") from None
    convert: Callable[[Payload], Payload] = (
        codec.encrypt if operation == "encode" else codec.decrypt
    )
    try:
        answer = Payloads(payloads=[convert(payload) for payload in payloads.payloads])
    except (KeyringError, PayloadDecodeError) as exc:
        raise CodecRequestError(HTTPStatus.BAD_REQUEST, str(exc)) from None
    return json.dumps(json_format.MessageToDict(answer)).encode()


class _CodecHandler(DeadlineHandler):
    server: _CodecHTTPServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        # Without it a client that stops sending, or sends slowly, holds this thread.
        self.timeout_seconds = self.server.config.timeout_seconds
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("codec server: " + format, *args)

    def _origin_allowed(self) -> bool | None:
        """None without an Origin header (the CLI); else whether it is the UI's."""
        origin = self.headers.get("Origin")
        if origin is None:
            return None
        return origin in self.server.config.allowed_origins

    def _answer(
        self, status: HTTPStatus, body: bytes = b"", *, cors: bool = False, close: bool = False
    ) -> None:
        if not self.arrived():
            return
        self.send_response(status)
        if close:
            self.send_header("Connection", "close")
        if cors:
            self.send_header("Access-Control-Allow-Origin", self.headers["Origin"])
            self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", _ALLOWED_HEADERS)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.send_header("Access-Control-Max-Age", "600")
            self.send_header("Vary", "Origin")
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, error: CodecRequestError, *, cors: bool) -> None:
        # Most refusals come before the body is read, and on a kept-alive connection its bytes
        # would be read as the next request: the connection ends with the answer.
        body = json.dumps({"error": str(error)}).encode()
        self._answer(error.status, body, cors=cors, close=True)

    def _declares_body(self) -> bool:
        return (
            "Transfer-Encoding" in self.headers
            or self.headers.get("Content-Length", "0").strip() != "0"
        )

    def do_OPTIONS(self) -> None:
        allowed = self._origin_allowed()
        try:
            operation_of(self.path)
        except CodecRequestError as error:
            self._refuse(error, cors=bool(allowed))
            return
        if not allowed:
            self._refuse(CodecRequestError(HTTPStatus.FORBIDDEN, "origin not allowed"), cors=False)
            return
        # A preflight has no body; the bytes of one that declares one are not left unread.
        self._answer(HTTPStatus.NO_CONTENT, cors=True, close=self._declares_body())

    def do_POST(self) -> None:
        allowed = self._origin_allowed()
        cors = bool(allowed)
        try:
            if allowed is False:
                raise CodecRequestError(HTTPStatus.FORBIDDEN, "origin not allowed")
            operation = operation_of(self.path)
            self._authenticate()
            body = self._body()
            answer = transcode(
                self.server.codec, operation, body, max_payloads=self.server.config.max_payloads
            )
        except CodecRequestError as error:
            self._refuse(error, cors=cors)
            return
        self._answer(HTTPStatus.OK, answer, cors=cors)

    def _authenticate(self) -> None:
        token = self.server.config.token
        if token is None:
            return
        if not bearer_matches(self.headers, token):
            raise CodecRequestError(HTTPStatus.UNAUTHORIZED, "a valid bearer token is required")

    def _body(self) -> bytes:
        if "Transfer-Encoding" in self.headers:
            # Read by its Content-Length, a chunked body would leave bytes to be read as a
            # request; the UI and the CLI always send a Content-Length.
            raise CodecRequestError(
                HTTPStatus.LENGTH_REQUIRED, "send a Content-Length, not a Transfer-Encoding"
            )
        values = self.headers.get_all("Content-Length") or []
        length = content_length(values, self.server.config.max_body_bytes)
        try:
            body = self.rfile.read(length)
        except TimeoutError:
            raise CodecRequestError(
                HTTPStatus.REQUEST_TIMEOUT,
                f"the body stopped arriving for {self.server.config.timeout_seconds:g} s",
            ) from None
        if len(body) < length:
            raise CodecRequestError(
                HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of {length} bytes"
            )
        return body


class _CodecHTTPServer(BoundedHTTPServer):
    def __init__(self, config: CodecServerConfig, codec: EncryptionCodec) -> None:
        self.config = config
        self.codec = codec
        super().__init__(
            (config.host, config.port), _CodecHandler, max_connections=config.max_connections
        )

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up before its answer is no fault of the server's: no traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("codec server: %s hung up: %r", client_address, error)
            return
        super().handle_error(request, client_address)


class CodecServer:
    """A running codec server; :meth:`stop` ends it.

    Raises:
        OSError: its address is taken (on construction).
    """

    def __init__(self, config: CodecServerConfig, codec: EncryptionCodec) -> None:
        self._server = _CodecHTTPServer(config, codec)
        self._thread = serve_in_thread(self._server, "codec-server")

    @property
    def url(self) -> str:
        """Where it listens, e.g. ``http://127.0.0.1:8235``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stop(self) -> None:
        """Stop serving and close the socket. Safe to repeat."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
