"""The review page's web application: the queue, a check's pages, and the decision.

Every route but the login and the static files needs a session (``app.review_auth``);
every POST needs the browser's Origin to be the page's own and, once logged in, the
session's CSRF token; forms are read url-encoded only. The reviewer a decision is
recorded under is the session's, never a form field. Pages carry nothing of a document
but what its report holds (reasons, masked samples) and the pages drawn as images;
nothing is cached on disk, and document pages are ``no-store``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from multidict import MultiDict
from multidict import MultiDictProxy
from multidict import MultiMapping

from app.page_images import PageRenderer
from app.page_images import RenderFailedError
from app.review_auth import ReviewerTokens
from app.review_auth import Session
from app.review_auth import SessionSigner
from app.review_backend import CheckView
from app.review_backend import ReviewBackend
from app.review_queue import ReviewRefusedError
from pipeline.models import DocumentRef
from pipeline.pdf.render import RenderRefusedError
from pipeline.review import RejectReason
from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision

log = logging.getLogger(__name__)

COOKIE = "docpipe_review"
# With Secure: a cookie only its own origin, over TLS, may set (RFC 6265bis).
SECURE_COOKIE = "__Host-docpipe_review"
MAX_NOTE_CHARS = 2000
MAX_BODY_BYTES = 64 * 1024
QUEUE_LIMIT = 200
# Documents (bytes) and checks kept in memory for the images of the page being viewed.
DOCUMENTS_KEPT = 2
ITEM_SECONDS = 30.0
CSP = (
    "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_STATIC = Path(__file__).parent / "static"
_SESSION = web.RequestKey("session", Session)


@dataclass(frozen=True, kw_only=True)
class ReviewPageConfig:
    """How the review page is reached.

    Attributes:
        origins: the origins browsers open it at (``http://127.0.0.1:8236``, or the
            reverse proxy's ``https://review.example.com``); a POST from any other is refused.
        secure_cookies: the session cookie is sent over HTTPS only (behind a TLS proxy).
    """

    origins: tuple[str, ...]
    secure_cookies: bool = False


class _Documents:
    """The last few documents' bytes, in memory, shared by the images of one page."""

    def __init__(self, backend: ReviewBackend, max_bytes: int) -> None:
        self._backend = backend
        self._max_bytes = max_bytes
        self._kept: OrderedDict[str, asyncio.Task[bytes]] = OrderedDict()

    async def get(self, document: DocumentRef) -> bytes:
        task = self._kept.get(document.document_id)
        if task is None:
            task = asyncio.ensure_future(self._backend.document_bytes(document, self._max_bytes))
            self._kept[document.document_id] = task
            while len(self._kept) > DOCUMENTS_KEPT:
                self._kept.popitem(last=False)
        self._kept.move_to_end(document.document_id)
        try:
            return await asyncio.shield(task)
        except Exception:
            self._kept.pop(document.document_id, None)
            raise


class _Items:
    """Checks looked up in the last ``ITEM_SECONDS``: a page's images need not each ask."""

    def __init__(self, backend: ReviewBackend) -> None:
        self._backend = backend
        self._kept: dict[str, tuple[float, CheckView]] = {}

    async def get(self, workflow_id: str, *, fresh: bool = False) -> CheckView:
        now = time.monotonic()
        self._kept = {k: v for k, v in self._kept.items() if now - v[0] < ITEM_SECONDS}
        if not fresh and workflow_id in self._kept:
            return self._kept[workflow_id][1]
        item = await self._backend.item(workflow_id)
        self._kept[workflow_id] = (now, item)
        return item


def _age(since: datetime, now: datetime) -> str:
    seconds = (now - since).total_seconds()
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // (24 * 60)} d {minutes // 60 % 24} h"


def route_of(request: web.Request) -> str:
    """The route a request took, without its query (which names documents)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "-"


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=reason)


def _one(
    values: MultiMapping[str], name: str, *, required: bool = True, max_chars: int = 1000
) -> str:
    """The one value of field ``name`` (query or form); 400 when missing, repeated or long."""
    given = values.getall(name, [])
    if len(given) > 1:
        raise _bad(f"{name} is given more than once")
    value = given[0] if given else ""
    if required and not value:
        raise _bad(f"{name} is required")
    if len(value) > max_chars:
        raise _bad(f"{name} is longer than {max_chars} characters")
    return value


async def _form(request: web.Request) -> MultiDictProxy[str]:
    """The fields of the request's form, all text; 400 when its body cannot be read as one.

    Every handler and middleware reads the form through here, so that a body the parser
    chokes on is the client's error, never the catch-all's 502.
    """
    if request.content_type == "multipart/form-data":
        # The page's forms are url-encoded and nothing here takes files; the multipart
        # parser fails in half a dozen ways (bad boundary, part encodings, part headers).
        raise _bad("the form is sent url-encoded, not as multipart/form-data")
    try:
        posted = await request.post()
    except LookupError:
        raise _bad("the form names a charset that is not a text encoding") from None
    except UnicodeDecodeError as exc:
        raise _bad(f"the form is not text in {exc.encoding}") from None
    except web.RequestPayloadError:
        raise _bad("the body cannot be decoded as its Content-Encoding says") from None
    except ConnectionResetError:
        # The client hung up before its body was all sent: no one to answer, nothing wrong.
        raise _bad("the body ended before its Content-Length") from None
    # Only multipart bodies hold files or bytes, and those are refused above.
    return MultiDictProxy(MultiDict((k, v) for k, v in posted.items() if isinstance(v, str)))


def _page_number(text: str) -> int | None:
    """A page number (1, 2, ...) as the page takes one, in ASCII digits; None for anything
    else (isdigit() alone takes "²", which int() refuses, and "٣", which it reads as 3)."""
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        return None
    return int(text)


def _pages(text: str) -> list[int]:
    pages = [_page_number(p.strip()) for p in text.split(",") if p.strip()]
    numbers = [p for p in pages if p is not None]
    if len(numbers) < len(pages):
        raise _bad("pages_viewed is a comma-separated list of page numbers (1, 2, ...)")
    return numbers


class ReviewPages:
    """The handlers and middlewares of the review page.

    Args:
        backend: the review loop.
        tokens: who may log in.
        renderer: draws the pages.
        config: the origins it is reached at, and the cookie's flags.
        signer: signs sessions; a fresh key by default.
    """

    def __init__(
        self,
        backend: ReviewBackend,
        tokens: ReviewerTokens,
        renderer: PageRenderer,
        config: ReviewPageConfig,
        signer: SessionSigner | None = None,
    ) -> None:
        self.backend = backend
        self.tokens = tokens
        self.renderer = renderer
        self.config = config
        self.signer = signer or SessionSigner()
        self.cookie = SECURE_COOKIE if config.secure_cookies else COOKIE
        self._documents = _Documents(backend, renderer.limits.max_document_bytes)
        self._items = _Items(backend)
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("app", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )

    def application(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(
            client_max_size=MAX_BODY_BYTES,
            middlewares=[self._headers, self._authenticated, self._same_origin],
        )
        app.add_routes(
            [
                web.get("/", self.queue),
                web.get("/login", self.login_form),
                web.post("/login", self.login),
                web.post("/logout", self.logout),
                web.get("/check", self.check),
                web.get("/page.png", self.page_image),
                web.post("/decide", self.decide),
                web.static("/static", _STATIC),
            ]
        )
        return app

    # -- middlewares ----------------------------------------------------------------------

    @web.middleware
    async def _headers(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response: web.StreamResponse
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
            if exc.status >= 400 and exc.text and not request.path.endswith(".png"):
                response = self._error_page(request, exc.status, exc.text)
        except Exception as exc:
            # Temporal or S3 failed: said without what was asked (it names a document).
            log.exception("the review page failed on %s %s", request.method, route_of(request))
            response = self._error_page(
                request, 502, f"the review loop did not answer: {type(exc).__name__}"
            )
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Not no-referrer: under it browsers send "Origin: null" with form posts.
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        if isinstance(response, web.HTTPException) and response.status >= 300:
            raise response
        return response

    @web.middleware
    async def _authenticated(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path == "/login" or request.path.startswith("/static/"):
            return await handler(request)
        session = self.signer.verify(request.cookies.get(self.cookie, ""))
        if session is None:
            if request.method == "GET" and request.path != "/page.png":
                raise web.HTTPSeeOther("/login")
            raise web.HTTPUnauthorized(text="log in first: no valid session")
        request[_SESSION] = session
        return await handler(request)

    @web.middleware
    async def _same_origin(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.method != "POST":
            return await handler(request)
        origin = request.headers.get("Origin")
        if origin is None:
            raise web.HTTPForbidden(text="the request has no Origin header")
        if origin not in self.config.origins:
            raise web.HTTPForbidden(text=f"requests from {origin} are not accepted")
        session = request.get(_SESSION)
        if session is not None:
            form = await _form(request)
            if not self.signer.csrf_ok(session, _one(form, "csrf", required=False, max_chars=200)):
                raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong")
        return await handler(request)

    # -- pages ----------------------------------------------------------------------------

    def _render(
        self, request: web.Request, template: str, code: int = 200, **values: Any
    ) -> web.Response:
        session = request.get(_SESSION)
        html = self._templates.get_template(template).render(
            reviewer=session.reviewer if session else "",
            csrf=self.signer.csrf_token(session) if session else "",
            **values,
        )
        return web.Response(text=html, content_type="text/html", status=code)

    def _error_page(self, request: web.Request, status: int, message: str) -> web.Response:
        return self._render(request, "error.html", status, status=status, message=message)

    async def login_form(self, request: web.Request) -> web.Response:
        """GET /login: the token form (``static/login.js`` submits a fragment's token)."""
        return self._render(request, "login.html", error="")

    async def login(self, request: web.Request) -> web.Response:
        """POST /login: a known token starts a session (303 to the queue); else 401."""
        form = await _form(request)
        reviewer = self.tokens.reviewer_for(_one(form, "token", max_chars=200))
        if reviewer is None:
            return self._render(request, "login.html", 401, error="Unknown token.")
        log.info("reviewer %s logged in", reviewer)
        response = web.HTTPSeeOther("/")
        response.set_cookie(
            self.cookie,
            self.signer.issue(reviewer),
            httponly=True,
            samesite="Strict",
            secure=self.config.secure_cookies,
            path="/",
        )
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        """POST /logout: the session cookie is cleared."""
        response = web.HTTPSeeOther("/login")
        response.del_cookie(self.cookie, path="/")
        raise response

    async def queue(self, request: web.Request) -> web.Response:
        """GET /: the checks that wait for a decision, oldest first."""
        checks = await self.backend.waiting(limit=QUEUE_LIMIT)
        now = datetime.now(UTC)
        return self._render(
            request, "queue.html", checks=checks, ages=[_age(c.waiting_since, now) for c in checks]
        )

    async def _item(self, workflow_id: str, *, fresh: bool = False) -> CheckView:
        try:
            return await self._items.get(workflow_id, fresh=fresh)
        except LookupError as exc:
            raise web.HTTPNotFound(
                text=f"no check waits for a decision as {workflow_id}: {exc}"
            ) from None

    async def check(self, request: web.Request) -> web.Response:
        """GET /check?id=WORKFLOW_ID: the pages to look at and the decision form.

        Each view gets a new decision ID: a form sent twice decides once.
        """
        item = await self._item(_one(request.query, "id"), fresh=True)
        return self._render(
            request,
            "check.html",
            item=item,
            decision_id=str(uuid.uuid4()),
            pages_viewed=",".join(str(p.page) for p in item.pages),
            reject_reasons=[r.value for r in RejectReason],
            max_note=MAX_NOTE_CHARS,
        )

    async def page_image(self, request: web.Request) -> web.Response:
        """GET /page.png?id=WORKFLOW_ID&page=N: one of the check's pages to look at, drawn."""
        workflow_id = _one(request.query, "id")
        number = _page_number(_one(request.query, "page", max_chars=9))
        if number is None:
            raise _bad("page is a page number (1, 2, ...)")
        item = await self._item(workflow_id)
        shown = {p.page: p for p in item.pages}
        if number not in shown:
            raise web.HTTPNotFound(text=f"page {number} is not among the pages to review")
        try:
            pdf = await self._documents.get(item.document)
        except LookupError as exc:
            raise web.HTTPNotFound(text=f"the document cannot be read: {exc}") from None
        except ValueError as exc:
            raise web.HTTPUnprocessableEntity(text=str(exc)) from None
        try:
            png = await self.renderer.render(pdf, number, shown[number].turn)
        except RenderRefusedError as exc:
            raise web.HTTPUnprocessableEntity(text=str(exc)) from None
        except RenderFailedError as exc:
            raise web.HTTPServiceUnavailable(text=str(exc)) from None
        return web.Response(body=png, content_type="image/png")

    async def decide(self, request: web.Request) -> web.Response:
        """POST /decide: the decision, as the session's reviewer, sent as the Update."""
        form = await _form(request)
        session = request[_SESSION]
        workflow_id = _one(form, "id")
        try:
            action = ReviewAction(_one(form, "action"))
        except ValueError:
            raise _bad("action is approve or reject") from None
        reject_reason = ""
        if action is ReviewAction.REJECT:
            try:
                reject_reason = RejectReason(_one(form, "reject_reason")).value
            except ValueError:
                raise _bad(f"reject_reason is one of {', '.join(RejectReason)}") from None
        decision_id = _one(form, "decision_id", max_chars=64)
        try:
            uuid.UUID(decision_id)
        except ValueError:
            raise _bad("decision_id is a UUID") from None
        note = _one(form, "note", required=False, max_chars=MAX_NOTE_CHARS)
        if reject_reason == RejectReason.OTHER and not note.strip():
            raise _bad("a rejection as other needs a note saying why")
        decision = ReviewDecision(
            decision_id=decision_id,
            action=action,
            reviewer=session.reviewer,
            note=note,
            pages_viewed=_pages(_one(form, "pages_viewed", required=False)),
            reject_reason=reject_reason,
        )
        try:
            outcome = await self.backend.decide(workflow_id, decision)
        except ReviewRefusedError as exc:
            raise web.HTTPConflict(text=str(exc)) from None
        except LookupError as exc:
            raise web.HTTPNotFound(text=f"no check {workflow_id}: {exc}") from None
        log.info("reviewer %s decided %s on a check", session.reviewer, action.value)
        return self._render(request, "decided.html", outcome=outcome)
