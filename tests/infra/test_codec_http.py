"""The codec server speaks Temporal's remote codec protocol, to the UI's origin only."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from infra.codec import ENCODING
from infra.codec import EncryptionCodec
from infra.codec_http import DEFAULT_MAX_PAYLOADS
from infra.codec_http import CodecServer
from infra.codec_http import CodecServerConfig
from infra.keyring import StaticKeyring
from tests.support.slow_clients import bytes_sent_before_closed

UI = "http://127.0.0.1:8233"
_TOKEN = "s3cret-token"
_TEXT = b'{"bucket": "documents", "key": "acme/secret.pdf"}'


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _body(data: bytes = _TEXT, **metadata: bytes) -> dict[str, Any]:
    meta = metadata or {"encoding": b"json/plain"}
    return {"payloads": [{"metadata": {k: _b64(v) for k, v in meta.items()}, "data": _b64(data)}]}


@pytest.fixture
def codec() -> EncryptionCodec:
    return EncryptionCodec(StaticKeyring(keys={"k1": os.urandom(32)}, active="k1"))


def _serve(codec: EncryptionCodec, **config: Any) -> Iterator[str]:
    server = CodecServer(CodecServerConfig(allowed_origins=(UI,), **config), codec)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def url(codec: EncryptionCodec) -> Iterator[str]:
    yield from _serve(codec)


@pytest.fixture
def guarded(codec: EncryptionCodec) -> Iterator[str]:
    yield from _serve(codec, token=_TOKEN, max_body_bytes=4096)


@pytest.fixture
def impatient(codec: EncryptionCodec) -> Iterator[str]:
    yield from _serve(codec, timeout_seconds=0.2)


def _request(method: str, path: str, headers: list[str], body: bytes = b"") -> bytes:
    """A request as its bytes, for what an HTTP client library would refuse to send."""
    head = "\r\n".join([f"{method} {path} HTTP/1.1", "Host: codec", *headers])
    return f"{head}\r\n\r\n".encode("latin-1") + body


def _exchange(url: str, request: bytes) -> bytes:
    """All the server sends back to ``request`` until it closes the connection.

    Raises:
        TimeoutError: the server sent nothing for 10 s and kept the connection open.
    """
    parts = urlsplit(url)
    received = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass  # closing with unread request bytes resets; what was answered is kept
    return received


def _responses(received: bytes) -> list[tuple[int, bytes]]:
    """The status and body of each answer one connection received, in order."""
    answers = []
    while received:
        head, _, rest = received.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)
        }
        length = int(headers.get("content-length", "0"))
        answers.append((int(status_line.split()[1]), rest[:length]))
        received = rest[length:]
    return answers


@pytest.mark.parametrize("prefix", ["", "/default"])
def test_encode_then_decode_gives_the_payload_back_under_either_path(url: str, prefix: str) -> None:
    encoded = requests.post(f"{url}{prefix}/encode", json=_body(), timeout=10)
    assert encoded.status_code == 200
    (sealed,) = encoded.json()["payloads"]
    assert base64.b64decode(sealed["metadata"]["encoding"]) == ENCODING
    assert b"secret.pdf" not in base64.b64decode(sealed["data"])
    decoded = requests.post(f"{url}{prefix}/decode", json=encoded.json(), timeout=10)
    assert decoded.status_code == 200
    assert decoded.json() == _body()


def test_the_ui_origin_is_allowed_by_preflight_and_on_the_answer(url: str) -> None:
    preflight = requests.options(
        f"{url}/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == UI
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert {"x-namespace", "authorization", "content-type"} <= {
        h.strip() for h in allowed.split(",")
    }
    answer = requests.post(
        f"{url}/decode", json=_body(), headers={"Origin": UI, "X-Namespace": "default"}, timeout=10
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == UI


def test_another_origin_is_refused_without_cors_headers(url: str) -> None:
    evil = {"Origin": "http://evil.example"}
    preflight = requests.options(f"{url}/decode", headers=evil, timeout=10)
    assert preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    answer = requests.post(f"{url}/decode", json=_body(), headers=evil, timeout=10)
    assert answer.status_code == 403
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_a_token_is_required_when_configured(guarded: str) -> None:
    assert requests.post(f"{guarded}/encode", json=_body(), timeout=10).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (
        requests.post(f"{guarded}/encode", json=_body(), headers=wrong, timeout=10).status_code
        == 401
    )
    right = {"Authorization": f"Bearer {_TOKEN}"}
    assert (
        requests.post(f"{guarded}/encode", json=_body(), headers=right, timeout=10).status_code
        == 200
    )


def test_a_body_over_the_limit_is_refused_unread(guarded: str) -> None:
    right = {"Authorization": f"Bearer {_TOKEN}"}
    answer = requests.post(f"{guarded}/encode", json=_body(b"x" * 8000), headers=right, timeout=10)
    assert answer.status_code == 413
    assert "4096" in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", '{"payloads": [...]}'),
        (b'{"payloads": [{"data": 12}]}', "not payloads"),
        (b'{"payloads": [{"metadata": {"encoding": 7}}]}', "not payloads"),
    ],
)
def test_a_malformed_request_gets_a_400_with_its_reason(url: str, body: bytes, reason: str) -> None:
    answer = requests.post(
        f"{url}/decode", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert answer.status_code == 400
    assert reason in answer.json()["error"]
    assert "Traceback" not in answer.text


def test_a_payload_of_an_unknown_key_gets_a_400_naming_the_key(url: str) -> None:
    body = _body(os.urandom(40), encoding=ENCODING, **{"encryption-key-id": b"k7"})
    body["payloads"][0]["metadata"]["encryption-compression"] = _b64(b"zlib")
    answer = requests.post(f"{url}/decode", json=body, timeout=10)
    assert answer.status_code == 400
    assert "'k7'" in answer.json()["error"]


def test_other_paths_are_not_found(url: str) -> None:
    answer = requests.post(f"{url}/a/b/decode", json=_body(), timeout=10)
    assert answer.status_code == 404
    assert json.loads(answer.text)["error"]


def test_it_listens_on_loopback_by_default(url: str) -> None:
    assert url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    ("lengths", "status", "reason"),
    [
        (["\N{SUPERSCRIPT TWO}"], 400, "not a byte count"),
        (["-1"], 400, "not a byte count"),
        (["0x2"], 400, "not a byte count"),
        (["2", "2"], 400, "more than once"),
        (["9" * 5000], 413, "larger than"),
    ],
)
def test_a_content_length_that_is_not_one_byte_count_is_refused_with_its_reason(
    url: str, lengths: list[str], status: int, reason: str
) -> None:
    headers = [f"Content-Length: {length}" for length in lengths]
    received = _exchange(url, _request("POST", "/decode", headers, b"{}"))
    ((answered, body),) = _responses(received)
    assert answered == status
    assert reason in json.loads(body)["error"]


@pytest.mark.parametrize("body", [b"[" * 200_000, b'{"payloads": ' + b"[" * 200_000])
def test_json_nested_too_deeply_gets_a_400(url: str, body: bytes) -> None:
    answer = requests.post(f"{url}/decode", data=body, timeout=10)
    assert answer.status_code == 400
    assert "nested too deeply" in answer.json()["error"]


_SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: codec\r\n\r\n"
_LENGTH = f"Content-Length: {len(_SMUGGLED)}"


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/decode", ["Origin: http://evil.example", _LENGTH], 403),
        ("POST", "/a/b/decode", [_LENGTH], 404),
        ("POST", "/decode", [_LENGTH], 401),
        ("OPTIONS", "/decode", [f"Origin: {UI}", _LENGTH], 204),
    ],
)
def test_a_body_left_unread_is_not_taken_for_the_next_request(
    guarded: str, method: str, path: str, headers: list[str], status: int
) -> None:
    received = _exchange(guarded, _request(method, path, headers, _SMUGGLED))
    assert [answered for answered, _ in _responses(received)] == [status]


def test_a_chunked_body_is_refused_rather_than_read_by_its_content_length(guarded: str) -> None:
    headers = [f"Authorization: Bearer {_TOKEN}", "Transfer-Encoding: chunked", "Content-Length: 5"]
    received = _exchange(guarded, _request("POST", "/decode", headers, b"0\r\n\r\n" + _SMUGGLED))
    ((status, body),) = _responses(received)
    assert status == 411
    assert "Transfer-Encoding" in json.loads(body)["error"]


def test_a_request_of_more_payloads_than_the_limit_is_refused(url: str) -> None:
    empty: dict[str, list[dict[str, str]]] = {"payloads": [{}] * DEFAULT_MAX_PAYLOADS}
    assert requests.post(f"{url}/encode", json=empty, timeout=10).status_code == 200
    empty["payloads"].append({})
    answer = requests.post(f"{url}/encode", json=empty, timeout=10)
    assert answer.status_code == 413
    assert f"more than {DEFAULT_MAX_PAYLOADS} payloads" in answer.json()["error"]


def test_a_body_that_stops_arriving_gets_a_408_and_the_connection_ends(impatient: str) -> None:
    received = _exchange(impatient, _request("POST", "/decode", ["Content-Length: 100"], b"{"))
    ((status, body),) = _responses(received)
    assert status == 408
    assert "stopped arriving" in json.loads(body)["error"]


def test_a_request_that_trickles_in_is_cut_off_at_its_deadline(impatient: str) -> None:
    # Each byte comes well within the 0.2 s read timeout; the whole request would take
    # 30 s, and must arrive within 0.4 s.
    slow = _request("POST", "/decode", [f"X-Slow: {'a' * 600}", "Content-Length: 2"], b"{}")
    parts = urlsplit(impatient)
    assert parts.hostname and parts.port
    sent = bytes_sent_before_closed(parts.hostname, parts.port, slow, every_s=0.05)
    assert sent < len(slow)


def test_a_connection_that_sends_nothing_is_closed(impatient: str) -> None:
    assert _exchange(impatient, b"") == b""


def test_a_client_that_hangs_up_mid_request_leaves_no_traceback(
    url: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="infra.codec_http")
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(_request("POST", "/decode", ["Content-Length: 100"], b"{"))
        # Closing with a zero linger resets the connection under the server's read.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    deadline = time.monotonic() + 10
    while not any("hung up" in record.getMessage() for record in caplog.records):
        assert time.monotonic() < deadline, "the server did not notice the client leave"
        time.sleep(0.01)
    assert "Traceback" not in capsys.readouterr().err
