"""The review page over HTTP, through a real client on loopback: who may use it, which
POSTs it takes, what it says to malformed requests, and what its HTML holds (the page
images it draws: ``test_review_pages_images.py``; requests it cannot read at all:
``test_review_pages_malformed.py``)."""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid

import aiohttp
import pytest
from yarl import URL

from app.review_queue import PageToReview
from pipeline.review import ReviewAction
from tests.support.pdfs import make_pdf
from tests.support.review_pages import ALICE_TOKEN
from tests.support.review_pages import MemoryReviewLoop
from tests.support.review_pages import browser_like_session
from tests.support.review_pages import log_in
from tests.support.review_pages import review_page

SECRET_TEXT = "Account 4417-1234-5678-9113 belongs to Jane Roe"
MASKED = "4417 **** **** 9113"


@pytest.fixture
def review_loop() -> MemoryReviewLoop:
    loop = MemoryReviewLoop()
    loop.add(
        "statement.pdf",
        make_pdf(["Cover page", SECRET_TEXT, "Last page"]),
        [PageToReview(page=2, reasons=["sensitive data: card number"], samples=[MASKED])],
    )
    return loop


def _workflow_id(review_loop: MemoryReviewLoop) -> str:
    return next(iter(review_loop.items))


def _fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


async def _decision_form(
    client: aiohttp.ClientSession, url: str, workflow_id: str
) -> dict[str, str]:
    async with client.get(f"{url}/check", params={"id": workflow_id}) as response:
        assert response.status == 200
        return _fields(await response.text())


# -- authentication -----------------------------------------------------------------------


async def test_without_a_session_pages_redirect_to_the_login_and_the_rest_is_refused(
    url: str, client: aiohttp.ClientSession, review_loop: MemoryReviewLoop
) -> None:
    async with client.get(f"{url}/", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/login"
    workflow_id = _workflow_id(review_loop)
    async with client.get(f"{url}/page.png", params={"id": workflow_id, "page": "2"}) as response:
        assert response.status == 401
    data = {"id": workflow_id, "action": "approve", "decision_id": str(uuid.uuid4())}
    async with client.post(f"{url}/decide", data=data, headers={"Origin": url}) as response:
        assert response.status == 401
    assert review_loop.decisions == []


async def test_a_wrong_token_does_not_log_in(url: str, client: aiohttp.ClientSession) -> None:
    async with client.post(
        f"{url}/login", data={"token": "x" * 40}, headers={"Origin": url}, allow_redirects=False
    ) as response:
        assert response.status == 401
        assert "Unknown token" in await response.text()
        assert "Set-Cookie" not in response.headers
    async with client.get(f"{url}/", allow_redirects=False) as response:
        assert response.status == 303


async def test_a_good_token_sets_a_strict_http_only_session_cookie_and_shows_the_queue(
    url: str, client: aiohttp.ClientSession, review_loop: MemoryReviewLoop
) -> None:
    async with client.post(
        f"{url}/login",
        data={"token": "alice-token-0123456789abcdefghij"},
        headers={"Origin": url},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    async with client.get(f"{url}/") as response:
        assert response.status == 200
        html = await response.text()
    assert "documents/inbox/statement.pdf@e1" in html
    assert ">alice<" in html


async def test_a_forged_session_cookie_is_not_a_session(
    url: str, client: aiohttp.ClientSession
) -> None:
    await log_in(client, url)
    [cookie] = list(client.cookie_jar)
    reviewer, rest = cookie.value.split(".", 1)
    assert reviewer == "alice"
    client.cookie_jar.clear()
    client.cookie_jar.update_cookies({cookie.key: f"bob.{rest}"}, response_url=URL(url))
    async with client.get(f"{url}/", allow_redirects=False) as response:
        assert response.status == 303


# -- CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("csrf", "origin", "said"),
    [
        (None, "self", "CSRF token is missing or wrong"),
        ("wrong", "self", "CSRF token is missing or wrong"),
        ("right", "http://evil.example", "requests from http://evil.example are not accepted"),
        ("right", None, "no Origin header"),
    ],
)
async def test_a_decision_without_the_session_csrf_token_or_from_another_origin_is_refused(
    url: str,
    client: aiohttp.ClientSession,
    review_loop: MemoryReviewLoop,
    csrf: str | None,
    origin: str | None,
    said: str,
) -> None:
    await log_in(client, url)
    form = await _decision_form(client, url, _workflow_id(review_loop))
    if csrf is None:
        del form["csrf"]
    elif csrf == "wrong":
        form["csrf"] = "A" * len(form["csrf"])
    headers = {"Origin": url if origin == "self" else origin} if origin else {}
    form["action"] = "approve"
    async with client.post(
        f"{url}/decide", data=form, headers=headers, skip_auto_headers=["Origin"]
    ) as response:
        assert response.status == 403
        assert said in await response.text()
    assert review_loop.decisions == []


async def test_the_reviewer_is_the_one_logged_in_whatever_the_form_says(
    url: str, client: aiohttp.ClientSession, review_loop: MemoryReviewLoop
) -> None:
    await log_in(client, url)
    workflow_id = _workflow_id(review_loop)
    form = await _decision_form(client, url, workflow_id)
    form |= {"action": "approve", "reviewer": "mallory", "note": "looks fine"}
    async with client.post(f"{url}/decide", data=form, headers={"Origin": url}) as response:
        assert response.status == 200
        assert "pass" in await response.text()
    [(decided, decision)] = review_loop.decisions
    assert decided == workflow_id
    assert decision.reviewer == "alice"
    assert decision.action == ReviewAction.APPROVE
    assert decision.pages_viewed == [2]
    assert decision.note == "looks fine"


# -- malformed requests -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status", "said"),
    [
        ({"action": "maybe"}, 400, "action is approve or reject"),
        ({"action": "reject"}, 400, "reject_reason is required"),
        ({"action": "reject", "reject_reason": "bored"}, 400, "reject_reason is one of"),
        ({"action": "reject", "reject_reason": "other"}, 400, "as other needs a note"),
        ({"action": "approve", "decision_id": "1; drop"}, 400, "decision_id is a UUID"),
        ({"action": "approve", "pages_viewed": "1,x"}, 400, "pages_viewed is a comma-separated"),
        # Page numbers as the page images take them: ASCII digits, from 1.
        ({"action": "approve", "pages_viewed": "1,\u0663"}, 400, "pages_viewed is a comma-"),
        ({"action": "approve", "pages_viewed": "1,0"}, 400, "pages_viewed is a comma-"),
        ({"action": "approve", "pages_viewed": "1,-1"}, 400, "pages_viewed is a comma-"),
        ({"action": "approve", "note": "n" * 2001}, 400, "note is longer than 2000"),
        ({"action": "approve", "id": "docpipe/nothing@1"}, 404, "no check docpipe/nothing@1"),
    ],
)
async def test_a_malformed_decision_gets_a_4xx_with_its_reason(
    url: str,
    client: aiohttp.ClientSession,
    review_loop: MemoryReviewLoop,
    change: dict[str, str],
    status: int,
    said: str,
) -> None:
    await log_in(client, url)
    form = await _decision_form(client, url, _workflow_id(review_loop)) | change
    async with client.post(f"{url}/decide", data=form, headers={"Origin": url}) as response:
        assert response.status == status
        assert said in await response.text()
    assert review_loop.decisions == []


@pytest.mark.parametrize(
    ("path", "params", "status", "said"),
    [
        ("/check", {}, 400, "id is required"),
        ("/check", {"id": "docpipe/nothing@1"}, 404, "no check waits for a decision"),
        ("/page.png", {"id": "W", "page": "two"}, 400, "page is a page number"),
        ("/page.png", {"id": "W", "page": "3"}, 404, "page 3 is not among the pages to review"),
    ],
)
async def test_a_malformed_page_request_gets_a_4xx_with_its_reason(
    url: str,
    client: aiohttp.ClientSession,
    review_loop: MemoryReviewLoop,
    path: str,
    params: dict[str, str],
    status: int,
    said: str,
) -> None:
    await log_in(client, url)
    params = {k: _workflow_id(review_loop) if v == "W" else v for k, v in params.items()}
    async with client.get(f"{url}{path}", params=params) as response:
        assert response.status == status
        assert said in await response.text()


async def test_a_body_over_the_limit_is_refused(url: str, client: aiohttp.ClientSession) -> None:
    await log_in(client, url)
    async with client.post(
        f"{url}/decide", data={"note": "n" * 200_000}, headers={"Origin": url}
    ) as response:
        assert response.status == 413


# -- what the pages hold ------------------------------------------------------------------


async def test_the_check_page_holds_the_masked_sample_never_the_document_text(
    url: str, client: aiohttp.ClientSession, review_loop: MemoryReviewLoop
) -> None:
    await log_in(client, url)
    async with client.get(f"{url}/check", params={"id": _workflow_id(review_loop)}) as response:
        html = await response.text()
        headers = response.headers
    assert MASKED in html
    assert "4417-1234" not in html
    assert "Jane Roe" not in html
    assert "Cover page" not in html
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    # Under no-referrer, browsers post forms with "Origin: null", which the page refuses.
    assert headers["Referrer-Policy"] == "same-origin"
    csp = headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "<script>" not in html


async def test_the_check_page_shows_what_the_parts_outside_the_pages_hold() -> None:
    review_loop = MemoryReviewLoop()
    pages = [PageToReview(page=1, reasons=["sensitive_data"])]
    found = {
        "metadata": ["email 1 (j***@e***.com)"],
        "attachments": ["iban 1 (GB** **** **** **** **54 32)"],
        "form_fields": ["us_ssn 1"],
        "outline": ["phone 1"],
    }
    authored = review_loop.add("authored.pdf", make_pdf(["Page"]), pages, found).workflow_id
    plain = review_loop.add("plain.pdf", make_pdf(["Page one"]), pages).workflow_id
    async with review_page(review_loop) as url, browser_like_session() as client:
        await log_in(client, url)
        for workflow_id in (authored, plain):
            async with client.get(f"{url}/check", params={"id": workflow_id}) as response:
                html = await response.text()
            shown = "In the document's metadata" in html and "j***@e***.com" in html
            shown &= "In the files attached to it" in html and "GB** ****" in html
            shown &= "In form fields that no page shows: <code>us_ssn 1</code>" in html
            shown &= "In its bookmarks: <code>phone 1</code>" in html
            assert shown == (workflow_id == authored)


async def test_a_second_different_decision_is_a_409_with_the_check_s_reason(
    url: str, client: aiohttp.ClientSession, review_loop: MemoryReviewLoop
) -> None:
    await log_in(client, url)
    workflow_id = _workflow_id(review_loop)
    first = await _decision_form(client, url, workflow_id) | {"action": "approve"}
    second = await _decision_form(client, url, workflow_id) | {"action": "approve"}
    assert first["decision_id"] != second["decision_id"]
    for form, status in ((first, 200), (first, 200), (second, 409)):
        async with client.post(f"{url}/decide", data=form, headers={"Origin": url}) as response:
            assert response.status == status
            if status == 409:
                assert "decided already" in await response.text()
    assert [d.decision_id for _, d in review_loop.decisions] == [first["decision_id"]] * 2


async def test_a_check_that_no_longer_waits_shows_its_outcome_and_no_decision_form(
    url: str, client: aiohttp.ClientSession, review_loop: MemoryReviewLoop
) -> None:
    workflow_id = _workflow_id(review_loop)
    review_loop.items[workflow_id] = dataclasses.replace(
        review_loop.items[workflow_id], awaiting=False
    )
    await log_in(client, url)
    async with client.get(f"{url}/check", params={"id": workflow_id}) as response:
        html = await response.text()
    assert "does not wait for a decision" in html
    assert 'action="/decide"' not in html


async def test_logging_out_needs_the_csrf_token_and_ends_the_session(
    url: str, client: aiohttp.ClientSession, review_loop: MemoryReviewLoop
) -> None:
    await log_in(client, url)
    form = await _decision_form(client, url, _workflow_id(review_loop))
    async with client.post(
        f"{url}/logout", data={}, headers={"Origin": url}, allow_redirects=False
    ) as response:
        assert response.status == 403
    async with client.post(
        f"{url}/logout", data={"csrf": form["csrf"]}, headers={"Origin": url}, allow_redirects=False
    ) as response:
        assert response.status == 303
    async with client.get(f"{url}/", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/login"


async def test_a_rejection_records_its_reason_and_note(
    url: str, client: aiohttp.ClientSession, review_loop: MemoryReviewLoop
) -> None:
    await log_in(client, url)
    form = await _decision_form(client, url, _workflow_id(review_loop))
    form |= {"action": "reject", "reject_reason": "sensitive_data", "note": "card number"}
    async with client.post(f"{url}/decide", data=form, headers={"Origin": url}) as response:
        assert response.status == 200
        html = await response.text()
    assert '<h1 class="decided">Rejected</h1>' in html
    [(_, decision)] = review_loop.decisions
    assert decision.action == ReviewAction.REJECT
    assert decision.reject_reason == "sensitive_data"
    assert decision.note == "card number"


async def test_the_log_names_routes_never_tokens_queries_or_notes(
    url: str,
    client: aiohttp.ClientSession,
    review_loop: MemoryReviewLoop,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    await log_in(client, url)
    workflow_id = _workflow_id(review_loop)
    form = await _decision_form(client, url, workflow_id) | {"action": "approve", "note": "N0TE"}
    async with client.post(f"{url}/decide", data=form, headers={"Origin": url}) as response:
        assert response.status == 200
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /check 200" in logged
    assert "POST /decide 200" in logged
    for secret in (ALICE_TOKEN, "statement.pdf", "N0TE", form["csrf"]):
        assert secret not in logged
