"""Time budgets for work a parser process cuts short rather than fail a document on.

Some work on an untrusted document has no bound of its own that holds its time: pyHanko's
analysis of the changes after a signature, pypdf reading the text of an attached PDF. A
:class:`TimeBudget` gives such work the seconds it may take; what runs out of them is
stopped with :class:`OverBudget`, and the caller reports it as not done, instead of the
whole inspection or page timing out (and its parser process being replaced).

Two ways to stop it:

- :meth:`TimeBudget.check`, called by the work itself between its steps (pypdf calls back
  before each operator it reads). Nothing else is touched, in any thread.
- :meth:`TimeBudget.running`, for work that calls nothing back (pyHanko): a ``SIGALRM``
  raises in the main thread wherever the work is. A signal handler may run inside a
  finalizer (a weakref callback during garbage collection), where Python swallows what
  it raises, so the alarm rings again every ``RERING_S`` until the block is over. In any
  other thread the budget is kept between blocks only. Parser processes run their work in
  the main thread.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

# Once the time is up, how often the alarm rings again until the block is over.
RERING_S = 0.02
# The least delay a timer that was running before a block is given back, in seconds.
_RESUMED_TIMER_S = 0.001


class OverBudget(BaseException):
    """The budget ran out. A BaseException: the libraries whose work is interrupted catch
    Exception to describe their own errors, and must not take this for one."""


class TimeBudget:
    """``seconds`` from now, for one or more blocks of work in turn; None: no limit."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._deadline = None if seconds is None else time.monotonic() + seconds

    @property
    def spent(self) -> bool:
        """True once the time is up."""
        return self._deadline is not None and time.monotonic() >= self._deadline

    def check(self) -> None:
        """Raises :class:`OverBudget` once the time is up."""
        if self.spent:
            raise OverBudget

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Run the block in the time left.

        Raises:
            OverBudget: no time was left, or it ran out inside the block.
        """
        if self._deadline is None:
            yield
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise OverBudget
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        armed = True

        def ring(signum: int, frame: Any) -> None:
            if armed:
                raise OverBudget

        previous = signal.signal(signal.SIGALRM, ring)
        started = time.monotonic()
        outer_delay, outer_interval = signal.setitimer(signal.ITIMER_REAL, left, RERING_S)
        try:
            yield
        finally:
            # A ring that comes before it is disarmed raises here, once the block is over:
            # it is caught, and rings after that do nothing. (Not contextlib.suppress: a
            # ring could come in its __enter__ call, before it protects anything.)
            while armed:
                try:  # noqa: SIM105
                    armed = False
                except OverBudget:
                    pass
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if outer_delay > 0:
                # A timer of the caller's (a test's timeout) was running: it goes on, with
                # what it had left, under its own handler.
                resumed = max(outer_delay - (time.monotonic() - started), _RESUMED_TIMER_S)
                signal.setitimer(signal.ITIMER_REAL, resumed, outer_interval)
