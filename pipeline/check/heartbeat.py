"""One heartbeater per activity: the activity says what its details are, never when to beat.

Temporal notices a dead worker only through missing heartbeats, and cancels an activity
only through a heartbeat's answer. The worker's throttle
(``DOCPIPE_PIPELINE_HEARTBEAT_THROTTLE_S``) decides how often heartbeats really reach the
server; this only makes sure there is always a fresh one to send.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from temporalio import activity

# Without a heartbeat timeout (an activity started without one), beat this often anyway:
# cancellation still arrives through heartbeats.
_DEFAULT_INTERVAL_S = 5.0


class Heartbeater:
    """Heartbeats the latest details while the block runs, every quarter of the timeout
    (the first a quarter in).

    Use it as ``async with Heartbeater() as beat:``, and call ``beat.details(...)`` when
    the details change: they are sent at once (as far as the throttle lets them) and
    repeated until they change again.
    """

    def __init__(self, *details: Any) -> None:
        self._details = details
        self._task: asyncio.Task[None] | None = None

    def details(self, *details: Any) -> None:
        """Make ``details`` the activity's heartbeat details and heartbeat them now."""
        self._details = details
        activity.heartbeat(*details)

    async def _beat(self, interval_s: float) -> None:
        # The first beat after an interval: an activity done sooner (a small document)
        # costs the server no heartbeat at all, and its timeout is four intervals away.
        while True:
            await asyncio.sleep(interval_s)
            activity.heartbeat(*self._details)

    async def __aenter__(self) -> Heartbeater:
        timeout = activity.info().heartbeat_timeout
        interval = timeout.total_seconds() / 4 if timeout else _DEFAULT_INTERVAL_S
        self._task = asyncio.create_task(self._beat(interval))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
