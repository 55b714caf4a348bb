"""The Heartbeater: nothing sent by an activity done before its first interval, then the
latest details every interval, and new details at once."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from temporalio.testing import ActivityEnvironment

from pipeline.check.heartbeat import Heartbeater
from tests.support.polling import async_wait_for


def _env(beats: list[tuple[Any, ...]], timeout_s: float = 0.4) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_timeout=timedelta(seconds=timeout_s))
    env.on_heartbeat = lambda *details: beats.append(details)
    return env


async def test_an_activity_done_within_its_first_interval_sends_no_heartbeat() -> None:
    beats: list[tuple[Any, ...]] = []

    async def quick() -> None:
        async with Heartbeater("start"):
            await asyncio.sleep(0)

    # An interval of an hour: however slow the machine, the block ends first.
    await _env(beats, timeout_s=4 * 3600).run(quick)
    assert beats == []


async def test_the_latest_details_are_sent_every_interval_and_new_ones_at_once() -> None:
    beats: list[tuple[Any, ...]] = []

    async def working() -> None:
        async with Heartbeater({"next_page": 1}) as heartbeater:
            await async_wait_for(lambda: asyncio.sleep(0, result=len(beats) >= 2), 30, "beats")
            assert all(beat == ({"next_page": 1},) for beat in beats)
            heartbeater.details({"next_page": 26})
            assert beats[-1] == ({"next_page": 26},)
            count = len(beats)
            await async_wait_for(
                lambda: asyncio.sleep(0, result=len(beats) > count), 30, "a repeated beat"
            )
            assert beats[-1] == ({"next_page": 26},)

    await _env(beats).run(working)
