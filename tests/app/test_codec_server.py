"""``docpipe codec-server``: who may reach it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from infra.codec_http import CodecServerConfig
from infra.settings import SettingsError


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_on_loopback_it_needs_no_token(host: str) -> None:
    CodecServerConfig(host=host, port=0)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "codec.internal"])
def test_elsewhere_it_needs_a_token(host: str) -> None:
    with pytest.raises(SettingsError, match="DOCPIPE_CODEC_SERVER_TOKEN"):
        CodecServerConfig(host=host, port=0)
    CodecServerConfig(host=host, port=0, token="t0ken")


def test_the_command_refuses_to_listen_on_every_address_without_a_token() -> None:
    key = base64.b64encode(os.urandom(32)).decode()
    env = {
        **os.environ,
        "DOCPIPE_CODEC_KEYS": f"k1:{key}",
        "DOCPIPE_CODEC_ACTIVE_KEY": "k1",
        "DOCPIPE_CODEC_SERVER_TOKEN": "",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app", "codec-server", "--host", "0.0.0.0", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "DOCPIPE_CODEC_SERVER_TOKEN" in done.stderr
    assert key not in done.stderr + done.stdout
