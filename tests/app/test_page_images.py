"""Pages are drawn in a bounded process: one that takes too long is killed and replaced,
and the renderer goes on drawing."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from app.page_images import PageRenderer
from app.page_images import RenderFailedError
from pipeline.pdf.render import RenderLimits
from pipeline.pdf.render import RenderRefusedError
from tests.support.hostile import slow_to_draw
from tests.support.pdfs import make_pdf

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def renderer() -> AsyncIterator[PageRenderer]:
    renderer = PageRenderer(RenderLimits(seconds=3.0))
    try:
        yield renderer
    finally:
        renderer.shutdown()


async def test_a_page_is_drawn_in_another_process(renderer: PageRenderer) -> None:
    png = await renderer.render(make_pdf(["hello"]), 1)
    assert png.startswith(PNG_MAGIC)
    assert os.getpid() not in await renderer.pids()


async def test_a_page_that_takes_too_long_kills_its_process_and_the_next_page_is_drawn(
    renderer: PageRenderer,
) -> None:
    [before] = await renderer.pids()
    with pytest.raises(RenderFailedError, match="longer than 3 s"):
        await renderer.render(slow_to_draw(), 1)
    [after] = await renderer.pids()
    assert after != before
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)
    assert (await renderer.render(make_pdf(["next"]), 1)).startswith(PNG_MAGIC)


async def test_a_refused_page_leaves_its_process_running(renderer: PageRenderer) -> None:
    [before] = await renderer.pids()
    with pytest.raises(RenderRefusedError, match="no page 2"):
        await renderer.render(make_pdf(["one"]), 2)
    assert await renderer.pids() == [before]
