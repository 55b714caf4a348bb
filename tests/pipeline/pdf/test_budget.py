"""Time budgets: work past its budget is stopped (by an alarm, which rings again if a ring
is swallowed, or by the work's own checks), a spent budget runs nothing more, and a timer
the caller had running goes on afterwards."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.pdf.budget import OverBudget
from pipeline.pdf.budget import TimeBudget

# Far longer than any budget here: a loop that is not interrupted ends the test as failed.
_NEVER_S = 120.0


@pytest.fixture(autouse=True)
def callers_alarm() -> Iterator[None]:
    """No timer running when a test starts (the test runner's timeout sets one), and the
    runner's handler and timer as they were after it."""
    handler = signal.getsignal(signal.SIGALRM)
    delay, interval = signal.setitimer(signal.ITIMER_REAL, 0)
    yield
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, delay, interval)


def _busy_until(deadline: float) -> None:
    while time.monotonic() < deadline:
        pass


def test_a_block_that_runs_past_its_budget_is_interrupted() -> None:
    budget = TimeBudget(0.05)
    started = time.monotonic()
    with pytest.raises(OverBudget), budget.running():
        _busy_until(started + _NEVER_S)
    assert budget.spent
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_a_ring_swallowed_inside_the_block_is_followed_by_another() -> None:
    # As when the handler runs inside a finalizer during garbage collection, where Python
    # swallows what it raises.
    budget = TimeBudget(0.05)
    swallowed = 0
    with pytest.raises(OverBudget), budget.running():
        try:
            _busy_until(time.monotonic() + _NEVER_S)
        except OverBudget:
            swallowed += 1
        _busy_until(time.monotonic() + _NEVER_S)
    assert swallowed == 1
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_check_stops_work_that_calls_back_once_the_time_is_up() -> None:
    budget = TimeBudget(0.05)
    budget.check()
    with pytest.raises(OverBudget):
        while True:
            budget.check()
    assert budget.spent
    TimeBudget(None).check()


def test_a_spent_budget_runs_no_further_block() -> None:
    budget = TimeBudget(0.0)
    ran = False
    with pytest.raises(OverBudget), budget.running():
        ran = True
    assert not ran


def test_blocks_share_one_budget_and_one_that_ends_in_time_is_not_interrupted() -> None:
    budget = TimeBudget(_NEVER_S)
    for _ in range(3):
        with budget.running():
            time.sleep(0.01)
    assert not budget.spent
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_no_budget_sets_no_timer() -> None:
    with TimeBudget(None).running():
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    assert not TimeBudget(None).spent


def test_the_callers_timer_goes_on_after_the_block() -> None:
    rang: list[int] = []

    def callers(signum: int, frame: Any) -> None:
        rang.append(signum)

    signal.signal(signal.SIGALRM, callers)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    with TimeBudget(_NEVER_S).running():
        # Held back while the budget's timer runs: the budget's handler is in place.
        assert signal.getsignal(signal.SIGALRM) is not callers
    assert signal.getsignal(signal.SIGALRM) is callers
    assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.2
    deadline = time.monotonic() + _NEVER_S
    while not rang and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rang == [signal.SIGALRM]


def test_outside_the_main_thread_the_budget_is_kept_between_blocks() -> None:
    outcome: list[str] = []

    def work() -> None:
        budget = TimeBudget(0.05)
        with budget.running():  # no signal can be set here: the block is not interrupted
            time.sleep(0.1)
        try:
            with budget.running():
                outcome.append("ran")
        except OverBudget:
            outcome.append("refused")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(_NEVER_S)
    assert outcome == ["refused"]
