"""The pages to review drawn by the review page, over HTTP through a real client on
loopback: served as PNG, a scan that lay sideways turned upright, and a page that draws
too long or too large refused with a reason while the page goes on serving."""

from __future__ import annotations

import io

from PIL import Image

from app.review_queue import PageToReview
from pipeline.pdf.render import RenderLimits
from tests.support.hostile import page_of_size
from tests.support.hostile import slow_to_draw
from tests.support.pdfs import make_pdf
from tests.support.review_pages import MemoryReviewLoop
from tests.support.review_pages import browser_like_session
from tests.support.review_pages import log_in
from tests.support.review_pages import review_page


async def test_a_page_to_review_is_served_as_a_png() -> None:
    review_loop = MemoryReviewLoop()
    pages = [PageToReview(page=2, reasons=["blank"])]
    check = review_loop.add("three.pdf", make_pdf(["one", "two", "three"]), pages)
    async with review_page(review_loop) as url, browser_like_session() as client:
        await log_in(client, url)
        params = {"id": check.workflow_id, "page": "2"}
        async with client.get(f"{url}/page.png", params=params) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
            assert (await response.read()).startswith(b"\x89PNG")


async def test_a_scan_that_lay_sideways_is_served_and_said_turned_upright() -> None:
    review_loop = MemoryReviewLoop()
    review_loop.add("scan.pdf", make_pdf(["Page one"]), [PageToReview(page=1, reasons=["r"])])
    review_loop.add(
        "lying.pdf", make_pdf(["Page one"]), [PageToReview(page=1, reasons=["r"], turn=90)]
    )
    upright, lying = review_loop.items
    async with review_page(review_loop) as url, browser_like_session() as client:
        await log_in(client, url)
        sizes = []
        for workflow_id in (upright, lying):
            params = {"id": workflow_id, "page": "1"}
            async with client.get(f"{url}/page.png", params=params) as response:
                assert response.status == 200
                with Image.open(io.BytesIO(await response.read())) as image:
                    sizes.append(image.size)
            async with client.get(f"{url}/check", params={"id": workflow_id}) as response:
                said = "shown turned 90&deg; clockwise" in await response.text()
                assert said == (workflow_id == lying)
    assert sizes[1] == sizes[0][::-1] and sizes[0][1] > sizes[0][0]


async def test_a_page_that_draws_too_long_is_a_503_and_the_page_goes_on_serving() -> None:
    review_loop = MemoryReviewLoop()
    first_page = [PageToReview(page=1, reasons=["blank"])]
    slow = review_loop.add("slow.pdf", slow_to_draw(), first_page)
    fine = review_loop.add("fine.pdf", make_pdf(["fine"]), first_page)
    async with (
        review_page(review_loop, RenderLimits(seconds=2.0)) as url,
        browser_like_session() as client,
    ):
        await log_in(client, url)
        params = {"id": slow.workflow_id, "page": "1"}
        async with client.get(f"{url}/page.png", params=params) as response:
            assert response.status == 503
            assert "longer than 2 s" in await response.text()
        async with client.get(f"{url}/") as response:
            assert response.status == 200
        params = {"id": fine.workflow_id, "page": "1"}
        async with client.get(f"{url}/page.png", params=params) as response:
            assert response.status == 200
            assert (await response.read()).startswith(b"\x89PNG")


async def test_a_page_beyond_the_pixel_budget_is_refused_with_a_reason() -> None:
    review_loop = MemoryReviewLoop()
    sliver = review_loop.add(
        "sliver.pdf",
        page_of_size(10, 14_400, user_unit=1000),
        [PageToReview(page=1, reasons=["blank"])],
    )
    async with review_page(review_loop) as url, browser_like_session() as client:
        await log_in(client, url)
        params = {"id": sliver.workflow_id, "page": "1"}
        async with client.get(f"{url}/page.png", params=params) as response:
            assert response.status == 422
            assert "pixel budget" in await response.text()
