"""Every document check and verdict reason, on generated documents (the page checks:
``test_page_features``).

Expectations come from the generator's constants (``tests.support.feature_pdfs``): what was
put into a document is what the checks must find, and the decoys must not be found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.pdf.document_checks import inspect_document
from pipeline.policy import VerdictPolicy
from pipeline.reasons import FINDINGS
from pipeline.reasons import PROBLEMS
from pipeline.reasons import VERDICT_REASONS
from tests.support.feature_pdfs import ATTACHMENT
from tests.support.feature_pdfs import FIELD_NAMES
from tests.support.feature_pdfs import METADATA
from tests.support.feature_pdfs import PAGE_KINDS
from tests.support.feature_pdfs import SEEDED
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.hostile import build_pdf
from tests.support.hostile import stream
from tests.support.pdfs import make_pdf
from tests.support.reports import report_of_file

KINDS = list(PAGE_KINDS)


@pytest.fixture(scope="module")
def report(everything: Path) -> dict[str, Any]:
    return report_of_file(everything)


def _write(pdf_dir: Path, name: str, data: bytes) -> Path:
    path = pdf_dir / name
    path.write_bytes(data)
    return path


# --- document checks ---------------------------------------------------------------------


def test_document_features(everything: Path) -> None:
    facts = inspect_document(everything)
    features = facts.features
    assert facts.problem is None and facts.page_count == len(KINDS)
    assert features.javascript == ["names_tree", "open_action"]
    # The open action chains JavaScript, then Launch: /Next is followed.
    assert features.launch_actions == 1
    assert features.embedded_files == 1
    assert features.acroform is True
    assert features.form_fields == len(FIELD_NAMES)
    assert features.xfa is True
    assert features.producer == METADATA["/Producer"]
    assert features.creator == METADATA["/Creator"]
    assert features.created == "2026-01-02T03:04:05+01:00"
    assert features.modified == "2026-02-03T04:05:06Z"


def test_metadata_never_carries_document_text(report: dict[str, Any]) -> None:
    assert METADATA["/Title"] not in str(report)
    assert ATTACHMENT[0] not in str(report)
    assert set(report["facts"]["metadata"]) == {"producer", "creator", "created", "modified"}


def test_plain_document_has_no_features(pdf_dir: Path) -> None:
    features = inspect_document(_write(pdf_dir, "plain.pdf", make_pdf(["text"]))).features
    assert features.javascript == []
    assert features.launch_actions == features.embedded_files == features.form_fields == 0
    assert features.acroform is False and features.xfa is False
    # fpdf2 writes a creation date and no producer.
    assert features.producer is None
    assert features.created == "2026-01-01T00:00:00Z"


def test_report_of_everything(report: dict[str, Any]) -> None:
    checks = report["checks"]
    assert checks["pages_checked"] == len(KINDS)
    assert checks["blank_pages"]["pages"] == [KINDS.index("blank") + 1]
    assert checks["image_only_pages"]["pages"] == [KINDS.index("image") + 1]
    assert checks["rotated_pages"]["by_angle"] == {"90": 1}
    assert checks["page_sizes"]["by_paper"] == {
        "A4": len(KINDS) - 2,
        "Letter": 1,
        "Legal": 1,
        "other": 0,
    }
    assert checks["page_sizes"]["mixed"] is True
    assert checks["links"]["hosts"] == ["docs.example.org", "www.example.com"]
    assert checks["javascript"]["document"] == ["names_tree", "open_action"]
    assert checks["javascript"]["pages"]["pages"] == [KINDS.index("script") + 1]
    assert checks["launch_actions"] == {
        "total": 2,
        "document": 1,
        "pages": {"count": 1, "pages": [KINDS.index("launch") + 1]},
    }
    assert checks["embedded_files"]["total"] == 2
    assert checks["forms"] == {
        "acroform": True,
        "fields": 4,
        "xfa": True,
        "widgets": 5,
        "pages": {"count": 1, "pages": [KINDS.index("form") + 1]},
    }
    sensitive = checks["sensitive_data"]
    page = KINDS.index("sensitive") + 1
    assert sensitive["total"] == sum(len(v) for v in SEEDED.values())
    assert sensitive["by_page"] == [
        {"page": page, "counts": {k: len(v) for k, v in sorted(SEEDED.items())}}
    ]
    for kind, values in SEEDED.items():
        assert sensitive["by_type"][kind]["samples"] == [masked for _, masked in values]
    assert report["verdict"]["verdict"] == "reject"
    # Unsigned and undamaged: the signature and repair findings are in test_signatures and
    # test_repair; checked without OCR, its image page needs it (OCR: test_ocr_checks).
    assert set(report["verdict"]["reasons"]) | set(report["verdict"]["informational"]) == set(
        FINDINGS
    ) - {
        "page_errors",
        "signature_broken",
        "modified_after_signing",
        "repaired",
        "signed",
        "ocr_failed",
        "ocr_low_confidence",
    }


# --- every reason, alone ------------------------------------------------------------------

# A document that finds exactly one reason, and the verdict the default policy gives it.
ALONE: dict[str, tuple[dict[str, Any], str]] = {
    "javascript": ({"pages": ["text"], "javascript": True}, "reject"),
    "launch_actions": ({"pages": ["launch"]}, "reject"),
    "embedded_files": ({"pages": ["text"], "attachment": True}, "review"),
    "xfa_forms": ({"pages": ["text"], "xfa": True}, "review"),
    "blank_pages": ({"pages": ["text", "blank"]}, "review"),
    "needs_ocr": ({"pages": ["text", "image"]}, "review"),
    "sensitive_data": ({"pages": ["sensitive"]}, "review"),
    "forms": ({"pages": ["form"]}, "pass"),
    "rotated_pages": ({"pages": ["text", "rotated"]}, "pass"),
    "mixed_page_sizes": ({"pages": ["text", "letter"]}, "pass"),
    "external_links": ({"pages": ["links"]}, "pass"),
}


@pytest.mark.parametrize("reason", sorted(ALONE))
def test_each_finding_alone(pdf_dir: Path, reason: str) -> None:
    spec, verdict = ALONE[reason]
    kwargs = dict(spec)
    path = _write(pdf_dir, f"{reason}.pdf", make_feature_pdf(**kwargs))
    report = report_of_file(path)
    found = report["verdict"]["reasons"] + report["verdict"]["informational"]
    assert found == [reason]
    assert report["verdict"]["verdict"] == verdict


def test_decoys_alone_pass(pdf_dir: Path) -> None:
    report = report_of_file(_write(pdf_dir, "decoys.pdf", make_feature_pdf(["text", "decoys"])))
    assert report["checks"]["sensitive_data"]["total"] == 0
    assert report["verdict"] == {"verdict": "pass", "reasons": [], "informational": []}


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("not-pdf", b"just some text", "not_pdf"),
        ("header-only", b"%PDF-1.7\nnothing else\n", "unreadable"),
        ("protected", None, "encrypted"),
    ],
)
def test_document_problems_reject(
    pdf_dir: Path, name: str, data: bytes | None, reason: str
) -> None:
    body = data if data is not None else make_pdf(["text"], user_password="secret")
    report = report_of_file(_write(pdf_dir, f"{name}.pdf", body))
    assert report["verdict"] == {"verdict": "reject", "reasons": [reason], "informational": []}
    assert report["facts"]["problem"] == reason
    assert report["checks"]["pages_checked"] == 0


def test_every_reason_is_exercised() -> None:
    # object_missing/object_changed come from S3 (test_finalize), too_large from a HEAD and
    # object_forbidden from a 403 (test_activities); unreadable and page_errors from broken
    # files (above and test_report); the rest from ALONE.
    covered = set(ALONE) | {"not_pdf", "unreadable", "encrypted", "page_errors"}
    covered |= {"object_missing", "object_changed", "too_large", "object_forbidden"}
    # Signed documents in test_signatures, damaged ones in test_repair.
    covered |= {"signature_broken", "modified_after_signing", "signed", "repaired"}
    # Scans read by OCR in test_ocr_checks.
    covered |= {"ocr_failed", "ocr_low_confidence"}
    assert covered == set(VERDICT_REASONS)
    assert set(PROBLEMS) <= covered


# --- the policy decides -------------------------------------------------------------------


def test_policy_can_reject_review_or_ignore_a_finding(pdf_dir: Path) -> None:
    path = _write(pdf_dir, "scan.pdf", make_feature_pdf(["text", "image"]))
    strict = report_of_file(path, VerdictPolicy(reject=("needs_ocr",)))
    assert strict["verdict"]["verdict"] == "reject"
    assert "needs_ocr" in strict["policy"]["reject"]
    lenient = report_of_file(path, VerdictPolicy(ignore=("needs_ocr",)))
    assert lenient["verdict"] == {
        "verdict": "pass",
        "reasons": [],
        "informational": ["needs_ocr"],
    }
    assert lenient["policy"]["ignore"] == ["needs_ocr"]
    # Rotated pages are ignored by default; a policy may ask for review of them.
    rotated = _write(pdf_dir, "rotated.pdf", make_feature_pdf(["text", "rotated"]))
    assert report_of_file(rotated, VerdictPolicy(ignore=()))["verdict"]["verdict"] == "review"


def test_cyclic_structures_end(pdf_dir: Path) -> None:
    from pypdf import PdfReader
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject

    writer = PdfWriter(clone_from=PdfReader(_write(pdf_dir, "base.pdf", make_pdf(["text"]))))
    # An open action whose /Next chain comes back to itself.
    first = DictionaryObject({NameObject("/S"): NameObject("/JavaScript")})
    second = DictionaryObject({NameObject("/S"): NameObject("/Launch")})
    first_ref, second_ref = writer._add_object(first), writer._add_object(second)
    first[NameObject("/Next")] = second_ref
    second[NameObject("/Next")] = first_ref
    writer.root_object[NameObject("/OpenAction")] = first_ref
    # A name tree and a field tree that contain themselves.
    tree = DictionaryObject()
    tree_ref = writer._add_object(tree)
    tree[NameObject("/Kids")] = ArrayObject([tree_ref])
    writer.root_object[NameObject("/Names")] = DictionaryObject(
        {NameObject("/EmbeddedFiles"): tree_ref, NameObject("/JavaScript"): tree_ref}
    )
    field = DictionaryObject({NameObject("/T"): NameObject("/loop")})
    field_ref = writer._add_object(field)
    field[NameObject("/Kids")] = ArrayObject([field_ref])
    writer.root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject([field_ref])}
    )
    path = pdf_dir / "cycles.pdf"
    with path.open("wb") as out:
        writer.write(out)
    features = inspect_document(path).features
    assert features.javascript == ["open_action"]
    assert features.launch_actions == 1
    assert features.embedded_files == 0
    assert features.acroform is True
    assert report_of_file(path)["verdict"]["verdict"] == "reject"


@pytest.mark.parametrize("info", [b"[1 2 3]", b"42"])
def test_a_broken_entry_hides_nothing_the_other_entries_hold(info: bytes, tmp_path: Path) -> None:
    # An open action's JavaScript, an attached file with a card number, and an /Info that
    # is no dictionary (reading it raises).
    catalog = (
        b"<< /Type /Catalog /Pages 2 0 R /OpenAction << /S /JavaScript /JS (app.alert(1)) >>"
        b" /Names << /EmbeddedFiles << /Names [(a.txt) 9 0 R] >> >> >>"
    )
    objects = {
        1: catalog,
        2: b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        4: stream(b""),
        9: b"<< /Type /Filespec /F (a.txt) /EF << /F 10 0 R >> >>",
        10: stream(b"card 4111 1111 1111 1111"),
        11: info,
    }
    path = tmp_path / "broken-info.pdf"
    path.write_bytes(build_pdf(objects).replace(b"/Root 1 0 R >>", b"/Root 1 0 R /Info 11 0 R >>"))
    features = inspect_document(path).features
    assert features.javascript == ["open_action"]
    assert features.embedded_files == 1
    assert features.attachment_sensitive == {"payment_card": 1}
    assert features.read_error is not None
    assert features.read_error.startswith("information entries: ")
