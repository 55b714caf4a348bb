"""Signatures, revisions and claims, checked in real parser processes on documents signed
here (pyHanko, a throwaway self-signed certificate: ``tests.support.signing``).

Expectations come from how each document was made: every signature and every edit is an
incremental update appended to the previous bytes, so a revision ends where the document
it was made from ended.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.check.pool import PagePool
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import inspect_path
from pipeline.pdf.page_checks import PageResult
from tests.support import signing
from tests.support.feature_pdfs import make_feature_pdf
from tests.support.hostile import build_pdf
from tests.support.hostile import stream
from tests.support.pdf_edits import with_xmp
from tests.support.reports import report_of_results


@pytest.fixture(scope="module")
def made() -> dict[str, bytes]:
    """Every signed case, and the bytes each was appended to."""
    unsigned = signing.unsigned()
    once = signing.sign(unsigned)
    return {
        "unsigned": unsigned,
        "intact": once,
        "flipped": signing.flipped_from(once),
        "edited-after-signing": signing.edit_after(once),
        "signed-twice": signing.sign(once, field="Signature2"),
        "dss-after-signing": signing.add_dss(once),
        "timestamp-after-signing": signing.add_timestamp(once),
    }


@pytest.fixture
async def pool() -> AsyncIterator[PagePool]:
    made = PagePool(1)
    yield made
    made.shutdown()


async def _check(pool: PagePool, tmp_path: Path, name: str, data: bytes) -> dict[str, Any]:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    facts = await pool.inspect(path)
    assert facts.problem is None, facts.problem_detail
    results = await pool.check_range(path, 1, facts.page_count)
    report = report_of_results(path, facts, [PageResult(**r) for r in results])
    # Personal data stays out: no signer name, no certificate subject, no field name.
    text = json.dumps(report)
    assert signing.SIGNER_NAME not in text
    assert "Signature1" not in text and "Signature2" not in text
    return report


# A signature field is a form field: forms and signed are both informational by default.
SIGNED_PASSES = {"verdict": "pass", "reasons": [], "informational": ["forms", "signed"]}


def _found(report: dict[str, Any]) -> list[str]:
    return [*report["verdict"]["reasons"], *report["verdict"]["informational"]]


async def test_an_unsigned_document_has_one_revision_and_no_signatures(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    report = await _check(pool, tmp_path, "unsigned", made["unsigned"])
    assert report["facts"]["revisions"] == {
        "count": 1,
        "incremental_updates": 0,
        "ends": [len(made["unsigned"])],
    }
    signatures = report["checks"]["signatures"]
    assert (signatures["fields"], signatures["signed"], signatures["listed"]) == (0, 0, [])
    assert signatures["trust"] == "not_checked"
    assert report["verdict"]["verdict"] == "pass"


async def test_an_intact_signature_is_informational(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    report = await _check(pool, tmp_path, "intact", made["intact"])
    assert report["facts"]["revisions"] == {
        "count": 2,
        "incremental_updates": 1,
        "ends": [len(made["unsigned"]), len(made["intact"])],
    }
    signatures = report["checks"]["signatures"]
    assert {k: signatures[k] for k in ("fields", "signed", "intact", "broken")} == {
        "fields": 1,
        "signed": 1,
        "intact": 1,
        "broken": 0,
    }
    (listed,) = signatures["listed"]
    assert listed["kind"] == "signature"
    assert listed["sub_filter"] == "adbe.pkcs7.detached"
    assert listed["signing_time"] and listed["signing_time"].endswith("Z")
    assert (listed["intact"], listed["signature_valid"]) == (True, True)
    assert (listed["revision"], listed["coverage"]) == (2, "entire_file")
    assert listed["modified_after"] is False
    assert report["verdict"] == SIGNED_PASSES


async def test_a_byte_flipped_inside_the_signed_range_breaks_the_signature(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    report = await _check(pool, tmp_path, "flipped", made["flipped"])
    (listed,) = report["checks"]["signatures"]["listed"]
    assert listed["intact"] is False
    assert report["checks"]["signatures"]["broken"] == 1
    assert report["verdict"]["verdict"] == "reject"
    assert report["verdict"]["reasons"] == ["signature_broken"]


async def test_an_update_appended_after_signing_is_modified_after_signing(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    report = await _check(pool, tmp_path, "edited", made["edited-after-signing"])
    assert report["facts"]["revisions"]["count"] == 3
    assert report["facts"]["revisions"]["ends"] == [
        len(made["unsigned"]),
        len(made["intact"]),
        len(made["edited-after-signing"]),
    ]
    (listed,) = report["checks"]["signatures"]["listed"]
    # What was signed is still intact; the file just is not what was signed.
    assert (listed["intact"], listed["coverage"]) == (True, "entire_revision")
    assert listed["changes_after"] in ("other", "suspicious")
    assert listed["modified_after"] is True
    assert report["checks"]["signatures"]["modified_after_signing"] is True
    assert report["verdict"] == {
        "verdict": "review",
        "reasons": ["modified_after_signing"],
        "informational": ["forms", "signed"],
    }


async def test_two_signatures_are_both_intact_and_the_second_is_no_modification(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    report = await _check(pool, tmp_path, "twice", made["signed-twice"])
    signatures = report["checks"]["signatures"]
    assert (signatures["fields"], signatures["signed"], signatures["intact"]) == (2, 2, 2)
    first, second = signatures["listed"]
    assert (first["revision"], first["coverage"]) == (2, "entire_revision")
    assert first["changes_after"] == "form_filling"
    assert (second["revision"], second["coverage"]) == (3, "entire_file")
    assert not first["modified_after"] and not second["modified_after"]
    assert report["facts"]["revisions"]["ends"] == [
        len(made["unsigned"]),
        len(made["intact"]),
        len(made["signed-twice"]),
    ]
    assert report["verdict"] == SIGNED_PASSES


async def test_a_dss_appended_after_signing_is_harmless(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    report = await _check(pool, tmp_path, "dss", made["dss-after-signing"])
    assert report["facts"]["revisions"]["incremental_updates"] == 2
    (listed,) = report["checks"]["signatures"]["listed"]
    assert (listed["coverage"], listed["changes_after"]) == ("entire_revision", "lta_updates")
    assert listed["modified_after"] is False
    assert report["verdict"] == SIGNED_PASSES


async def test_a_document_timestamp_appended_after_signing_is_harmless(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    report = await _check(pool, tmp_path, "timestamp", made["timestamp-after-signing"])
    signature, timestamp = report["checks"]["signatures"]["listed"]
    assert (signature["coverage"], signature["changes_after"]) == (
        "entire_revision",
        "lta_updates",
    )
    assert signature["modified_after"] is False
    assert timestamp["kind"] == "timestamp"
    assert timestamp["sub_filter"] == "ETSI.RFC3161"
    assert (timestamp["intact"], timestamp["signature_valid"]) == (True, True)
    assert (timestamp["revision"], timestamp["coverage"]) == (3, "entire_file")
    assert report["facts"]["revisions"]["ends"][-1] == len(made["timestamp-after-signing"])
    assert report["verdict"] == SIGNED_PASSES


def test_signature_facts_survive_the_workflow_history() -> None:
    # Features travel from inspect to finalize through Temporal's payload converter.
    from temporalio.converter import DataConverter

    from pipeline.facts import DocumentFeatures
    from pipeline.facts import SignatureFacts

    features = DocumentFeatures(
        revisions=3,
        revision_ends=[10, 20, 30],
        signature_fields=2,
        signatures=[SignatureFacts(signed=True, intact=False, coverage="entire_file")],
        modified_after_signing=True,
        repaired=True,
        repair_warnings=["file: file is damaged"],
        pdfa_part=2,
    )
    converter = DataConverter.default.payload_converter
    (back,) = converter.from_payloads(converter.to_payloads([features]), [DocumentFeatures])
    assert back == features
    assert isinstance(back.signatures[0], SignatureFacts)


async def test_an_empty_signature_field_is_counted_not_signed(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    report = await _check(pool, tmp_path, "empty-field", signing.with_empty_field())
    signatures = report["checks"]["signatures"]
    assert (signatures["fields"], signatures["signed"]) == (1, 0)
    assert signatures["listed"] == [
        {
            "kind": "signature",
            "signed": False,
            "sub_filter": None,
            "signing_time": None,
            "intact": None,
            "signature_valid": None,
            "revision": None,
            "coverage": None,
            "changes_after": None,
            "modified_after": False,
            "error": None,
        }
    ]
    assert "signed" not in _found(report)


# --- claims -------------------------------------------------------------------------------

_XMP = """<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/"
    pdfaid:part="2" pdfaid:conformance="B"/>
  <rdf:Description rdf:about="uuid:1" xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/">
   <pdfuaid:part>1</pdfuaid:part>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


async def test_claims_are_read_from_xmp_as_facts_not_validated(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    # A plain generated document claims PDF/A-2b and PDF/UA-1: docpipe reports the
    # claims as written (it validates neither).
    report = await _check(pool, tmp_path, "claims", with_xmp(made["unsigned"], _XMP))
    assert report["facts"]["claims"] == {
        "validated": False,
        "pdfa_part": 2,
        "pdfa_conformance": "B",
        "pdfua_part": 1,
    }
    assert report["verdict"]["verdict"] == "pass"


async def test_no_or_broken_xmp_claims_nothing(
    pool: PagePool, tmp_path: Path, made: dict[str, bytes]
) -> None:
    nothing = {"validated": False, "pdfa_part": None, "pdfa_conformance": None, "pdfua_part": None}
    report = await _check(pool, tmp_path, "plain", made["unsigned"])
    assert report["facts"]["claims"] == nothing
    broken = with_xmp(made["unsigned"], "<x:xmpmeta><rdf:RDF><unclosed")
    report = await _check(pool, tmp_path, "broken-xmp", broken)
    assert report["facts"]["claims"] == nothing
    assert report["facts"]["problem"] is None


def test_a_long_analysis_of_changes_is_cut_short_and_the_document_still_checked(
    tmp_path: Path,
) -> None:
    # pyHanko's analysis of what changed after a signature takes about 0.7 ms a page
    # here (1.4 s for these 2,000 pages, unloaded): far past a 0.05 s budget on any
    # machine, and nothing else is timed, so the test waits on no clock. (A parser
    # process's budget is a quarter of its inspection's limit.)
    from tests.support.pdfs import make_large_pdf

    data = signing.edit_after(signing.sign(make_large_pdf(2_000)))
    path = tmp_path / "large-edited.pdf"
    path.write_bytes(data)
    facts, _, stream = inspect_path(path, diff_budget_s=0.05)
    if stream is not None:
        stream.close()
    assert facts.problem is None and facts.page_count == 2_000
    (signature,) = facts.features.signatures
    assert (signature.intact, signature.coverage) == (True, "entire_revision")
    assert signature.changes_after is None
    assert "took over 0.05 s in all: not done" in (signature.error or "")
    # Not analysed, and the file goes on after the signed revision: reviewed.
    assert signature.modified_after and facts.features.modified_after_signing


# Examines one file in a fresh interpreter: (revisions, signature fields, whether pyHanko's
# signing modules were loaded).
_EXAMINE = """
import sys
from pipeline.pdf.integrity import examine_integrity
with open(sys.argv[1], "rb") as stream:
    found = examine_integrity(stream)
print(found.revisions, found.signature_fields, "pyhanko.sign" in sys.modules)
"""


# The cases not among ``made``, built only by the case that needs them.
_BUILT: dict[str, Callable[[], bytes]] = {
    "form": lambda: make_feature_pdf(["form"]),
    "empty-field": signing.with_empty_field,
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unsigned", "1 0 False"),
        ("form", "1 0 True"),
        ("empty-field", "2 1 True"),
        ("intact", "2 1 True"),
    ],
)
def test_the_signing_modules_are_loaded_only_for_documents_with_form_fields(
    made: dict[str, bytes], tmp_path: Path, case: str, expected: str
) -> None:
    # They cost a parser process about 0.2 s of CPU and 15 MB, on its first document.
    data = _BUILT[case]() if case in _BUILT else made[case]
    path = tmp_path / f"{case}.pdf"
    path.write_bytes(data)
    examined = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", _EXAMINE, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert examined.stdout.strip() == expected


def _fields_each_listing_the_next_twice(depth: int) -> bytes:
    """A one-page document whose form has ``depth`` fields, each listing the next one
    twice among its kids, the last a signature field: 2^depth paths, ``depth`` fields."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [10 0 R] >> >>",
        2: b"<< /Type /Pages /Count 1 /Kids [3 0 R] >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        4: stream(b""),
    }
    for level in range(depth):
        kid = b"%d 0 R" % (11 + level)
        objects[10 + level] = b"<< /T (a) /Kids [%s %s] >>" % (kid, kid)
    objects[10 + depth] = b"<< /T (s) /FT /Sig >>"
    return build_pdf(objects)


def test_a_field_tree_of_too_many_paths_is_refused_before_it_is_walked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared-kids.pdf"
    path.write_bytes(_fields_each_listing_the_next_twice(40))
    # Walked path by path, as pyHanko walks a field tree, this takes hours.
    features = inspect_document(path).features
    assert features.integrity_error is not None
    assert "paths to its fields" in features.integrity_error
    assert features.signature_fields in (None, 0)
    # A few shared kids are walked as before: their signature field is examined.
    path.write_bytes(_fields_each_listing_the_next_twice(3))
    features = inspect_document(path).features
    assert features.integrity_error is None
    assert features.signature_fields
