"""Bulk re-checks: their values, names and the diff of verdicts they end with.

A bulk re-check (``docpipe recheck``) re-checks every document a selection matches, each
as ``docpipe reprocess`` would, under one *recheck ID*: the re-check of a document is the
workflow ``<its check's workflow ID>#recheck-<recheck ID>`` and writes under
``<its check's results prefix>/rechecks/<recheck ID>/``. The ID is what makes it safe to
run again: a document already re-checked under it is never re-checked twice.

Imported by the workflow sandbox: values and pure functions only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.models import (
    REPORT_NAME,
    DocumentRef,
    recheck_results_prefix,
    recheck_workflow_id,
)

RECHECK_WORKFLOW_NAME = "RecheckWorkflow"
RECHECK_WORKFLOW_PREFIX = "docpipe-recheck/"
# Lower-case letter first, so that it never looks like a numbered `reprocess` re-check.
RECHECK_ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,47}$")
# Where a bulk re-check keeps its work and its diff, under the results root. Bucket names
# cannot hold "_", so no document's results prefix can start like this.
RECHECKS_ROOT = "_rechecks"
DIFF_NAME = "diff.json"
DIFF_VERSION = 1
# A verdict where there is no report (never checked, or the re-check did not finish).
NONE = "none"


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

    # Re-checked by this run, to its report.
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


@dataclass(frozen=True)
class Match:
    """One matching document and where its (original) check wrote its report."""

    document: DocumentRef
    results_bucket: str
    results_prefix: str

    def recheck_workflow_id(self, recheck_id: str) -> str:
        return recheck_workflow_id(self.document.workflow_id, recheck_id)

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


# -- the diff ----------------------------------------------------------------------------


def policy_fingerprint(policy: Mapping[str, Any] | None) -> str | None:
    """A short, stable name of a report's policy (its version and every rule)."""
    if not policy:
        return None
    digest = hashlib.sha256(json.dumps(policy, sort_keys=True).encode()).hexdigest()[:12]
    return f"v{policy.get('version', '?')}-{digest}"


def comparison_row(
    match: Match,
    outcome: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    recheck_id: str,
) -> dict[str, Any]:
    """One document's row: its verdict and reasons before and after, and the policies."""

    def verdict(report: Mapping[str, Any] | None) -> tuple[str, list[str]]:
        if not report:
            return NONE, []
        found = report.get("verdict") or {}
        return str(found.get("verdict", NONE)), list(found.get("reasons") or [])

    (was, reasons_before), (now, reasons_after) = verdict(before), verdict(after)
    return {
        "document": match.document.document_id,
        "outcome": outcome,
        "before": was,
        "after": now,
        "added": sorted(set(reasons_after) - set(reasons_before)),
        "removed": sorted(set(reasons_before) - set(reasons_after)),
        "policy_before": policy_fingerprint((before or {}).get("policy")),
        "policy_after": policy_fingerprint((after or {}).get("policy")),
        "report": f"s3://{match.results_bucket}/{match.recheck_prefix(recheck_id)}/{REPORT_NAME}",
    }


def is_change(row: Mapping[str, Any]) -> bool:
    """The verdict or its reasons changed."""
    return bool(row["before"] != row["after"] or row["added"] or row["removed"])


def build_diff(
    *,
    recheck_id: str,
    selection: RecheckSelection,
    rows: Iterable[Mapping[str, Any]],
    policies: Mapping[str, Mapping[str, Any]],
    max_listed: int,
    totals: RecheckTotals,
) -> dict[str, Any]:
    """The diff report of a finished bulk re-check, from every document's row.

    Args:
        policies: the rules of each policy fingerprint seen, to say what changed.
        max_listed: changed documents listed at most (in document ID order); every count
            is exact whatever is listed.
    """
    transitions: Counter[str] = Counter()
    added: Counter[str] = Counter()
    removed: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    before_policies: Counter[str] = Counter()
    after_policies: Counter[str] = Counter()
    changed: list[dict[str, Any]] = []
    changed_count = documents = 0
    for row in rows:
        documents += 1
        outcomes[row["outcome"]] += 1
        transitions[f"{row['before']}->{row['after']}"] += 1
        added.update(row["added"])
        removed.update(row["removed"])
        if row["policy_before"]:
            before_policies[row["policy_before"]] += 1
        if row["policy_after"]:
            after_policies[row["policy_after"]] += 1
        if is_change(row):
            changed_count += 1
            changed.append(dict(row))
            # Keep the first ones by document ID, in bounded memory.
            if len(changed) > 2 * max_listed:
                changed = sorted(changed, key=lambda r: r["document"])[:max_listed]
    changed = sorted(changed, key=lambda r: r["document"])[:max_listed]
    return {
        "diff_version": DIFF_VERSION,
        "recheck_id": recheck_id,
        "selection": selection.describe(),
        "documents": documents,
        "outcomes": dict(sorted(outcomes.items())),
        "pages": totals.pages,
        "transitions": dict(sorted(transitions.items())),
        "changed": changed_count,
        "reasons_added": dict(sorted(added.items())),
        "reasons_removed": dict(sorted(removed.items())),
        "changed_documents": changed,
        "changed_documents_listed": len(changed),
        "policy": {
            "before": _policies(before_policies, policies),
            "after": _policies(after_policies, policies),
            "rules_changed": _rules_changed(before_policies, after_policies, policies),
        },
    }


def _policies(
    seen: Counter[str], policies: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    return [
        {
            "fingerprint": fingerprint,
            "version": policies.get(fingerprint, {}).get("version"),
            "documents": count,
            "rules": dict(policies.get(fingerprint, {})),
        }
        for fingerprint, count in seen.most_common()
    ]


def _actions(policy: Mapping[str, Any]) -> dict[str, str]:
    return {
        reason: action
        for action in ("reject", "review", "ignore")
        for reason in policy.get(action) or []
    }


def _rules_changed(
    before: Counter[str], after: Counter[str], policies: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, str]]:
    """Reasons whose action differs between the most common policy before and after."""
    if not before or not after:
        return {}
    old = _actions(policies.get(before.most_common(1)[0][0], {}))
    new = _actions(policies.get(after.most_common(1)[0][0], {}))
    return {
        reason: {"before": old.get(reason, "-"), "after": new.get(reason, "-")}
        for reason in sorted(set(old) | set(new))
        if old.get(reason) != new.get(reason)
    }


def render_diff(diff: Mapping[str, Any]) -> str:
    """The diff for a person: what changed, by how much, under which policies."""
    lines = [
        f"re-check {diff['recheck_id']}: {diff['documents']} documents ({diff['selection']})",
        "  outcomes      "
        + ", ".join(f"{name} {count}" for name, count in diff["outcomes"].items()),
        f"  changed       {diff['changed']} of {diff['documents']}",
        "",
        "verdicts (before -> after)",
    ]
    for transition, count in sorted(diff["transitions"].items(), key=lambda kv: (-kv[1], kv[0])):
        was, _, now = transition.partition("->")
        mark = "" if was == now else "  *"
        lines.append(f"  {was:>7} -> {now:<7} {count:>6}{mark}")
    if diff["reasons_added"] or diff["reasons_removed"]:
        lines += ["", "reasons"]
        for reason, count in diff["reasons_added"].items():
            lines.append(f"  + {reason:<24} {count:>6}")
        for reason, count in diff["reasons_removed"].items():
            lines.append(f"  - {reason:<24} {count:>6}")
    policy = diff["policy"]
    lines += ["", "policy"]
    for when in ("before", "after"):
        for seen in policy[when]:
            lines.append(f"  {when:<7} {seen['fingerprint']}  ({seen['documents']} documents)")
    for reason, change in policy["rules_changed"].items():
        lines.append(f"  rule    {reason}: {change['before']} -> {change['after']}")
    if diff["changed_documents"]:
        listed, total = diff["changed_documents_listed"], diff["changed"]
        lines += ["", f"changed documents ({listed} of {total} listed)"]
        for row in diff["changed_documents"]:
            reasons = " ".join(
                [*(f"+{r}" for r in row["added"]), *(f"-{r}" for r in row["removed"])]
            )
            lines.append(f"  {row['before']} -> {row['after']}  {row['document']}  {reasons}")
    return "\n".join(lines)
