"""What the review page says to requests it cannot read, over HTTP through a real client on
loopback: a 400 with the reason, and nothing at ERROR in the log (the malformed fields of
a readable form: ``test_review_pages.py``)."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import aiohttp
import pytest

from app import review_pages
from app.review_auth import SessionSigner
from app.review_queue import PageToReview
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.review_pages import MemoryReviewLoop
from tests.support.review_pages import browser_like_session
from tests.support.review_pages import log_in
from tests.support.review_pages import review_page

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def review_loop() -> MemoryReviewLoop:
    loop = MemoryReviewLoop()
    loop.add("statement.pdf", make_pdf(["one", "two"]), [PageToReview(page=2, reasons=["r"])])
    return loop


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info is not None
    ]


@pytest.mark.parametrize("path", ["/login", "/decide"])
@pytest.mark.parametrize(
    ("content_type", "body", "said"),
    [
        (FORM, b"token=\xff&id=\xff", "the form is not text in utf-8"),
        (f"{FORM}; charset=nope", b"token=a&id=a", "names a charset that is not a text encoding"),
        ("multipart/form-data; boundary=q", b"token=a", "not as multipart/form-data"),
    ],
)
async def test_a_body_that_is_not_a_readable_form_is_a_400_with_its_reason(
    url: str,
    client: aiohttp.ClientSession,
    review_loop: MemoryReviewLoop,
    caplog: pytest.LogCaptureFixture,
    path: str,
    content_type: str,
    body: bytes,
    said: str,
) -> None:
    if path == "/decide":
        await log_in(client, url)
    headers = {"Origin": url, "Content-Type": content_type}
    async with client.post(
        f"{url}{path}", data=body, headers=headers, allow_redirects=False
    ) as response:
        assert response.status == 400
        assert said in await response.text()
        assert "Set-Cookie" not in response.headers
    assert _errors_logged(caplog) == []
    assert review_loop.decisions == []


async def test_a_body_its_content_encoding_cannot_decode_is_a_400_with_its_reason(
    url: str, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Origin": url, "Content-Type": FORM, "Content-Encoding": "gzip"}
    async with client.post(f"{url}/login", data=b"token=a", headers=headers) as response:
        assert response.status == 400
        assert "cannot be decoded as its Content-Encoding says" in await response.text()
    # Only the page's own loggers: aiohttp logs the same payload error again when, after
    # the response, it reads what is left of the body.
    assert [e for e in _errors_logged(caplog) if e.startswith("app.")] == []


@pytest.mark.parametrize("page", ["²", "①", "٣"])
async def test_a_page_number_in_other_digits_than_ascii_is_a_400(
    url: str,
    client: aiohttp.ClientSession,
    review_loop: MemoryReviewLoop,
    caplog: pytest.LogCaptureFixture,
    page: str,
) -> None:
    await log_in(client, url)
    params = {"id": next(iter(review_loop.items)), "page": page}
    async with client.get(f"{url}/page.png", params=params) as response:
        assert response.status == 400
        assert "page is a page number" in await response.text()
    assert _errors_logged(caplog) == []


async def test_a_signed_session_cookie_whose_expiry_is_not_ascii_digits_is_no_session(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Only the page's own key signs a cookie it parses: the test holds that key.
    signer = SessionSigner()
    monkeypatch.setattr(review_pages, "SessionSigner", lambda: signer)
    payload = "alice.c2Vzc2lvbg.²"
    cookie = f"{payload}.{signer._sign('session', payload)}"
    async with review_page(MemoryReviewLoop()) as url, browser_like_session() as client:
        headers = {"Cookie": f"{review_pages.COOKIE}={cookie}"}
        async with client.get(f"{url}/", headers=headers, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/login"
    assert _errors_logged(caplog) == []


async def test_a_client_that_hangs_up_in_the_middle_of_its_form_leaves_no_error(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    parts = urlsplit(url)
    _, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = (
        f"POST /login HTTP/1.1\r\nHost: {parts.netloc}\r\nOrigin: {url}\r\n"
        f"Content-Type: {FORM}\r\nContent-Length: 100\r\n\r\ntoken="
    )
    writer.write(head.encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    async def handled() -> bool:
        # The access log's line comes once the request is done with.
        return any("POST /login" in r.getMessage() for r in caplog.records)

    await async_wait_for(handled, 30, "the request handled")
    assert _errors_logged(caplog) == []
