"""Waiting for a condition with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(check: Callable[[], T | None], seconds: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)


async def async_wait_for(
    check: Callable[[], Awaitable[T | None]], seconds: float, what: str, *, every: float = 0.1
) -> T:
    """Async twin of :func:`wait_for`; polls ``every`` so many seconds.

    A wait for something the server does only after a timeout (a retry after a heartbeat
    timeout) has no use for a tenth of a second: each poll costs the server and this
    process a request."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(every)
