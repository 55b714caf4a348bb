"""Capped exponential backoff with jitter: the one way docpipe waits between retries.

``backoff_delay`` is the schedule. ``Backoff.attempts`` is the loop around it, for every
caller that retries an infrastructure failure (the intake's steps, a process waiting for
Temporal to answer): it hands out tries, and waits the next delay between two of them::

    async for attempt in Backoff(initial_s=0.5, max_s=30).attempts():
        try:
            return await connect()
        except ConnectionError as exc:
            log.warning("%s; retry in %.1f s", exc, attempt.delay_s)

A try that returns or raises ends the loop; one that falls through is followed by a wait
and the next try. The wait is the caller's to choose (``until_set`` ends the loop when a
process stops); the jitter too, so that tests neither wait nor guess.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass

# 2**64 times any sensible initial delay is far beyond any cap; larger exponents overflow.
_MAX_EXPONENT = 64

# Waits so many seconds; False ends the loop instead of trying again.
Wait = Callable[[float], Awaitable[bool]]


def backoff_delay(
    attempt: int, *, initial_s: float, max_s: float, jitter: float, factor: float = 2.0
) -> float:
    """Seconds to wait before retry number ``attempt + 1``.

    The delay doubles from ``initial_s`` up to ``max_s``; half of it is randomised
    ("equal jitter") so that many tasks failing together do not retry in lockstep, while
    each still waits at least half the nominal delay.

    Args:
        attempt: failures so far, minus one (0 for the first retry).
        initial_s: nominal delay of the first retry.
        max_s: cap of the nominal delay.
        jitter: a number in [0, 1), e.g. ``random.random()``.
        factor: growth per attempt.
    """
    nominal = min(max_s, initial_s * factor ** min(max(attempt, 0), _MAX_EXPONENT))
    return nominal / 2 + nominal / 2 * jitter


async def sleep(seconds: float) -> bool:
    """The plain wait: sleep, then try again."""
    await asyncio.sleep(seconds)
    return True


def until_set(event: asyncio.Event) -> Wait:
    """A wait that ends as soon as ``event`` is set, and then ends the loop too."""

    async def wait(seconds: float) -> bool:
        if not event.is_set():
            try:
                async with asyncio.timeout(seconds):
                    await event.wait()
            except TimeoutError:
                return True
        return False

    return wait


@dataclass(frozen=True, kw_only=True)
class Attempt:
    """One try of a retried action."""

    # 1 for the first try.
    number: int
    # What is waited before the next try, should this one fail.
    delay_s: float
    # What was waited before this try, in all.
    waited_s: float


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How long to wait between tries: from ``initial_s``, times ``factor`` per failure,
    at most ``max_s``, half of it jittered."""

    initial_s: float
    max_s: float
    factor: float = 2.0

    def delay(self, failures: int, jitter: float) -> float:
        """Seconds to wait after ``failures`` failures (1 for the first), for a
        ``jitter`` in [0, 1)."""
        return backoff_delay(
            failures - 1,
            initial_s=self.initial_s,
            max_s=self.max_s,
            jitter=jitter,
            factor=self.factor,
        )

    def attempts(
        self, *, wait: Wait = sleep, jitter: Callable[[], float] = random.random
    ) -> Attempts:
        """The tries of one action, with this backoff between them (see the module).

        Args:
            wait: how to wait between two tries (default: sleep).
            jitter: draws a number in [0, 1) per try (default: ``random.random``).
        """
        return Attempts(self, wait=wait, jitter=jitter)


class Attempts:
    """The tries of one retried action, as an async iterator of ``Attempt``; endless
    unless its wait ends it.

    A class rather than an async generator: a loop left by ``return`` leaves nothing
    behind to finalise, which counts on the intake's path of every message.
    """

    def __init__(self, backoff: Backoff, *, wait: Wait, jitter: Callable[[], float]) -> None:
        self._backoff = backoff
        self._wait = wait
        self._jitter = jitter
        self._last: Attempt | None = None

    @property
    def waited_s(self) -> float:
        """Seconds waited between tries so far."""
        return self._last.waited_s if self._last is not None else 0.0

    def __aiter__(self) -> Attempts:
        return self

    async def __anext__(self) -> Attempt:
        last = self._last
        if last is not None and not await self._wait(last.delay_s):
            raise StopAsyncIteration
        number = last.number + 1 if last is not None else 1
        self._last = Attempt(
            number=number,
            delay_s=self._backoff.delay(number, self._jitter()),
            waited_s=last.waited_s + last.delay_s if last is not None else 0.0,
        )
        return self._last
