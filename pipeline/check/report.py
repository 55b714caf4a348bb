"""The report: the page summary (``pipeline.check.page_summary``), the document-level
checks, and the verdict.

The fields are described in docs/REPORT.md and pinned by docs/report.schema.json.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.check.page_summary import PageSummary
from pipeline.facts import DocumentFeatures
from pipeline.facts import SignatureFacts
from pipeline.models import DocumentRef
from pipeline.models import InspectResult
from pipeline.policy import Verdict
from pipeline.policy import VerdictPolicy
from pipeline.reasons import Reason

REPORT_SCHEMA_VERSION = 2


def findings(inspection: InspectResult, summary: PageSummary, policy: VerdictPolicy) -> list[str]:
    """Every reason the check found, whatever the policy makes of it."""
    if inspection.problem:
        return [inspection.problem]
    features = inspection.features
    found: list[str] = []
    if summary.errors.count:
        ratio = summary.errors.count / summary.pages if summary.pages else 1.0
        unreadable = ratio >= policy.unreadable_page_ratio
        found.append(Reason.UNREADABLE if unreadable else Reason.PAGE_ERRORS)
    signed = [signature for signature in features.signatures if signature.signed]
    checks = {
        Reason.JAVASCRIPT: bool(features.javascript) or summary.javascript_actions > 0,
        Reason.LAUNCH_ACTIONS: features.launch_actions > 0 or summary.launch_actions > 0,
        Reason.SIGNATURE_BROKEN: any(_broken(signature) for signature in signed),
        Reason.MODIFIED_AFTER_SIGNING: features.modified_after_signing,
        Reason.REPAIRED: features.repaired,
        Reason.EMBEDDED_FILES: features.embedded_files > 0 or summary.file_attachments > 0,
        Reason.XFA_FORMS: features.xfa,
        Reason.NEEDS_OCR: summary.not_read.count > 0,
        Reason.OCR_FAILED: summary.ocr_failed.count > 0,
        Reason.OCR_LOW_CONFIDENCE: summary.ocr_below(policy.ocr_min_confidence) > 0,
        Reason.BLANK_PAGES: summary.blank.count > 0,
        Reason.SENSITIVE_DATA: summary.sensitive_total > 0
        or bool(features.metadata_sensitive)
        or bool(features.attachment_sensitive)
        or bool(features.field_sensitive)
        or bool(features.outline_sensitive),
        Reason.FORMS: features.acroform or summary.form_widgets > 0,
        Reason.ROTATED_PAGES: summary.rotated.count > 0,
        Reason.MIXED_PAGE_SIZES: summary.mixed_sizes,
        Reason.EXTERNAL_LINKS: summary.external_links > 0,
        Reason.SIGNED: bool(signed),
    }
    found.extend(reason for reason, present in checks.items() if present)
    return found


def _broken(signature: SignatureFacts) -> bool:
    """A signature whose bytes or whose signature do not verify (trust aside)."""
    return signature.intact is False or signature.signature_valid is False


def decide_verdict(
    inspection: InspectResult, summary: PageSummary, policy: VerdictPolicy | None = None
) -> Verdict:
    """The verdict under ``policy`` (default: the plan's policy, fixed at inspection)."""
    policy = policy or inspection.plan.policy
    return policy.decide(findings(inspection, summary, policy))


def _found(counts: dict[str, int], samples: dict[str, list[str]]) -> dict[str, Any]:
    """Findings outside the pages: a total, and by type a count and masked samples."""
    return {
        "total": sum(counts.values()),
        "by_type": {
            kind: {"count": count, "samples": samples.get(kind, [])}
            for kind, count in counts.items()
        },
    }


def _document_checks(inspection: InspectResult, summary: PageSummary) -> dict[str, Any]:
    features = inspection.features
    return {
        "sensitive_data": {
            **summary.sensitive_json(),
            # Found in the document's metadata (information entries, XMP), not on a page.
            "metadata": _found(features.metadata_sensitive, features.metadata_sensitive_samples),
            # Found in the text files, PDFs and office documents of the EmbeddedFiles name
            # tree (a page's attachments count on that page).
            "attachments": {
                **_found(features.attachment_sensitive, features.attachment_sensitive_samples),
                "read": features.attachments_read,
                "not_read": features.attachments_not_read,
            },
            # Found in the values of form fields that no page shows (a page's fields count
            # on that page) and in an XFA form's data.
            "form_fields": {
                **_found(features.field_sensitive, features.field_sensitive_samples),
                "read": features.fields_off_pages,
            },
            # Found in the titles of the document's bookmarks.
            "outline": {
                **_found(features.outline_sensitive, features.outline_sensitive_samples),
                "read": features.outline_items,
            },
        },
        "javascript": {
            "found": bool(features.javascript) or summary.javascript_actions > 0,
            "document": features.javascript,
            "page_actions": summary.javascript_actions,
            "pages": summary.with_javascript.to_json(),
        },
        "launch_actions": {
            "total": features.launch_actions + summary.launch_actions,
            "document": features.launch_actions,
            "pages": summary.with_launch.to_json(),
        },
        "embedded_files": {
            "total": features.embedded_files + summary.file_attachments,
            "document": features.embedded_files,
            "annotations": summary.file_attachments,
            "pages": summary.with_attachments.to_json(),
        },
        "forms": {
            "acroform": features.acroform,
            "fields": features.form_fields,
            "xfa": features.xfa,
            "widgets": summary.form_widgets,
            "pages": summary.with_widgets.to_json(),
        },
        "signatures": _signatures(features),
    }


def _signatures(features: DocumentFeatures) -> dict[str, Any]:
    signed = [s for s in features.signatures if s.signed]
    return {
        # Digests and signatures are checked with the certificates the document carries;
        # whether their issuers are trusted is not (no network, no trust anchors).
        "trust": "not_checked",
        "fields": features.signature_fields,
        "signed": len(signed),
        "intact": sum(1 for s in signed if s.intact is True and s.signature_valid is True),
        "broken": sum(1 for s in signed if _broken(s)),
        "modified_after_signing": features.modified_after_signing,
        "error": features.integrity_error,
        "listed": [dataclasses.asdict(s) for s in features.signatures],
    }


def _revisions(features: DocumentFeatures) -> dict[str, Any]:
    count = features.revisions
    return {
        "count": count,
        "incremental_updates": None if count is None else max(0, count - 1),
        "ends": features.revision_ends,
    }


def build_report(
    *,
    document: DocumentRef,
    inspection: InspectResult,
    summary: PageSummary,
    chunk_keys: list[str],
    chunk_pages: int,
    results_prefix: str = "",
    workflow_id: str | None = None,
) -> dict[str, Any]:
    """The ``report.json`` document. Deterministic: no clocks, no hostnames."""
    policy = inspection.plan.policy
    verdict = decide_verdict(inspection, summary, policy)
    features = inspection.features
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "policy": policy.to_json(),
        "document": {**document.identity_json(), "size": inspection.size},
        "check": {"workflow_id": workflow_id, "results_prefix": results_prefix},
        "facts": {
            "pdf_version": inspection.pdf_version,
            "page_count": inspection.page_count,
            "encrypted": inspection.encrypted,
            "empty_user_password": features.empty_user_password,
            "encryption_revision": features.encryption_revision,
            "problem": inspection.problem,
            "problem_detail": inspection.problem_detail,
            "metadata": {
                "producer": features.producer,
                "creator": features.creator,
                "created": features.created,
                "modified": features.modified,
            },
            "read_error": features.read_error,
            "repair": {
                "repaired": features.repaired,
                "cause": features.repair_cause,
                "warnings": features.repair_warnings,
            },
            "revisions": _revisions(features),
            # What the XMP metadata claims; docpipe does not validate conformance.
            "claims": {
                "validated": False,
                "pdfa_part": features.pdfa_part,
                "pdfa_conformance": features.pdfa_conformance,
                "pdfua_part": features.pdfua_part,
            },
        },
        "checks": {
            **summary.to_json(),
            "ocr": summary.ocr_json(policy.ocr_min_confidence),
            # Its sensitive_data is the pages', with what the metadata, the attached files and
            # the form fields no page shows hold.
            **_document_checks(inspection, summary),
        },
        "verdict": {
            "verdict": verdict.verdict,
            "reasons": verdict.reasons,
            "informational": verdict.informational,
        },
        "pages": {"chunk_pages": chunk_pages, "chunks": chunk_keys},
    }
