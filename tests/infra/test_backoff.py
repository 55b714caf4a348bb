"""backoff_delay: doubles, stays under the cap, spreads with jitter."""

from __future__ import annotations

import pytest

from infra.backoff import backoff_delay


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
