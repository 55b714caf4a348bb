"""The report: page results folded into per-check summaries, and the verdict.

Page results are folded one at a time, so a report over any number of pages is built in
memory bounded by the number of pages that need attention, never by the page count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.models import DocumentRef, InspectResult

REPORT_SCHEMA_VERSION = 1
POLICY_VERSION = "1"
# Page lists in the report stop growing here; their counts stay exact.
MAX_LISTED_PAGES = 1000

PASS, REVIEW, REJECT = "pass", "review", "reject"


@dataclass
class _PageList:
    count: int = 0
    pages: list[int] = field(default_factory=list)

    def add(self, page: int) -> None:
        self.count += 1
        if len(self.pages) < MAX_LISTED_PAGES:
            self.pages.append(page)

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "pages": self.pages}


@dataclass
class PageSummary:
    """Running totals over page results."""

    pages: int = 0
    text_chars: int = 0
    images: int = 0
    blank: _PageList = field(default_factory=_PageList)
    image_only: _PageList = field(default_factory=_PageList)
    rotated: _PageList = field(default_factory=_PageList)
    errors: _PageList = field(default_factory=_PageList)
    error_types: dict[str, int] = field(default_factory=dict)
    page_sizes: dict[str, int] = field(default_factory=dict)
    expected_page: int = 1

    def add(self, result: dict[str, Any]) -> None:
        page = int(result["page"])
        if page != self.expected_page:
            raise ValueError(f"page results out of order: got {page}, want {self.expected_page}")
        self.expected_page += 1
        self.pages += 1
        if result.get("error_type"):
            self.errors.add(page)
            kind = str(result["error_type"])
            self.error_types[kind] = self.error_types.get(kind, 0) + 1
            return
        self.text_chars += int(result["text_chars"])
        self.images += int(result["image_count"])
        if result["blank"]:
            self.blank.add(page)
        if result["image_only"]:
            self.image_only.add(page)
        if result["rotation"]:
            self.rotated.add(page)
        size = f"{result['width_pt']:g}x{result['height_pt']:g}"
        self.page_sizes[size] = self.page_sizes.get(size, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "pages_checked": self.pages,
            "text_chars": self.text_chars,
            "images": self.images,
            "blank_pages": self.blank.to_json(),
            "image_only_pages": self.image_only.to_json(),
            "rotated_pages": self.rotated.to_json(),
            "page_errors": {
                **self.errors.to_json(),
                "by_type": dict(sorted(self.error_types.items())),
            },
            "page_sizes_pt": dict(sorted(self.page_sizes.items())),
        }


def decide_verdict(inspection: InspectResult, summary: PageSummary) -> tuple[str, list[str]]:
    """The default policy: document problems reject; pages that need a human ask for review."""
    if inspection.problem:
        return REJECT, [inspection.problem]
    reasons = []
    if summary.pages and summary.errors.count == summary.pages:
        return REJECT, ["unreadable"]
    if summary.errors.count:
        reasons.append("page_errors")
    if summary.blank.count:
        reasons.append("blank_pages")
    if summary.image_only.count:
        reasons.append("needs_ocr")
    return (REVIEW if reasons else PASS), reasons


def build_report(
    *,
    document: DocumentRef,
    inspection: InspectResult,
    summary: PageSummary,
    chunk_keys: list[str],
    chunk_pages: int,
) -> dict[str, Any]:
    """The ``report.json`` document. Deterministic: no clocks, no hostnames."""
    verdict, reasons = decide_verdict(inspection, summary)
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "policy_version": POLICY_VERSION,
        "document": {
            "id": document.document_id,
            "bucket": document.bucket,
            "key": document.key,
            "version_id": document.version_id,
            "etag": document.etag,
            "size": inspection.size,
        },
        "facts": {
            "pdf_version": inspection.pdf_version,
            "page_count": inspection.page_count,
            "encrypted": inspection.encrypted,
            "problem": inspection.problem,
            "problem_detail": inspection.problem_detail,
        },
        "checks": summary.to_json(),
        "verdict": {"verdict": verdict, "reasons": reasons},
        "pages": {"chunk_pages": chunk_pages, "chunks": chunk_keys},
    }
