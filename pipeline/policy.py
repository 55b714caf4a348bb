"""The verdict policy: which findings reject a document, which ask for review, which don't.

A check finds *reasons* (machine-readable names, listed in ``pipeline.reasons``); the policy turns
them into a verdict: ``reject`` if any found reason rejects, else ``review`` if any asks
for review, else ``pass``. Reasons the policy ignores are still reported, as
informational. The rules are settings (``DOCPIPE_POLICY_*``); the policy in force is
recorded in every report with ``POLICY_VERSION``, the version of these rules' meaning.

This module is imported by the workflow sandbox (the policy travels in the check plan):
no side effects, no heavy imports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pipeline.reasons import PROBLEMS
from pipeline.reasons import VERDICT_REASONS
from pipeline.reasons import Reason

# Bump when a reason's meaning or a default changes.
POLICY_VERSION = "6"

PASS, REVIEW, REJECT, IGNORE = "pass", "review", "reject", "ignore"

DEFAULT_REJECT = (Reason.JAVASCRIPT, Reason.LAUNCH_ACTIONS, Reason.SIGNATURE_BROKEN)
DEFAULT_IGNORE = (
    Reason.FORMS,
    Reason.ROTATED_PAGES,
    Reason.MIXED_PAGE_SIZES,
    Reason.EXTERNAL_LINKS,
    Reason.SIGNED,
)
# All pages failing to parse makes a document unreadable.
DEFAULT_UNREADABLE_PAGE_RATIO = 0.5
# Tesseract's mean word confidence on a clean 200 dpi scan is about 90, on a noisy and
# askew one about 80; below this, what OCR read (and so what it found) is doubtful.
DEFAULT_OCR_MIN_CONFIDENCE = 60


class PolicyError(ValueError):
    """A policy names an unknown reason or contradicts itself."""


@dataclass(frozen=True)
class Verdict:
    """What the policy made of a check's findings: the verdict and why."""

    verdict: str
    # Reasons that decided the verdict (rejecting and review ones), in ``VERDICT_REASONS`` order.
    reasons: list[str] = field(default_factory=list)
    # Found, but ignored by the policy.
    informational: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class VerdictPolicy:
    """Rules from findings to a verdict.

    Args:
        reject: finding reasons that reject a document (document problems always do).
        ignore: finding reasons that are reported but do not affect the verdict.
            Every other finding asks for review.
        unreadable_page_ratio: when at least this share of the pages cannot be parsed,
            the document is ``unreadable`` (rejected) rather than ``page_errors``.
        ocr_min_confidence: a page OCR read with a mean word confidence (0-100) under
            this, in whole points,
            makes ``ocr_low_confidence``.
    """

    reject: tuple[str, ...] = DEFAULT_REJECT
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    unreadable_page_ratio: float = DEFAULT_UNREADABLE_PAGE_RATIO
    ocr_min_confidence: int = DEFAULT_OCR_MIN_CONFIDENCE

    def __post_init__(self) -> None:
        # Lists arrive from JSON (workflow history) as lists: keep the value hashable.
        object.__setattr__(self, "reject", tuple(self.reject))
        object.__setattr__(self, "ignore", tuple(self.ignore))
        unknown = sorted(set(self.reject + self.ignore) - set(VERDICT_REASONS))
        if unknown:
            raise PolicyError(
                f"unknown reasons {', '.join(unknown)}; known: {', '.join(VERDICT_REASONS)}"
            )
        problems = sorted(set(self.ignore) & set(PROBLEMS))
        if problems:
            raise PolicyError(f"{', '.join(problems)} cannot be ignored: nothing was checked")
        both = sorted(set(self.reject) & set(self.ignore))
        if both:
            raise PolicyError(f"{', '.join(both)} both rejected and ignored")
        if not 0 < self.unreadable_page_ratio <= 1:
            raise PolicyError("unreadable_page_ratio must be in (0, 1]")
        if not 0 <= self.ocr_min_confidence <= 100:
            raise PolicyError("ocr_min_confidence must be from 0 to 100")

    def action(self, reason: str) -> str:
        """``reject``, ``review`` or ``ignore`` for one reason."""
        if reason in PROBLEMS or reason in self.reject:
            return REJECT
        if reason in self.ignore:
            return IGNORE
        return REVIEW

    def decide(self, found: Iterable[str]) -> Verdict:
        """The verdict for the reasons a check found."""
        present = set(found)
        ordered = [reason.value for reason in VERDICT_REASONS if reason in present]
        reasons = [r for r in ordered if self.action(r) != IGNORE]
        actions = {self.action(r) for r in reasons}
        verdict = REJECT if REJECT in actions else REVIEW if REVIEW in actions else PASS
        informational = [r for r in ordered if self.action(r) == IGNORE]
        return Verdict(verdict=verdict, reasons=reasons, informational=informational)

    def to_json(self) -> dict[str, Any]:
        """The policy as recorded in a report: every reason under its action."""
        by_action: dict[str, list[str]] = {REJECT: [], REVIEW: [], IGNORE: []}
        for reason in VERDICT_REASONS:
            by_action[self.action(reason)].append(reason.value)
        return {
            "version": POLICY_VERSION,
            **by_action,
            "unreadable_page_ratio": self.unreadable_page_ratio,
            "ocr_min_confidence": self.ocr_min_confidence,
        }
