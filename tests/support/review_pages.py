"""The review page on loopback with a review loop in memory: for its HTTP tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime

import aiohttp

from app.review_auth import ReviewerTokens
from app.review_backend import CheckView
from app.review_queue import PageToReview
from app.review_queue import ReviewRefusedError
from app.review_server import ReviewServer
from app.review_server import ServeConfig
from infra.ports import free_ports
from pipeline.models import DocumentRef
from pipeline.pdf.render import RenderLimits
from pipeline.review import ReviewDecision
from pipeline.review import ReviewOutcome
from pipeline.review_visibility import WaitingReview

ALICE_TOKEN = "alice-token-0123456789abcdefghij"
TOKENS = ReviewerTokens({"alice": ALICE_TOKEN, "bob": "bob-token-0123456789abcdefghijklm"})


@dataclass
class MemoryReviewLoop:
    """Checks that wait, their documents' bytes, and the decisions sent."""

    items: dict[str, CheckView] = field(default_factory=dict)
    documents: dict[str, bytes] = field(default_factory=dict)
    decisions: list[tuple[str, ReviewDecision]] = field(default_factory=list)

    def add(
        self,
        name: str,
        pdf: bytes,
        pages: Sequence[PageToReview],
        outside_pages: Mapping[str, list[str]] | None = None,
    ) -> CheckView:
        document = DocumentRef("documents", f"inbox/{name}", etag="e1")
        item = CheckView(
            workflow_id=document.workflow_id,
            document=document,
            reasons=sorted({r for p in pages for r in p.reasons}),
            pages=list(pages),
            outside_pages=dict(outside_pages or {}),
        )
        self.items[item.workflow_id] = item
        self.documents[document.document_id] = pdf
        return item

    async def waiting(self, *, limit: int) -> Sequence[WaitingReview]:
        return [
            WaitingReview(
                workflow_id=item.workflow_id,
                document_id=item.document.document_id,
                reasons=item.reasons,
                waiting_since=datetime(2026, 1, 1, tzinfo=UTC),
                deadline=datetime(2026, 1, 8, tzinfo=UTC),
                overdue=False,
                page_count=3,
            )
            for item in self.items.values()
        ][:limit]

    async def item(self, workflow_id: str) -> CheckView:
        if workflow_id not in self.items:
            raise LookupError("not waiting")
        return self.items[workflow_id]

    async def decide(self, workflow_id: str, decision: ReviewDecision) -> ReviewOutcome:
        item = await self.item(workflow_id)
        if any(
            w == workflow_id and d.decision_id != decision.decision_id for w, d in self.decisions
        ):
            raise ReviewRefusedError("the check was decided already")
        self.decisions.append((workflow_id, decision))
        return ReviewOutcome(
            document_id=item.document.document_id,
            decision=decision,
            final_verdict="pass" if decision.action == "approve" else "reject",
            report_verdict="review",
        )

    async def document_bytes(self, document: DocumentRef, max_bytes: int) -> bytes:
        pdf = self.documents[document.document_id]
        if len(pdf) > max_bytes:
            raise ValueError("too large")
        return pdf


@asynccontextmanager
async def review_page(
    loop: MemoryReviewLoop, render: RenderLimits | None = None
) -> AsyncIterator[str]:
    """The review page on a free loopback port; yields its URL."""
    [port] = free_ports(1)
    config = ServeConfig(port=port, render=render or RenderLimits(), render_processes=1)
    server = ReviewServer(loop, TOKENS, config)
    await server.start()
    try:
        yield config.url
    finally:
        await server.stop()


def browser_like_session() -> aiohttp.ClientSession:
    """A client that keeps the page's cookies (also for 127.0.0.1) and follows nothing."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def log_in(client: aiohttp.ClientSession, url: str, token: str = ALICE_TOKEN) -> None:
    async with client.post(
        f"{url}/login", data={"token": token}, headers={"Origin": url}, allow_redirects=False
    ) as response:
        assert response.status == 303, await response.text()
