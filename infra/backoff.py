"""Capped exponential backoff with jitter, for retrying infrastructure failures."""

from __future__ import annotations

# 2**64 times any sensible initial delay is far beyond any cap; larger exponents overflow.
_MAX_EXPONENT = 64


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
