"""What stand-in activities answer for ``inspect``: tests of the workflow's branches need an
inspection, not a PDF."""

from __future__ import annotations

from pipeline.models import CheckPlan
from pipeline.models import InspectResult


def readable_inspection(page_count: int, *, chunk_pages: int) -> InspectResult:
    """The inspection of a readable, unencrypted PDF of ``page_count`` pages, to be checked
    in chunks of ``chunk_pages``."""
    return InspectResult(
        size=100,
        pdf_version="1.7",
        page_count=page_count,
        encrypted=False,
        plan=CheckPlan(chunk_pages=chunk_pages, heartbeat_timeout_s=30),
    )
