"""The diff a bulk re-check ends with: each document's verdict before and after, counted.

Pure functions over report rows (``comparison_row``), used by the re-check's activities
and by ``docpipe recheck show``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from pipeline.models import REPORT_NAME
from pipeline.recheck.models import Match
from pipeline.recheck.models import RecheckSelection
from pipeline.recheck.models import RecheckTotals

DIFF_VERSION = 1
# A verdict where there is no report (never checked, or the re-check did not finish).
NONE = "none"


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
