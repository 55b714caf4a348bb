"""Document-level checks: can the pages be checked at all, and what the document holds.

Run in a parser process (``pipeline.pdf.parser_process``). Nothing here knows about Temporal,
S3 or Kafka, so every check is testable on a local file; results carry facts and counts,
never document text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import IO
from typing import Any
from typing import TypeVar

from pypdf import PdfReader
from pypdf.errors import FileNotDecryptedError
from pypdf.generic import ArrayObject
from pypdf.generic import DictionaryObject

from pipeline.facts import DocumentFeatures
from pipeline.pdf.attachments import AttachedTexts
from pipeline.pdf.attachments import embedded_files
from pipeline.pdf.attachments import read_attached
from pipeline.pdf.form_values import values_no_page_shows
from pipeline.pdf.integrity import examine_integrity
from pipeline.pdf.metadata import information
from pipeline.pdf.metadata import with_metadata
from pipeline.pdf.objects import action_types
from pipeline.pdf.objects import additional_action_types
from pipeline.pdf.objects import as_array
from pipeline.pdf.objects import as_dict
from pipeline.pdf.objects import describe_error
from pipeline.pdf.objects import metadata_value
from pipeline.pdf.objects import name_tree_count
from pipeline.pdf.objects import pdf_date
from pipeline.pdf.objects import terminal_field
from pipeline.pdf.objects import text_string
from pipeline.pdf.objects import walk_fields
from pipeline.pdf.objects import walk_outline
from pipeline.pdf.pages import index_pages
from pipeline.pdf.repair import RepairError
from pipeline.pdf.repair import repair_copy
from pipeline.pdf.repair import repaired_path
from pipeline.pdf.sensitive import find_sensitive
from pipeline.pdf.sensitive import joined_up_to
from pipeline.reasons import Reason

T = TypeVar("T")

_PDF_MAGIC = b"%PDF-"
_VERSION = re.compile(r"^\d\.\d$")
# The values of form fields that no page shows, searched at the most: a page of text's worth.
_MAX_FIELD_CHARS = 100_000
# Characters of bookmark titles searched for sensitive data, at the most.
_MAX_OUTLINE_CHARS = 100_000


@dataclass(frozen=True)
class DocumentFacts:
    """Document-level facts; ``problem`` says why pages cannot be checked, if they cannot."""

    pdf_version: str | None
    page_count: int
    encrypted: bool
    problem: str | None = None
    problem_detail: str | None = None
    features: DocumentFeatures = field(default_factory=DocumentFeatures)


def open_pdf(path: Path) -> PdfReader:
    """Open a PDF, decrypting it with the empty password when that works.

    Raises:
        FileNotDecryptedError: the document needs a password.
        Exception: pypdf's errors for unreadable files (``PdfReadError`` and others).
    """
    reader = PdfReader(path)
    if reader.is_encrypted:
        reader.decrypt("")
    return reader


def empty_user_password(reader: PdfReader) -> bool:
    """True when the empty string is the document's *user* password.

    ``PdfReader.decrypt("")`` also succeeds when only the *owner* password is empty (qpdf
    makes such files: a user password, no owner password, revision 5 or 6). A viewer asks
    such a document's reader for a password; its author meant it protected, so docpipe
    treats it as needing one.
    """
    from pypdf._encryption import AlgV4
    from pypdf._encryption import AlgV5

    encryption = getattr(reader, "_encryption", None)
    if encryption is None:
        return False
    values = encryption.values
    if encryption.V <= 4:
        key = AlgV4.verify_user_password(
            b"",
            encryption.R,
            encryption.Length,
            values.O,
            values.U,
            encryption.P,
            encryption.id1_entry,
            encryption.EncryptMetadata,
        )
    else:
        key = AlgV5.verify_user_password(encryption.R, b"", values.U, values.UE)
    return bool(key)


def _header_version(head: bytes) -> str:
    return head[head.index(_PDF_MAGIC) + 5 :][:3].decode("ascii", "replace")


def _effective_version(header: str, root: DictionaryObject) -> str:
    # A catalog /Version later than the header's wins (PDF 1.4+ incremental updates).
    catalog = str(root.get("/Version", "")).lstrip("/")
    if _VERSION.match(catalog) and (not _VERSION.match(header) or catalog > header):
        return catalog
    return header


def inspect_document(path: Path) -> DocumentFacts:
    """Document-level checks: can the pages be checked at all, and what the document holds.

    Of the file as it is: :func:`inspect_or_repair` also repairs (and writes a copy).
    """
    # Read from the open file: PdfReader(path) would hold the whole file in memory.
    with path.open("rb") as stream:
        return inspect_stream(stream)[0]


def inspect_or_repair(path: Path) -> tuple[DocumentFacts, PdfReader | None, IO[bytes] | None]:
    """:func:`inspect_path`, then :func:`inspect_repaired` when the file :func:`needs_repair`.

    Returns:
        The facts; and when the pages can be checked, the reader with its pages indexed
        and the open file it reads (the repaired copy's, for a repaired document), which
        the caller closes. Otherwise None and None.
    """
    facts, reader, stream = inspect_path(path)
    if needs_repair(facts):
        return inspect_repaired(path, facts)
    return facts, reader, stream


def inspect_path(
    path: Path, *, integrity: bool = True, diff_budget_s: float | None = None
) -> tuple[DocumentFacts, PdfReader | None, IO[bytes] | None]:
    """:func:`inspect_stream` of the file at ``path``, as it is.

    Args:
        path: the file.
        integrity, diff_budget_s: see :func:`inspect_stream`.

    Returns:
        The facts; and when the pages can be checked, the reader with its pages indexed
        and the open file it reads, which the caller closes. Otherwise None and None.
    """
    # Read from the open file: PdfReader(path) would hold the whole file in memory.
    stream = path.open("rb")
    try:
        facts, reader = inspect_stream(stream, integrity=integrity, diff_budget_s=diff_budget_s)
    except BaseException:
        stream.close()
        raise
    if reader is None:
        stream.close()
        return facts, None, None
    return facts, reader, stream


def needs_repair(facts: DocumentFacts) -> bool:
    """pypdf could not open the file or build its page list: qpdf may still."""
    return facts.problem == Reason.UNREADABLE


def inspect_repaired(
    path: Path, facts: DocumentFacts
) -> tuple[DocumentFacts, PdfReader | None, IO[bytes] | None]:
    """Repair a copy of ``path`` with qpdf (beside it: :func:`pipeline.pdf.repair.repaired_path`)
    and inspect the copy.

    Args:
        path: the damaged file.
        facts: what :func:`inspect_path` found in it (why it needs repair).

    Returns:
        As :func:`inspect_path`: the repaired copy's facts, marked ``repaired``, its reader
        and open file; or ``facts`` (still unreadable, saying why the repair failed too).
    """
    try:
        warnings = repair_copy(path)
    except RepairError as exc:
        return replace(facts, problem_detail=f"{facts.problem_detail}; repair: {exc}"), None, None
    except MemoryError:
        detail = f"{facts.problem_detail}; repair: out of memory"
        return replace(facts, problem_detail=detail), None, None
    fixed, reader, stream = inspect_path(repaired_path(path), integrity=False)
    if reader is None:
        detail = f"{facts.problem_detail}; repaired copy: {fixed.problem_detail}"
        return replace(facts, problem_detail=detail[:400]), None, None
    features = replace(
        fixed.features,
        repaired=True,
        repair_cause=facts.problem_detail,
        repair_warnings=warnings,
        integrity_error="not examined: the document needed repair",
    )
    # The version is the one the damaged file declares, not the one qpdf wrote.
    version = facts.pdf_version or fixed.pdf_version
    return replace(fixed, pdf_version=version, features=features), reader, stream


def inspect_stream(
    stream: IO[bytes], *, integrity: bool = True, diff_budget_s: float | None = None
) -> tuple[DocumentFacts, PdfReader | None]:
    """The document-level checks of an open file, and the reader they used.

    Args:
        stream: the open file.
        integrity: also read the file's revisions and signatures (a repaired copy's
            would be qpdf's, not the document's).
        diff_budget_s: seconds the analysis of changes after signatures may take in all
            (:func:`pipeline.pdf.integrity.examine_integrity`); None: no limit of its own.

    Returns:
        The facts, and when the pages can be checked (no ``problem``) the decrypted
        reader with its pages indexed (:func:`pipeline.pdf.pages.index_pages`), reading from
        ``stream``; otherwise None.
    """
    head = stream.read(1024)
    stream.seek(0)
    if _PDF_MAGIC not in head:
        return DocumentFacts(
            None, 0, False, Reason.NOT_PDF, "no %PDF- header in the first 1 KiB"
        ), None
    version = _header_version(head)
    try:
        reader = PdfReader(stream)
    except Exception as exc:
        return DocumentFacts(version, 0, False, Reason.UNREADABLE, describe_error(exc)), None
    encrypted = reader.is_encrypted
    revision: int | None = None
    if encrypted:
        try:
            encrypt = as_dict(reader.trailer["/Encrypt"]) or DictionaryObject()
            revision = int(encrypt.get("/R", 0)) or None
            opens = bool(reader.decrypt("")) and empty_user_password(reader)
        except Exception as exc:
            return DocumentFacts(version, 0, True, Reason.ENCRYPTED, describe_error(exc)), None
        if not opens:
            features = DocumentFeatures(encryption_revision=revision)
            return DocumentFacts(
                version, 0, True, Reason.ENCRYPTED, "needs a password", features
            ), None
    try:
        # Counted as the parser processes will see the pages, in memory that does not
        # grow with the page count (see pipeline.pdf.pages).
        page_count = len(index_pages(reader))
    except FileNotDecryptedError:
        return DocumentFacts(version, 0, True, Reason.ENCRYPTED, "needs a password"), None
    except Exception as exc:
        return DocumentFacts(version, 0, encrypted, Reason.UNREADABLE, describe_error(exc)), None
    if page_count == 0:
        return DocumentFacts(
            version, 0, encrypted, Reason.UNREADABLE, "the document has no pages"
        ), None
    try:
        root = as_dict(reader.trailer["/Root"])
        if root is None:
            raise ValueError("the document catalog is not a dictionary")
        version = _effective_version(version, root)
    except Exception as exc:
        # The pages can still be checked; a broken catalog is a fact, not a verdict.
        features = DocumentFeatures(
            encryption_revision=revision,
            empty_user_password=encrypted,
            read_error=describe_error(exc),
        )
    else:
        parts = _Parts()
        features = parts.read(
            "catalog",
            lambda: _document_features(reader, root, encrypted, revision, parts),
            DocumentFeatures(encryption_revision=revision, empty_user_password=encrypted),
        )
        features = parts.read("metadata", lambda: with_metadata(reader, features), features)
        if integrity:
            features = _with_integrity(stream, features, diff_budget_s)
        features = replace(features, read_error="; ".join(parts.failed) or None)
    facts = DocumentFacts(version, page_count, encrypted, features=features)
    return facts, reader


class _Parts:
    """Reads the parts of the document-level checks one at a time: a part that fails is
    noted (``read_error``), and the others are read all the same, so that one broken
    entry (an ``/Info`` that is no dictionary) cannot hide what another holds (an
    open action's JavaScript)."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def read(self, what: str, read: Callable[[], T], otherwise: T) -> T:
        try:
            return read()
        except Exception as exc:
            self.failed.append(f"{what}: {describe_error(exc)}")
            return otherwise


def _document_features(
    reader: PdfReader,
    root: DictionaryObject,
    encrypted: bool,
    revision: int | None,
    parts: _Parts,
) -> DocumentFeatures:
    names = parts.read("names", lambda: as_dict(root.get("/Names")), None) or DictionaryObject()
    none: list[str] = []
    javascript, launch = parts.read("actions", lambda: _actions(root, names), (none, 0))
    acroform = parts.read("form", lambda: as_dict(root.get("/AcroForm")), None)
    form_fields = as_array(None if acroform is None else acroform.get("/Fields"))
    fields, xfa, field_scripts, field_launch = parts.read(
        "form fields", lambda: _form(acroform, form_fields), (0, False, False, 0)
    )
    if field_scripts:
        javascript.append("form_actions")
    launch += field_launch
    info: Mapping[str, Any] = parts.read("information entries", lambda: information(reader), {})
    attached = parts.read(
        "attachments",
        lambda: read_attached(embedded_files(names.get("/EmbeddedFiles"))),
        AttachedTexts(),
    )
    in_attached = find_sensitive("\n".join(attached.texts))
    off_pages: list[str] = parts.read(
        "form values", lambda: values_no_page_shows(reader, acroform), []
    )
    in_fields = find_sensitive(joined_up_to(off_pages, _MAX_FIELD_CHARS))
    bookmarks: list[str] = parts.read("outline", lambda: _bookmarks(root), [])
    in_outline = find_sensitive(joined_up_to(bookmarks, _MAX_OUTLINE_CHARS))
    return DocumentFeatures(
        encryption_revision=revision,
        # Pages are only checked when an encrypted document opens without a password.
        empty_user_password=encrypted,
        javascript=javascript,
        launch_actions=launch,
        embedded_files=name_tree_count(names.get("/EmbeddedFiles")),
        acroform=bool(form_fields),
        form_fields=fields,
        xfa=xfa,
        producer=metadata_value(info.get("/Producer")),
        creator=metadata_value(info.get("/Creator")),
        created=pdf_date(info.get("/CreationDate")),
        modified=pdf_date(info.get("/ModDate")),
        attachment_sensitive=in_attached.counts,
        attachment_sensitive_samples=in_attached.samples,
        attachments_read=len(attached.texts),
        attachments_not_read=attached.not_read,
        field_sensitive=in_fields.counts,
        field_sensitive_samples=in_fields.samples,
        fields_off_pages=len(off_pages),
        outline_sensitive=in_outline.counts,
        outline_sensitive_samples=in_outline.samples,
        outline_items=len(bookmarks),
    )


def _actions(root: DictionaryObject, names: DictionaryObject) -> tuple[list[str], int]:
    """Where the document runs JavaScript, and how many Launch actions it has."""
    javascript: list[str] = []
    if name_tree_count(names.get("/JavaScript")):
        javascript.append("names_tree")
    open_action = action_types(root.get("/OpenAction"))
    if "JavaScript" in open_action:
        javascript.append("open_action")
    document_actions = additional_action_types(root)
    if "JavaScript" in document_actions:
        javascript.append("document_actions")
    return javascript, open_action.count("Launch") + document_actions.count("Launch")


def _form(
    acroform: DictionaryObject | None, form_fields: ArrayObject
) -> tuple[int, bool, bool, int]:
    """The form's fields, whether it is XFA, whether a field runs JavaScript, and its
    fields' Launch actions."""
    if acroform is None:
        return 0, False, False, 0
    fields, scripts, launch = 0, False, 0
    for node in walk_fields(form_fields):
        fields += terminal_field(node)
        kinds = additional_action_types(node) + action_types(node.get("/A"))
        scripts = scripts or "JavaScript" in kinds
        launch += kinds.count("Launch")
    return fields, acroform.get("/XFA") is not None, scripts, launch


def _bookmarks(root: DictionaryObject) -> list[str]:
    titles = [text_string(item.get("/Title")) for item in walk_outline(root.get("/Outlines"))]
    return [title for title in titles if title]


def _with_integrity(
    stream: IO[bytes], features: DocumentFeatures, diff_budget_s: float | None
) -> DocumentFeatures:
    try:
        found = examine_integrity(stream, diff_budget_s=diff_budget_s)
    except Exception as exc:
        return replace(features, integrity_error=describe_error(exc))
    finally:
        stream.seek(0)
    return replace(
        features,
        revisions=found.revisions,
        revision_ends=found.revision_ends,
        signature_fields=found.signature_fields,
        signatures=found.signatures,
        modified_after_signing=found.modified_after_signing,
    )
