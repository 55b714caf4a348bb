"""The codec server speaks Temporal's remote codec protocol, to the UI's origin only."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from infra.codec import ENCODING, EncryptionCodec
from infra.codec_http import CodecServer, CodecServerConfig
from infra.keyring import StaticKeyring

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
