"""``docpipe report``: find a check's report.json and print it for a person.

The verdict comes first, then the pages that need attention, then the document's facts.
A check is named by its workflow ID (``docpipe/...``, also a re-check's) or by its document
ID (``<bucket>/<key>@<version>``, the first check of that version).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

from botocore.exceptions import ClientError
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus

from app.command import Commands
from app.command import with_temporal
from app.lookups import CheckNotFoundError
from app.lookups import add_check_command
from app.lookups import is_document_id
from app.lookups import looks_like_workflow_id
from app.lookups import not_a_check
from app.lookups import query_progress
from app.lookups import workflow_status
from app.report_pages import finding
from app.report_pages import findings_outside_pages
from app.report_pages import page_error_messages
from app.report_pages import reason_pages
from app.review_queue import awaiting_review
from infra.clients import s3_client
from infra.settings import Settings
from pipeline.check.decision_writer import decision_key
from pipeline.models import REPORT_NAME
from pipeline.models import CheckSummary
from pipeline.models import results_prefix_for
from pipeline.models import workflow_id_for
from pipeline.progress import CheckProgress
from pipeline.reasons import Reason

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Pages listed on screen; report.json has them all (up to its own cap).
MAX_PRINTED_PAGES = 50
# Where sensitive data outside the pages was found, as the report view says it.
_WHERE = {
    "metadata": "the document metadata",
    "attachments": "attached files",
    "form_fields": "form fields no page shows",
    "outline": "bookmarks",
}


class ReportNotFoundError(CheckNotFoundError):
    """There is no report (yet) for what was asked; the message says why."""


@dataclass(frozen=True)
class ReportLocation:
    """Where a check's report is, and which check wrote it."""

    bucket: str
    key: str
    workflow_id: str

    @property
    def url(self) -> str:
        """The report's S3 URL, as operators paste it."""
        return f"s3://{self.bucket}/{self.key}"


async def locate_report(settings: Settings, client: Client | None, name: str) -> ReportLocation:
    """Where the report of a workflow ID or a document ID is.

    Args:
        client: needed for workflow IDs only (a document ID's report has a fixed place).

    Raises:
        ReportNotFoundError: the check is unknown, still running, or ended without one.
    """
    if looks_like_workflow_id(name) and client is not None:
        status = await workflow_status(client, name)
        if status == WorkflowExecutionStatus.COMPLETED:
            handle = client.get_workflow_handle(name, result_type=CheckSummary)
            summary = await handle.result()
            return ReportLocation(summary.report_bucket, summary.report_key, name)
        reported = await awaiting_review(client.get_workflow_handle(name))
        if reported is not None and reported.report_key:
            return ReportLocation(reported.report_bucket, reported.report_key, name)
        if status is not None:
            raise ReportNotFoundError(await _not_done(client, name, status))
    if not is_document_id(name):
        raise not_a_check(name)
    # A document ID: its first check's report is at a predictable place.
    key = f"{results_prefix_for(name, settings.s3.results_prefix)}/{REPORT_NAME}"
    workflow_id = workflow_id_for(name, hashed=settings.object_keys_hashed)
    return ReportLocation(settings.s3.results_bucket, key, workflow_id)


def read_decision(s3: S3Client, location: ReportLocation) -> dict[str, Any] | None:
    """``decision.json`` beside the report at ``location``; None when none was taken."""
    key = decision_key(location.key)
    try:
        body = s3.get_object(Bucket=location.bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404"):
            return None
        raise
    decision: dict[str, Any] = json.loads(body)
    return decision


def decision_lines(decision: dict[str, Any]) -> list[str]:
    """A review decision (``decision.json``) for people: who decided what, when."""
    taken = decision["decision"]
    by = "the review policy (deadline passed)" if decision.get("by_policy") else taken["reviewer"]
    line = (
        f"decision  {decision['final_verdict'].upper()} after review: {taken['action']} by "
        f"{by} at {decision['decided_at']}"
    )
    lines = [line]
    if taken.get("reject_reason"):
        lines.append(f"          reason: {taken['reject_reason']}")
    if taken.get("note"):
        lines.append(f"          note: {taken['note']}")
    lines.append(f"          decision {taken['decision_id']}")
    return lines


async def _not_done(client: Client, workflow_id: str, status: WorkflowExecutionStatus) -> str:
    if status == WorkflowExecutionStatus.RUNNING:
        progress = await query_progress(client.get_workflow_handle(workflow_id), CheckProgress)
        step = progress.step if progress else "?"
        return f"{workflow_id} is still checking (step {step}); no report yet"
    return f"{workflow_id} ended {status.name.lower()} without a report"


def read_report(s3: S3Client, location: ReportLocation) -> dict[str, Any]:
    """The report at ``location``.

    Raises:
        ReportNotFoundError: nothing there (yet).
    """
    try:
        body = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("NoSuchKey", "404"):
            raise ReportNotFoundError(f"no report at {location.url} (yet)") from None
        raise
    report: dict[str, Any] = json.loads(body)
    return report


# What ``docpipe report`` says of a page each reason points at (sensitive data and parse
# errors say more: their counts and messages).
_PAGE_TEXT: dict[str, str] = {
    Reason.BLANK_PAGES: "blank",
    Reason.ROTATED_PAGES: "rotated",
    Reason.NEEDS_OCR: "needs OCR (images, no text)",
    Reason.OCR_FAILED: "OCR could not read it",
    Reason.OCR_LOW_CONFIDENCE: "OCR read it with low confidence",
    Reason.JAVASCRIPT: "JavaScript action",
    Reason.LAUNCH_ACTIONS: "Launch action",
    Reason.EMBEDDED_FILES: "file attachment",
    Reason.FORMS: "form fields",
    Reason.EXTERNAL_LINKS: "external links",
}


def _page_issues(report: dict[str, Any]) -> dict[int, list[str]]:
    """Page number -> what is wrong there, for the reasons that decided the verdict."""
    reasons = set(report["verdict"]["reasons"])
    if Reason.UNREADABLE in reasons:
        reasons.add(Reason.PAGE_ERRORS)
    issues: dict[int, list[str]] = {}
    messages = page_error_messages(report)
    sensitive = {
        entry["page"]: ", ".join(f"{kind} {n}" for kind, n in entry["counts"].items())
        for entry in report["checks"]["sensitive_data"]["by_page"]
    }
    for reason, pages in reason_pages(report).items():
        if reason not in reasons:
            continue
        for page in pages:
            if reason == Reason.PAGE_ERRORS:
                message = messages[page][-1] if page in messages else None
                text = "cannot be read" + (f" ({message})" if message else "")
            elif reason == Reason.SENSITIVE_DATA:
                text = f"sensitive data: {sensitive[page]}"
            else:
                text = _PAGE_TEXT[reason]
            issues.setdefault(page, []).append(text)
    return dict(sorted(issues.items()))


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _document_lines(report: dict[str, Any]) -> list[str]:
    facts, checks = report["facts"], report["checks"]
    lines = []
    if facts["problem"]:
        lines.append(f"  not checked: {facts['problem']} ({facts['problem_detail'] or '-'})")
    encrypted = _yes_no(facts["encrypted"])
    if facts["encrypted"] and facts["empty_user_password"]:
        encrypted += " (opens without a password)"
    lines.append(
        f"  pages {facts['page_count']}, PDF {facts['pdf_version'] or '?'}, "
        f"{report['document']['size']} bytes, encrypted {encrypted}"
    )
    if facts["problem"]:
        return lines
    javascript = checks["javascript"]
    where = list(javascript["document"])
    if javascript["pages"]["count"]:
        where.append(f"{javascript['pages']['count']} page(s)")
    lines.append(f"  JavaScript {', '.join(where) if where else 'no'}")
    lines.append(
        f"  Launch actions {checks['launch_actions']['total']}, "
        f"embedded files {checks['embedded_files']['total']}"
    )
    forms = checks["forms"]
    lines.append(
        f"  forms: AcroForm {_yes_no(forms['acroform'])} ({forms['fields']} fields), "
        f"XFA {_yes_no(forms['xfa'])}, {forms['widgets']} widgets"
    )
    lines.extend(_integrity_lines(facts, checks))
    links = checks["links"]
    hosts = ", ".join(links["hosts"][:5]) + (" ..." if len(links["hosts"]) > 5 else "")
    lines.append(
        f"  links {links['total']} ({links['external']} external{': ' + hosts if hosts else ''})"
    )
    sizes = checks["page_sizes"]
    papers = ", ".join(f"{name} {n}" for name, n in sizes["by_paper"].items() if n)
    lines.append(f"  paper {papers or '-'}{' (mixed sizes)' if sizes['mixed'] else ''}")
    sensitive = checks["sensitive_data"]
    if sensitive["total"]:
        found = ", ".join(
            finding(kind, entry) for kind, entry in sensitive["by_type"].items() if entry["count"]
        )
        lines.append(f"  sensitive data {sensitive['total']}: {found}")
    lines.extend(_outside_pages_lines(sensitive))
    lines.extend(_ocr_lines(checks))
    meta = facts["metadata"]
    shown = [f"{name} {value}" for name, value in meta.items() if value]
    lines.append(f"  metadata: {'; '.join(shown) if shown else '-'}")
    return lines


def _outside_pages_lines(sensitive: dict[str, Any]) -> list[str]:
    """The sensitive data in the parts of the document outside its pages
    (``app.report_pages.OUTSIDE_PAGES``: its metadata, attached files, form fields that no
    page shows, bookmarks); reports from before a part was searched say nothing of it."""
    return [
        f"  sensitive data in {_WHERE[part]}: {', '.join(found)}"
        for part, found in findings_outside_pages(sensitive).items()
    ]


def _ocr_lines(checks: dict[str, Any]) -> list[str]:
    """What OCR made of the image-only pages (reports before policy 6 say nothing)."""
    ocr = checks.get("ocr") or {}
    read, failed = ocr.get("pages_read", {}).get("count"), ocr.get("failed", {}).get("count")
    if not read and not failed:
        return []
    causes = ", ".join(f"{cause} {n}" for cause, n in ocr["failed"]["by_cause"].items())
    confidence = ocr["mean_confidence"]
    return [
        f"  OCR ({ocr['engine'] or '-'}, {ocr['data'] or '-'}): {read} page(s) read"
        + (f", mean confidence {confidence:g}" if confidence is not None else "")
        + (f"; {failed} not readable ({causes})" if failed else "")
    ]


def _integrity_lines(facts: dict[str, Any], checks: dict[str, Any]) -> list[str]:
    """Repair, revisions, signatures and claims (reports before policy 5 have none)."""
    lines = []
    repair = facts.get("repair") or {}
    if repair.get("repaired"):
        lines.append(
            f"  repaired: pypdf said {repair['cause'] or '-'}; qpdf repaired a copy "
            f"({len(repair['warnings'])} warnings in report.json)"
        )
    revisions = facts.get("revisions") or {}
    if revisions.get("count"):
        lines.append(
            f"  revisions {revisions['count']} "
            f"({revisions['incremental_updates']} incremental updates)"
        )
    signatures = checks.get("signatures") or {}
    if signatures.get("fields"):
        modified = ", modified after signing" if signatures["modified_after_signing"] else ""
        lines.append(
            f"  signatures {signatures['signed']} of {signatures['fields']} fields signed: "
            f"{signatures['intact']} intact, {signatures['broken']} broken{modified} "
            "(certificate trust not checked)"
        )
    claims = facts.get("claims") or {}
    claimed = []
    if claims.get("pdfa_part"):
        claimed.append(f"PDF/A-{claims['pdfa_part']}{claims.get('pdfa_conformance') or ''}")
    if claims.get("pdfua_part"):
        claimed.append(f"PDF/UA-{claims['pdfua_part']}")
    if claimed:
        lines.append(f"  claims {', '.join(claimed)} (not validated)")
    return lines


def render_report(
    report: dict[str, Any],
    location: ReportLocation | None = None,
    decision: dict[str, Any] | None = None,
) -> str:
    """A report for people: verdict (and the review decision on it) first, then the
    pages that need attention."""
    verdict = report["verdict"]
    reasons = ", ".join(verdict["reasons"]) or "-"
    lines = [f"verdict   {verdict['verdict'].upper()}  {reasons}"]
    if verdict["informational"]:
        lines.append(f"          (also found, not counted: {', '.join(verdict['informational'])})")
    if decision is not None:
        lines.extend(decision_lines(decision))
    lines.append(f"document  {report['document']['id']}")
    if location is not None:
        lines.append(f"report    {location.url}")
    workflow = report["check"]["workflow_id"] or (location.workflow_id if location else None)
    if workflow:
        lines.append(f"workflow  {workflow}")
    lines.append(f"policy    {report['policy']['version']}")
    issues = _page_issues(report)
    lines.append("")
    if issues:
        lines.append(f"pages that need attention ({len(issues)}):")
        for page, texts in list(issues.items())[:MAX_PRINTED_PAGES]:
            lines.append(f"  page {page:>5}  {'; '.join(texts)}")
        if len(issues) > MAX_PRINTED_PAGES:
            lines.append(f"  ... and {len(issues) - MAX_PRINTED_PAGES} more (see report.json)")
    else:
        lines.append("pages that need attention: none")
    lines.append("")
    lines.append("document facts:")
    lines.extend(_document_lines(report))
    return "\n".join(lines)


def add_commands(commands: Commands) -> None:
    """``docpipe report``."""
    report = add_check_command(
        commands, "report", "print a check's report: verdict, then pages to look at", _print_report
    )
    report.add_argument("--json", action="store_true", help="print report.json as it is")


def _print_report(args: argparse.Namespace, settings: Settings) -> int:
    """A check's report, for a person or as JSON."""
    if looks_like_workflow_id(args.check):
        location = with_temporal(
            settings, lambda client: locate_report(settings, client, args.check)
        )
    else:
        # A document ID's report is found without Temporal.
        location = asyncio.run(locate_report(settings, None, args.check))
    s3 = s3_client(settings.s3)
    report = read_report(s3, location)
    decision = read_decision(s3, location)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(render_report(report, location, decision))
    return 0
