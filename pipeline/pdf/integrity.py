"""Integrity of a whole document: its revisions and its signatures.

Run in a parser process (``pipeline.pdf.parser_process``), from the document-level checks.
pyHanko reads the revisions and checks each signature offline: the digest over its
``/ByteRange``, the signer's signature over that digest with the certificate embedded in
it, how much of the file it covers, and what later revisions change. Trust in the
certificate chain is out of scope: nothing here reaches out to the network, and no
revocation or trust anchor is consulted. Results are counts and flags: no signer name,
certificate subject or field name is read into them.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import IO
from typing import Any

from pipeline.facts import SignatureFacts
from pipeline.pdf.budget import OverBudget
from pipeline.pdf.budget import TimeBudget
from pipeline.pdf.objects import describe_error

MAX_LISTED_SIGNATURES = 20
MAX_LISTED_REVISIONS = 100
# How far past the end of a revision's cross-reference data its %%EOF may be.
_EOF_SEARCH_BYTES = 8 * 1024
_COVERAGE = {
    "ENTIRE_FILE": "entire_file",
    "ENTIRE_REVISION": "entire_revision",
    "CONTIGUOUS_BLOCK_FROM_START": "contiguous_block",
    "UNCLEAR": "unclear",
}
# pyHanko's modification levels, least to most.
_LEVELS = ("none", "lta_updates", "form_filling", "annotations", "other", "suspicious")


@dataclass(frozen=True)
class Integrity:
    """Revisions and signatures of one file, as :class:`DocumentFeatures` carries them."""

    revisions: int
    revision_ends: list[int] = field(default_factory=list)
    signature_fields: int = 0
    signatures: list[SignatureFacts] = field(default_factory=list)
    modified_after_signing: bool = False


def examine_integrity(stream: IO[bytes], *, diff_budget_s: float | None = None) -> Integrity:
    """The revisions of the file in ``stream`` and the facts of its signature fields.

    Args:
        stream: the open file.
        diff_budget_s: seconds pyHanko's analysis of the changes after signatures may
            take in all (it takes seconds per signature on documents of thousands of
            pages); the signatures not analysed in time say so
            (``pipeline.pdf.budget``). None: no limit of its own.

    Raises:
        Exception: pyHanko could not read the file's revisions.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader

    # pyHanko's warnings may name signature fields: they stay out of the worker's log.
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    stream.seek(0)
    reader = PdfFileReader(stream, strict=False)
    if reader.encrypted:
        # Only documents that open with the empty password get here. pyHanko cannot
        # decrypt some that pypdf can (RC4 without an /ID): their revisions are still
        # read, and their signature dictionaries, if any, fail to read with a reason.
        with contextlib.suppress(Exception):
            reader.decrypt(b"")
    xrefs = reader.xrefs
    ends: list[int] = []
    # The revision (from 1) each of pyHanko's cross-reference sections belongs to.
    numbers: list[int] = []
    revisions, last_end = 0, -1
    for index in range(int(xrefs.total_revisions)):
        end = _revision_end(stream, int(xrefs.get_xref_container_info(index).end_location))
        if end <= last_end:
            # Not appended: a linearized file's first-page section, part of the original.
            numbers.append(max(1, revisions))
            continue
        revisions, last_end = revisions + 1, end
        numbers.append(revisions)
        if len(ends) < MAX_LISTED_REVISIONS:
            ends.append(end)
    fields = 0
    facts: list[SignatureFacts] = []
    if _may_have_signature_fields(reader):
        if _field_walk_too_long(reader.root["/AcroForm"]["/Fields"]):
            raise ValueError(
                f"the form's field tree has over {_MAX_FIELD_VISITS} paths to its fields, "
                f"or is deeper than {_MAX_FIELD_DEPTH}: its signatures are not examined"
            )
        from pyhanko.sign.fields import enumerate_sig_fields

        budget = TimeBudget(diff_budget_s)
        for _name, value, reference in enumerate_sig_fields(reader):
            fields += 1
            if len(facts) < MAX_LISTED_SIGNATURES:
                facts.append(_signature(reader, value, reference, numbers, budget))
    judged = _judge(facts)
    return Integrity(
        revisions=revisions,
        revision_ends=ends,
        signature_fields=fields,
        signatures=judged,
        modified_after_signing=any(f.modified_after for f in judged),
    )


# Fields pyHanko's walk of a form may visit (each path to a field counts), and how deep
# it may go: a real form has far fewer (a few hundred fields, a few levels).
_MAX_FIELD_VISITS = 100_000
_MAX_FIELD_DEPTH = 200


def _may_have_signature_fields(reader: Any) -> bool:
    """False when the document has no form fields at all, so no signature fields either.

    pyHanko's signing modules (about 0.2 s of CPU and 15 MB to load, with an HTTP client
    and certificate validation) are then never loaded: most documents are unsigned, and
    each parser process would otherwise pay for them on its first document. Whatever else
    the catalog holds goes to pyHanko's own enumeration, as before.
    """
    try:
        fields = reader.root["/AcroForm"]["/Fields"]
    except KeyError:
        return False
    return not (isinstance(fields, list) and len(fields) == 0)


def _field_walk_too_long(fields: Any) -> bool:
    """Whether pyHanko's walk of the form's field tree would visit over
    ``_MAX_FIELD_VISITS`` fields, or go deeper than ``_MAX_FIELD_DEPTH``.

    pyHanko goes down every path to every field: a form of 40 fields that each list the
    next one twice among their kids (3.6 KB) has 2^40 paths, hours of its walk. The count
    is made here with each field looked at once.
    """
    counted: dict[tuple[int, int], int] = {}
    on_path: set[tuple[int, int]] = set()
    too_many = _MAX_FIELD_VISITS + 1

    def visits(item: Any, depth: int) -> int:
        if depth > _MAX_FIELD_DEPTH:
            return too_many
        reference = getattr(item, "reference", None)
        key = None if reference is None else (reference.idnum, reference.generation)
        if key is not None:
            if key in on_path:
                return 0  # a loop: pyHanko does not follow it
            if key in counted:
                return counted[key]
            on_path.add(key)
        node = item.get_object() if hasattr(item, "get_object") else item
        kids = node["/Kids"] if isinstance(node, dict) and "/Kids" in node else None
        total = 1
        # A list's own iteration gives references, not what they name.
        for kid in kids if isinstance(kids, list) else []:
            total = min(total + visits(kid, depth + 1), too_many)
            if total == too_many:
                break
        if key is not None:
            on_path.discard(key)
            counted[key] = total
        return total

    total = 0
    for item in fields if isinstance(fields, list) else []:
        total += visits(item, 0)
        if total >= too_many:
            return True
    return False


def _revision_end(stream: IO[bytes], xref_end: int) -> int:
    """The offset just past the ``%%EOF`` (and its end of line) that closes a revision."""
    stream.seek(xref_end)
    tail = stream.read(_EOF_SEARCH_BYTES)
    marker = tail.find(b"%%EOF")
    if marker < 0:
        return xref_end
    end = marker + 5
    if tail[end : end + 2] == b"\r\n":
        end += 2
    elif tail[end : end + 1] in (b"\r", b"\n"):
        end += 1
    return xref_end + end


def _signature(
    reader: Any, value: Any, reference: Any, numbers: list[int], budget: TimeBudget
) -> SignatureFacts:
    if value is None:
        return SignatureFacts(signed=False)
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY
    from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

    kind = "signature"
    sub_filter: str | None = None
    try:
        sig_object = value.get_object()
        if str(sig_object.get("/Type", "")) == "/DocTimeStamp":
            kind = "timestamp"
        raw_filter = sig_object.get("/SubFilter")
        sub_filter = str(raw_filter).lstrip("/")[:60] if raw_filter is not None else None
        embedded: Any = EmbeddedPdfSignature(reader, reference, "")
    except Exception as exc:
        # A signature value that is not a signature (no /ByteRange, no CMS): it cannot be
        # intact.
        return SignatureFacts(
            kind=kind, signed=True, sub_filter=sub_filter, intact=False, error=describe_error(exc)
        )
    facts: dict[str, Any] = {
        "kind": kind,
        "signed": True,
        "sub_filter": sub_filter,
        "revision": numbers[int(embedded.signed_revision)],
    }
    try:
        stamp = embedded.self_reported_timestamp
        if stamp is not None:
            facts["signing_time"] = _iso(stamp)
    except Exception:
        pass
    try:
        facts.update(_digest_checks(embedded, kind))
        embedded.compute_integrity_info(skip_diff=True)
        facts["coverage"] = _COVERAGE.get(embedded.coverage.name, "unclear")
        with budget.running():
            facts["changes_after"] = _changes(embedded.evaluate_modifications(DEFAULT_DIFF_POLICY))
    except OverBudget:
        facts["error"] = (
            f"the analysis of later changes took over {budget.seconds:g} s in all: not done"
        )
    except Exception as exc:
        facts["error"] = describe_error(exc)
        if embedded.coverage is not None:
            facts["coverage"] = _COVERAGE.get(embedded.coverage.name, "unclear")
    return SignatureFacts(**facts)


def _digest_checks(embedded: Any, kind: str) -> dict[str, bool | None]:
    """Whether the file's bytes are those signed, and whether the signature verifies."""
    import hashlib

    from pyhanko.sign.validation.generic_cms import validate_sig_integrity

    digest = embedded.compute_digest()
    try:
        certificate = embedded.signer_cert
    except Exception:
        certificate = None
    if kind == "timestamp":
        # A timestamp token signs its TSTInfo, whose message imprint is the file's digest.
        content = embedded.signed_data["encap_content_info"]["content"]
        imprint = content.parsed["message_imprint"]["hashed_message"].native
        if certificate is None:
            return {"intact": imprint == digest, "signature_valid": None}
        token_digest = hashlib.new(embedded.md_algorithm, content.parsed.dump()).digest()
        _, valid = validate_sig_integrity(
            embedded.signer_info, certificate, "tst_info", token_digest
        )
        return {"intact": imprint == digest, "signature_valid": bool(valid)}
    if certificate is None:
        return {"intact": None, "signature_valid": None}
    intact, valid = validate_sig_integrity(embedded.signer_info, certificate, "data", digest)
    return {"intact": bool(intact), "signature_valid": bool(valid)}


def _changes(diff: Any) -> str:
    level = getattr(diff, "modification_level", None)
    if level is None:
        # pyHanko's SuspiciousModification: a change it does not accept at any level.
        return "suspicious"
    name = str(level.name).lower()
    return name if name in _LEVELS else "other"


def _judge(signatures: list[SignatureFacts]) -> list[SignatureFacts]:
    """Mark the signatures whose later revisions change more than is harmless.

    After the latest signature only DSS and document timestamps are harmless. After an
    earlier one, the later signers' signing (form filling) is too: each later signer
    signed what was there.
    """
    from dataclasses import replace

    signed = [s for s in signatures if s.signed and s.revision is not None]
    latest = max((s.revision or 0 for s in signed), default=0)
    judged = []
    for facts in signatures:
        if not facts.signed or facts.revision is None:
            judged.append(facts)
            continue
        allowed = "lta_updates" if facts.revision == latest else "form_filling"
        if facts.changes_after is not None:
            beyond = _LEVELS.index(facts.changes_after) > _LEVELS.index(allowed)
        else:
            # Not analysed: anything appended after the signed revision counts.
            beyond = facts.coverage not in (None, "entire_file")
        judged.append(replace(facts, modified_after=beyond))
    return judged


def _iso(stamp: datetime) -> str:
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp.replace(microsecond=0).isoformat() + "Z"
