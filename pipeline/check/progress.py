"""How far a page check has got, signalled to its workflow: what operators watch move.

Signals are bounded (at most one per 5% of the pages and per interval), so the history
stays small whatever the page count; a failed signal is only logged.
"""

from __future__ import annotations

import asyncio
import logging
import time

from temporalio import activity
from temporalio.client import Client

from pipeline.models import PagesProgress

log = logging.getLogger(__name__)


class ProgressReporter:
    """Where a worker's page checks signal their progress, and how often at most.

    Args:
        client: the worker's Temporal client (None: no signals, for tests and tools).
        min_interval_s: least time between two signals of one attempt.
    """

    def __init__(self, client: Client | None, min_interval_s: float = 3.0) -> None:
        self._client = client
        self._min_interval_s = min_interval_s

    def for_attempt(self, *, page_count: int, attempt: int, first_page: int) -> ProgressSignals:
        """The signals of the running page-checking attempt (call inside the activity)."""
        return ProgressSignals(
            self._client,
            page_count=page_count,
            attempt=attempt,
            first_page=first_page,
            min_interval_s=self._min_interval_s,
        )


class ProgressSignals:
    """Signals ``pages_progress`` to the workflow while pages are checked.

    At most once per 5% of the pages and per ``min_interval_s`` (plus once when a retried
    attempt starts), so at most 20 signals per attempt, whatever the page count: the
    workflow history stays bounded. Fast documents send none. One signal is in flight at
    a time, and a failed signal is only logged: progress never fails a check.
    """

    STEPS = 20

    def __init__(
        self,
        client: Client | None,
        *,
        page_count: int,
        attempt: int,
        first_page: int,
        min_interval_s: float,
    ) -> None:
        info = activity.info()
        self._handle = (
            client.get_workflow_handle(info.workflow_id, run_id=info.workflow_run_id)
            if client is not None and info.workflow_id
            else None
        )
        self._page_count = max(page_count, 1)
        self._attempt = attempt
        self._first_page = first_page
        self._min_interval_s = min_interval_s
        self._step = (first_page - 1) * self.STEPS // self._page_count
        self._last = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        if attempt > 1:
            # A retried attempt says at once where it resumed.
            self._send(first_page - 1)

    def advanced(self, pages_done: int) -> None:
        """The checkpoint moved: ``pages_done`` pages from page 1 are durable."""
        if self._handle is None or pages_done >= self._page_count:
            return  # the activity's result reports the last pages
        step = pages_done * self.STEPS // self._page_count
        now = time.monotonic()
        if step <= self._step or now - self._last < self._min_interval_s:
            return
        if self._task is not None and not self._task.done():
            return
        self._step, self._last = step, now
        self._send(pages_done)

    def _send(self, pages_done: int) -> None:
        if self._handle is None:
            return
        update = PagesProgress(
            pages_checked=pages_done, attempt=self._attempt, resumed_from_page=self._first_page
        )
        self._task = asyncio.create_task(self._signal(update))

    async def _signal(self, update: PagesProgress) -> None:
        assert self._handle is not None
        try:
            await self._handle.signal("pages_progress", update)
        except Exception as exc:
            log.debug("progress signal to %s failed: %r", self._handle.id, exc)

    async def close(self) -> None:
        """Stop the signal in flight: the attempt is over, its result says the rest."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
