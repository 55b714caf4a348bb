"""Progress signals of a page check: bounded, spaced, and announcing a resumed attempt."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from pipeline.check.progress import ProgressSignals
from pipeline.models import PagesProgress


class _FakeHandle:
    id = "wf"

    def __init__(self, sent: list[PagesProgress]) -> None:
        self._sent = sent

    async def signal(self, name: str, update: PagesProgress) -> None:
        assert name == "pages_progress"
        self._sent.append(update)


class _FakeClient:
    def __init__(self) -> None:
        self.sent: list[PagesProgress] = []

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None) -> Any:
        return _FakeHandle(self.sent)


async def _signals(
    client: _FakeClient | None, *, pages: int, every: int, attempt: int, first: int, interval: float
) -> None:
    signals = ProgressSignals(
        client,  # type: ignore[arg-type]
        page_count=pages,
        attempt=attempt,
        first_page=first,
        min_interval_s=interval,
    )
    for done in range(first - 1 + every, pages + every, every):
        signals.advanced(min(done, pages))
        await asyncio.sleep(0)  # let the signal in flight finish
    await signals.close()


@pytest.mark.parametrize("pages", [30, 900, 100_000])
async def test_progress_signals_are_bounded_whatever_the_page_count(pages: int) -> None:
    client = _FakeClient()
    env = ActivityEnvironment()
    every = max(1, pages // 2000)
    await env.run(_signals, client, pages=pages, every=every, attempt=1, first=1, interval=0)
    counts = [update.pages_checked for update in client.sent]
    assert len(counts) <= 19 and counts == sorted(counts)
    assert all(0 < n < pages for n in counts)
    if pages >= 900:
        assert len(counts) == 19  # one per 5% step, the last pages come with the result


async def test_progress_signals_wait_between_and_announce_a_resumed_attempt() -> None:
    env = ActivityEnvironment()
    slow = _FakeClient()
    await env.run(_signals, slow, pages=1000, every=10, attempt=1, first=1, interval=60)
    assert slow.sent == []  # a fast document sends none
    resumed = _FakeClient()
    await env.run(_signals, resumed, pages=1000, every=10, attempt=3, first=401, interval=60)
    assert resumed.sent == [PagesProgress(pages_checked=400, attempt=3, resumed_from_page=401)]
    await env.run(_signals, None, pages=1000, every=10, attempt=3, first=401, interval=0)
