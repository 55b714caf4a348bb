"""Which pages each reason of a report points at: read once, for ``docpipe report`` and
for the review queue alike, so that both name the same pages for the same reasons.
"""

from __future__ import annotations

from typing import Any

from pipeline.reasons import Reason


def reason_pages(report: dict[str, Any]) -> dict[str, list[int]]:
    """The pages each reason found on pages points at, in the order a person reads them
    (parse errors first, document-wide findings' pages last).

    A reason found on no page (a document-level JavaScript action, a repair) is absent;
    ``unreadable`` shares ``page_errors``' pages. Checks a report does not hold (older
    report versions) list no pages.
    """
    checks = report.get("checks") or {}

    def listed(check: str, part: str | None = None) -> list[int]:
        found = checks.get(check) or {}
        if part is not None:
            found = found.get(part) or {}
        return [int(page) for page in found.get("pages") or []]

    # Reports from before OCR list image-only pages only.
    if "ocr" not in checks:
        checks = {**checks, "ocr": {"not_read": checks.get("image_only_pages") or {}}}
    pages: dict[str, list[int]] = {
        Reason.PAGE_ERRORS: listed("page_errors"),
        Reason.BLANK_PAGES: listed("blank_pages"),
        Reason.ROTATED_PAGES: listed("rotated_pages"),
        Reason.NEEDS_OCR: listed("ocr", "not_read"),
        Reason.OCR_FAILED: listed("ocr", "failed"),
        Reason.OCR_LOW_CONFIDENCE: listed("ocr", "low_confidence"),
        Reason.SENSITIVE_DATA: listed("sensitive_data", "pages"),
        Reason.JAVASCRIPT: listed("javascript", "pages"),
        Reason.LAUNCH_ACTIONS: listed("launch_actions", "pages"),
        Reason.EMBEDDED_FILES: listed("embedded_files", "pages"),
        Reason.FORMS: listed("forms", "pages"),
        Reason.EXTERNAL_LINKS: listed("links", "pages_with_external"),
    }
    return {reason: found for reason, found in pages.items() if found}


def findings_outside_pages(sensitive: dict[str, Any]) -> dict[str, list[str]]:
    """The sensitive data found outside the pages, from a report's ``checks.sensitive_data``:
    by part of the document that holds any (``OUTSIDE_PAGES``, in that order), ``type
    count (samples)`` for each type. Reports from before a part was searched have none."""
    found = {}
    for part in OUTSIDE_PAGES:
        by_type = (sensitive.get(part) or {}).get("by_type") or {}
        if by_type:
            found[part] = [finding(kind, entry) for kind, entry in by_type.items()]
    return found


def finding(kind: str, entry: dict[str, Any]) -> str:
    """One type of sensitive data a report counts, as the views say it: ``type count
    (samples)``, with the first two masked samples."""
    return f"{kind} {entry['count']} ({' '.join(entry['samples'][:2])})"


# The parts of a document outside its pages that the sensitive-data search reads, as a
# report's ``checks.sensitive_data`` names them: its metadata (information entries and
# XMP), its attached files, the values of form fields no page shows, and its bookmarks.
OUTSIDE_PAGES = ("metadata", "attachments", "form_fields", "outline")


def page_error_messages(report: dict[str, Any]) -> dict[int, list[str]]:
    """The parse errors the report samples, by page (``Type: message``)."""
    errors: dict[int, list[str]] = {}
    for sample in ((report.get("checks") or {}).get("page_errors") or {}).get("samples", []):
        errors.setdefault(int(sample["page"]), []).append(f"{sample['type']}: {sample['message']}")
    return errors
