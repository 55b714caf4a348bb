"""The one backoff: the delays double, stay under the cap and spread with jitter; the loop
tries, waits them between tries, and stops when its wait says so."""

from __future__ import annotations

import asyncio

import pytest

from infra.backoff import Backoff
from infra.backoff import backoff_delay
from infra.backoff import until_set


def _delay(attempt: int, jitter: float) -> float:
    return backoff_delay(attempt, initial_s=0.5, max_s=30.0, jitter=jitter)


def test_doubles_from_the_initial_delay() -> None:
    # Without jitter the delay is half the nominal one: 0.25, 0.5, 1, 2, ...
    assert [_delay(a, 0.0) for a in range(4)] == [0.25, 0.5, 1.0, 2.0]
    assert [_delay(a, 1.0) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]


def test_is_capped() -> None:
    assert _delay(6, 1.0) == 30.0  # nominal 32 s, capped
    assert _delay(10_000, 0.999) <= 30.0  # no overflow after days of failures


@pytest.mark.parametrize("attempt", [0, 3, 50])
def test_jitter_keeps_at_least_half_and_at_most_the_nominal_delay(attempt: int) -> None:
    nominal = min(30.0, 0.5 * 2**attempt)
    delays = [_delay(attempt, j / 10) for j in range(10)]
    assert all(nominal / 2 <= d <= nominal for d in delays)
    assert len(set(delays)) == 10  # different draws give different delays


def test_negative_attempt_is_the_first() -> None:
    assert _delay(-3, 0.0) == _delay(0, 0.0)


# --- the loop: Backoff.attempts ------------------------------------------------------------


class _Clock:
    """Records the waits instead of waiting; ``stop_after`` waits end the loop."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.waits: list[float] = []
        self._stop_after = stop_after

    async def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return self._stop_after is None or len(self.waits) < self._stop_after


_BACKOFF = Backoff(initial_s=1.0, max_s=4.0)


async def test_tries_until_one_succeeds_and_waits_the_schedule_between() -> None:
    clock = _Clock()
    tries = []
    async for attempt in _BACKOFF.attempts(wait=clock.wait, jitter=lambda: 1.0):
        tries.append(attempt)
        if attempt.number == 5:
            break
    assert [t.number for t in tries] == [1, 2, 3, 4, 5]
    # No wait before the first try, none after the last: 1, 2, 4, then capped at 4.
    assert clock.waits == [1.0, 2.0, 4.0, 4.0]
    assert [t.delay_s for t in tries] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert [t.waited_s for t in tries] == [0.0, 1.0, 3.0, 7.0, 11.0]


async def test_a_try_that_returns_ends_the_loop_without_waiting() -> None:
    clock = _Clock()

    async def first_try_works() -> str:
        async for _ in _BACKOFF.attempts(wait=clock.wait):
            return "done"
        raise AssertionError("the loop ended without a try")

    assert await first_try_works() == "done"
    assert clock.waits == []


async def test_jitter_is_drawn_for_every_try() -> None:
    draws = iter([0.0, 0.5, 1.0])
    attempts = _BACKOFF.attempts(wait=_Clock().wait, jitter=lambda: next(draws))
    delays = [(await anext(attempts)).delay_s for _ in range(3)]
    # Half the nominal delay at the least, all of it at the most.
    assert delays == [0.5, 1.5, 4.0]


async def test_a_wait_that_says_stop_ends_the_loop() -> None:
    clock = _Clock(stop_after=2)
    attempts = _BACKOFF.attempts(wait=clock.wait, jitter=lambda: 1.0)
    numbers = [attempt.number async for attempt in attempts]
    assert numbers == [1, 2]
    assert clock.waits == [1.0, 2.0]
    # What was waited in full: the wait that said stop does not count.
    assert attempts.waited_s == 1.0


async def test_until_set_waits_out_its_time_while_the_event_is_not_set() -> None:
    assert await until_set(asyncio.Event())(0) is True


async def test_until_set_ends_the_loop_once_the_event_is_set() -> None:
    stop = asyncio.Event()
    stop.set()
    assert await until_set(stop)(3600) is False


async def test_until_set_wakes_up_when_the_event_is_set_meanwhile() -> None:
    stop = asyncio.Event()

    async def wait_an_hour() -> bool:
        return await until_set(stop)(3600)

    waiting = asyncio.create_task(wait_an_hour())
    await asyncio.sleep(0)  # let it start waiting
    stop.set()
    assert await asyncio.wait_for(waiting, 10) is False
