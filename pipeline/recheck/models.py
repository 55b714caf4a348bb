"""Bulk re-checks: their values and names (the diff they end with is in ``diff``).

A bulk re-check (``docpipe recheck``) re-checks every document a selection matches, each
as ``docpipe reprocess`` would, under one *recheck ID*: the re-check of a document is the
workflow ``<its check's workflow ID>#recheck-<recheck ID>`` and writes under
``<its check's results prefix>/rechecks/<recheck ID>/``. The ID is what makes it safe to
run again: a document already re-checked under it is never re-checked twice.

Imported by the workflow sandbox: values and pure functions only.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from dataclasses import field
from enum import StrEnum

from pipeline.models import DocumentRef
from pipeline.models import recheck_results_prefix
from pipeline.models import recheck_workflow_id

RECHECK_WORKFLOW_NAME = "RecheckWorkflow"
RECHECK_WORKFLOW_PREFIX = "docpipe-recheck/"
# Lower-case letter first, so that it never looks like a numbered `reprocess` re-check.
RECHECK_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,47}$")
# Where a bulk re-check keeps its work and its diff, under the results root. Bucket names
# cannot hold "_", so no document's results prefix can start like this.
RECHECKS_ROOT = "_rechecks"
DIFF_NAME = "diff.json"


def check_recheck_id(recheck_id: str) -> str:
    """``recheck_id`` if it can name a bulk re-check.

    Raises:
        ValueError: it cannot.
    """
    if not RECHECK_ID_PATTERN.match(recheck_id):
        raise ValueError(
            f"{recheck_id!r} is not a recheck ID: a lower-case letter, then up to 47 lower-case "
            "letters, digits or dashes"
        )
    return recheck_id


def recheck_run_id(recheck_id: str) -> str:
    """The workflow ID of the bulk re-check itself."""
    return RECHECK_WORKFLOW_PREFIX + recheck_id


def recheck_home(results_root: str, recheck_id: str) -> str:
    """Key prefix of a bulk re-check's own objects (its diff, its pages of outcomes)."""
    root = results_root.strip("/")
    return f"{root}/{RECHECKS_ROOT}/{recheck_id}" if root else f"{RECHECKS_ROOT}/{recheck_id}"


def diff_key(results_root: str, recheck_id: str) -> str:
    """Key of a bulk re-check's diff report in the results bucket."""
    return f"{recheck_home(results_root, recheck_id)}/{DIFF_NAME}"


def outcomes_key(results_root: str, recheck_id: str, chain: str, page: int) -> str:
    """Key of the rows of one page of matches. One chain of runs (its first run ID) owns
    its pages: a later run of the same recheck ID writes its own, never mixing with these."""
    return f"{recheck_home(results_root, recheck_id)}/pages/{chain}/{page:08d}.json"


@dataclass(frozen=True)
class RecheckSelection:
    """Which documents: a visibility query over their checks, or an S3 listing."""

    query: str = ""
    bucket: str = ""
    prefix: str = ""

    def describe(self) -> str:
        """The selection as the diff names it."""
        return f"query {self.query}" if self.query else f"prefix s3://{self.bucket}/{self.prefix}"


class RecheckOutcome(StrEnum):
    """What became of one document in a bulk re-check."""

    # Re-checked by this run, to its report (the re-check may wait for review since).
    RECHECKED = "rechecked"
    # Re-checked under this recheck ID before (its re-check's ID ran already).
    ALREADY = "already"
    # Its re-check failed.
    FAILED = "failed"


class RecheckPhase(StrEnum):
    """What a bulk re-check is doing: the ``phase`` of its ``progress`` query."""

    STARTING = "starting"
    LISTING = "listing"
    RECHECKING = "re-checking"
    COMPARING = "comparing"
    WRITING_DIFF = "writing the diff"
    DONE = "done"


@dataclass(frozen=True)
class RecheckTotals:
    """How far a bulk re-check is: carried across continue-as-new."""

    pages: int = 0
    matched: int = 0
    rechecked: int = 0
    already: int = 0
    failed: int = 0
    changed: int = 0

    def counting(self, outcome: RecheckOutcome) -> RecheckTotals:
        """These totals with one more document of ``outcome``."""
        match outcome:
            case RecheckOutcome.RECHECKED:
                return dataclasses.replace(self, rechecked=self.rechecked + 1)
            case RecheckOutcome.ALREADY:
                return dataclasses.replace(self, already=self.already + 1)
            case RecheckOutcome.FAILED:
                return dataclasses.replace(self, failed=self.failed + 1)


@dataclass(frozen=True, kw_only=True)
class RecheckProgress(RecheckTotals):
    """What ``RecheckWorkflow`` answers to the ``progress`` query: the totals so far, and
    this run's page. The field names are the query's JSON: they stay."""

    phase: RecheckPhase
    # Re-checks running now.
    running: int = 0
    # This run's page: matches done of its size.
    page_done: int = 0
    page_size: int = 0

    @classmethod
    def of(
        cls,
        totals: RecheckTotals,
        *,
        phase: RecheckPhase,
        running: int,
        page_done: int,
        page_size: int,
    ) -> RecheckProgress:
        """The totals so far, and where this run is."""
        return cls(
            **dataclasses.asdict(totals),
            phase=phase,
            running=running,
            page_done=page_done,
            page_size=page_size,
        )


@dataclass(frozen=True)
class RecheckRequest:
    """Input of ``RecheckWorkflow`` (and of each of its continued runs)."""

    recheck_id: str
    selection: RecheckSelection
    results_bucket: str
    # The results root (DOCPIPE_S3_RESULTS_PREFIX): where documents found by listing S3
    # have their reports, and where the bulk re-check keeps its own objects.
    results_root: str
    page_task_queue: str = ""
    # Where its re-checks read scanned pages (DOCPIPE_TEMPORAL_OCR_TASK_QUEUE; "": on the
    # page queue), as any check the same settings start.
    ocr_task_queue: str = ""
    hash_object_key: bool = False
    priority_key: int = 5
    fairness_mode: str = "prefix"
    # Re-checks started per second at most, and running at once at most.
    rate_per_s: float = 5.0
    max_concurrent: int = 10
    # Matches per page; each page is one run of the workflow (continue-as-new after it).
    page_size: int = 100
    # Documents whose verdict changed listed in the diff (the counts are always exact).
    max_listed: int = 100
    # Where the next page starts (None: the first page).
    cursor: str | None = None
    totals: RecheckTotals = field(default_factory=RecheckTotals)

    def list_matches_input(self) -> ListMatchesInput:
        """The input of ``list_matches``: this run's page of the selection."""
        return ListMatchesInput(
            selection=self.selection,
            results_root=self.results_root,
            results_bucket=self.results_bucket,
            cursor=self.cursor,
            page_size=self.page_size,
        )

    def compare_page_input(
        self, *, chain: str, page: int, outcomes: list[Outcome]
    ) -> ComparePageInput:
        """The input of ``compare_page``: this run's outcomes, as page ``page``."""
        return ComparePageInput(
            recheck_id=self.recheck_id,
            chain=chain,
            results_root=self.results_root,
            results_bucket=self.results_bucket,
            page=page,
            outcomes=outcomes,
        )

    def write_diff_input(self, *, chain: str, totals: RecheckTotals) -> WriteDiffInput:
        """The input of ``write_diff``: the pages of ``chain``, and the totals."""
        return WriteDiffInput(
            recheck_id=self.recheck_id,
            chain=chain,
            selection=self.selection,
            results_root=self.results_root,
            results_bucket=self.results_bucket,
            max_listed=self.max_listed,
            totals=totals,
        )


@dataclass(frozen=True)
class Match:
    """One matching document and where its (original) check wrote its report."""

    document: DocumentRef
    results_bucket: str
    results_prefix: str

    def recheck_workflow_id(self, recheck_id: str, hashed: bool) -> str:
        """The ID of this document's re-check in bulk re-check ``recheck_id``; ``hashed``:
        its key hashed, as the original check's ID has it."""
        return recheck_workflow_id(self.document.check_workflow_id(hashed), recheck_id)

    def recheck_prefix(self, recheck_id: str) -> str:
        return recheck_results_prefix(self.results_prefix, recheck_id)


@dataclass(frozen=True)
class ListMatchesInput:
    selection: RecheckSelection
    results_root: str
    results_bucket: str
    cursor: str | None
    page_size: int


@dataclass(frozen=True)
class MatchPage:
    matches: list[Match]
    # None: this was the last page.
    next_cursor: str | None


@dataclass(frozen=True)
class Outcome:
    """What became of one match in this run."""

    match: Match
    outcome: RecheckOutcome


@dataclass(frozen=True)
class ComparePageInput:
    recheck_id: str
    chain: str
    results_root: str
    results_bucket: str
    page: int
    outcomes: list[Outcome]


@dataclass(frozen=True)
class PageComparison:
    """Counts of one page's comparison (the rows are in S3)."""

    documents: int
    changed: int


@dataclass(frozen=True)
class WriteDiffInput:
    recheck_id: str
    chain: str
    selection: RecheckSelection
    results_root: str
    results_bucket: str
    max_listed: int
    totals: RecheckTotals


@dataclass(frozen=True)
class RecheckResult:
    """What ``RecheckWorkflow`` returns: totals and where the diff is."""

    recheck_id: str
    totals: RecheckTotals
    diff_bucket: str
    diff_key: str
