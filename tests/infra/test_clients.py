"""What a person reads when a server does not answer: one line, and a hint."""

from __future__ import annotations

import asyncio

import pytest

from infra.backoff import Backoff
from infra.clients import ServerUnreachableError
from infra.clients import s3_unreachable
from infra.clients import temporal_client
from infra.clients import temporal_client_waiting
from infra.ports import free_ports
from infra.settings import CodecSettings
from infra.settings import S3Settings
from infra.settings import SettingsError
from infra.settings import TemporalSettings
from tests.support.polling import async_wait_for

_CLEAR = CodecSettings(mode="none")


async def test_an_unreachable_temporal_names_its_address_and_setting() -> None:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    with pytest.raises(ServerUnreachableError) as error:
        await temporal_client(TemporalSettings(address=address), _CLEAR)
    line = error.value.one_line()
    assert line == f"cannot reach Temporal at {address} (set by DOCPIPE_TEMPORAL_ADDRESS)"


def test_the_hint_is_given_where_the_setting_is_at_its_default() -> None:
    default = s3_unreachable(S3Settings(), OSError("refused")).one_line()
    assert default.endswith("; is `docpipe dev` running?")
    assert "DOCPIPE_S3_ENDPOINT_URL" in default and "http://127.0.0.1:4566" in default
    elsewhere = s3_unreachable(S3Settings(endpoint_url="https://s3.example"), OSError()).one_line()
    assert "docpipe dev" not in elsewhere


async def test_waiting_for_temporal_tries_again_until_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    stop = asyncio.Event()
    waiting = asyncio.create_task(
        temporal_client_waiting(
            TemporalSettings(address=address),
            _CLEAR,
            stop,
            backoff=Backoff(initial_s=0.05, max_s=0.1),
        )
    )

    async def tried_three_times() -> bool:
        return sum("retry in" in r.getMessage() for r in caplog.records) >= 3

    await async_wait_for(tried_three_times, 30, "three tries")
    stop.set()
    assert await asyncio.wait_for(waiting, 10) is None


async def test_no_temporal_client_is_built_without_a_keyring_unless_encryption_is_off() -> None:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    with pytest.raises(SettingsError, match="DOCPIPE_CODEC_MODE=none") as error:
        await temporal_client(TemporalSettings(address=address), CodecSettings())
    assert "\n" not in str(error.value)
