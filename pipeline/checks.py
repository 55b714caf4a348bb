"""Pure document and page checks: a PDF in, plain results out.

Nothing here knows about Temporal, S3 or Kafka, so every check is testable on a local file.
Results never carry document text: only counts, facts and masked samples of sensitive data
(see ``pipeline.sensitive``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from pypdf import PageObject, PdfReader
from pypdf.errors import FileNotDecryptedError, LimitReachedError
from pypdf.generic import (
    ArrayObject,
    ContentStream,
    DictionaryObject,
    IndirectObject,
    NameObject,
    PdfObject,
    StreamObject,
)

from pipeline.models import DocumentFeatures
from pipeline.pages import index_pages
from pipeline.reasons import Reason
from pipeline.sensitive import find_sensitive

# pypdf logs every recoverable oddity of a broken file at WARNING; they are recorded as
# page errors where they matter.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# A content stream shorter than this (without whitespace) paints nothing worth seeing.
_BLANK_CONTENT_BYTES = 16
_PDF_MAGIC = b"%PDF-"
_VERSION = re.compile(r"^\d\.\d$")

# Paper sizes in points (short side, long side), either orientation.
PAPER_SIZES: dict[str, tuple[float, float]] = {
    "A4": (595.28, 841.89),
    "Letter": (612.0, 792.0),
    "Legal": (612.0, 1008.0),
}
OTHER_PAPER = "other"
# Producers round A4 to 595x842 and the like; a few points either way is the same paper.
_PAPER_TOLERANCE_PT = 3.0

# Bounds that keep a hostile file from inflating results.
_MAX_ANNOTATIONS = 10_000
_MAX_LINK_HOSTS_PER_PAGE = 20
_MAX_SUBTYPES_PER_PAGE = 20
_MAX_TREE_NODES = 10_000
_MAX_ACTION_CHAIN = 100
_MAX_META_CHARS = 120
_SUBTYPE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_EXTERNAL_SCHEMES = ("http", "https", "ftp", "ftps")


@dataclass(frozen=True)
class PageResult:
    """The checks of one page. ``page`` is 1-based, as people count pages.

    ``sensitive`` counts findings by type; ``sensitive_samples`` holds masked samples only.
    """

    page: int
    text_chars: int = 0
    words: int = 0
    image_count: int = 0
    width_pt: float = 0.0
    height_pt: float = 0.0
    paper_size: str | None = None
    rotation: int = 0
    blank: bool = False
    image_only: bool = False
    annotations: dict[str, int] = field(default_factory=dict)
    links: int = 0
    external_links: int = 0
    link_hosts: list[str] = field(default_factory=list)
    # Widget annotations: the places on the page where form fields are filled in.
    form_widgets: int = 0
    file_attachments: int = 0
    javascript_actions: int = 0
    launch_actions: int = 0
    sensitive: dict[str, int] = field(default_factory=dict)
    sensitive_samples: dict[str, list[str]] = field(default_factory=dict)
    error_type: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        # Shallow: the dicts and lists of a result are made for it alone, and asdict's deep
        # copy would cost about 1% of checking the page.
        return {name: getattr(self, name) for name in _PAGE_RESULT_FIELDS}


_PAGE_RESULT_FIELDS = tuple(item.name for item in fields(PageResult))


@dataclass(frozen=True)
class DocumentFacts:
    """Document-level facts; ``problem`` says why pages cannot be checked, if they cannot."""

    pdf_version: str | None
    page_count: int
    encrypted: bool
    problem: str | None = None
    problem_detail: str | None = None
    features: DocumentFeatures = field(default_factory=DocumentFeatures)


def paper_size(width_pt: float, height_pt: float) -> str:
    """``A4``, ``Letter``, ``Legal`` (either orientation) or ``other``."""
    short, long = sorted((abs(width_pt), abs(height_pt)))
    for name, (want_short, want_long) in PAPER_SIZES.items():
        if (
            abs(short - want_short) <= _PAPER_TOLERANCE_PT
            and abs(long - want_long) <= _PAPER_TOLERANCE_PT
        ):
            return name
    return OTHER_PAPER


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
    from pypdf._encryption import AlgV4, AlgV5

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
    """Document-level checks: can the pages be checked at all, and what the document holds."""
    # Read from the open file: PdfReader(path) would hold the whole file in memory.
    with path.open("rb") as stream:
        return inspect_stream(stream)[0]


def inspect_stream(stream: IO[bytes]) -> tuple[DocumentFacts, PdfReader | None]:
    """:func:`inspect_document` of an open file, and the reader it used.

    Returns:
        The facts, and when the pages can be checked (no ``problem``) the decrypted
        reader with its pages indexed (:func:`pipeline.pages.index_pages`), reading from
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
        return DocumentFacts(version, 0, False, Reason.UNREADABLE, _describe(exc)), None
    encrypted = reader.is_encrypted
    revision: int | None = None
    if encrypted:
        try:
            encrypt = _dict(reader.trailer["/Encrypt"]) or DictionaryObject()
            revision = int(encrypt.get("/R", 0)) or None
            opens = bool(reader.decrypt("")) and empty_user_password(reader)
        except Exception as exc:
            return DocumentFacts(version, 0, True, Reason.ENCRYPTED, _describe(exc)), None
        if not opens:
            features = DocumentFeatures(encryption_revision=revision)
            return DocumentFacts(
                version, 0, True, Reason.ENCRYPTED, "needs a password", features
            ), None
    try:
        # Counted as the parser processes will see the pages, in memory that does not
        # grow with the page count (see pipeline.pages).
        page_count = len(index_pages(reader))
    except FileNotDecryptedError:
        return DocumentFacts(version, 0, True, Reason.ENCRYPTED, "needs a password"), None
    except Exception as exc:
        return DocumentFacts(version, 0, encrypted, Reason.UNREADABLE, _describe(exc)), None
    if page_count == 0:
        return DocumentFacts(
            version, 0, encrypted, Reason.UNREADABLE, "the document has no pages"
        ), None
    try:
        root = _dict(reader.trailer["/Root"])
        if root is None:
            raise ValueError("the document catalog is not a dictionary")
        version = _effective_version(version, root)
        features = _document_features(reader, root, encrypted, revision)
    except Exception as exc:
        # The pages can still be checked; a broken catalog entry is a fact, not a verdict.
        features = DocumentFeatures(
            encryption_revision=revision,
            empty_user_password=encrypted,
            read_error=_describe(exc),
        )
    facts = DocumentFacts(version, page_count, encrypted, features=features)
    return facts, reader


# --- document-wide structures ----------------------------------------------------------


def _resolve(value: Any) -> Any:
    return value.get_object() if isinstance(value, (IndirectObject, PdfObject)) else value


def _dict(value: Any) -> DictionaryObject | None:
    value = _resolve(value)
    return value if isinstance(value, DictionaryObject) else None


def _array(value: Any) -> ArrayObject:
    value = _resolve(value)
    return value if isinstance(value, ArrayObject) else ArrayObject()


def action_types(action: Any) -> list[str]:
    """The ``/S`` types of an action and every action chained after it by ``/Next``."""
    found: list[str] = []
    pending = [action]
    seen: set[int] = set()
    visited = 0
    while pending and visited < _MAX_ACTION_CHAIN:
        item = pending.pop(0)
        visited += 1
        if isinstance(item, IndirectObject):
            if item.idnum in seen:
                continue
            seen.add(item.idnum)
        current = _dict(item)
        if current is None:
            continue
        kind = current.get("/S")
        if kind is not None:
            found.append(str(kind).lstrip("/"))
        following = current.get("/Next")
        if isinstance(_resolve(following), ArrayObject):
            pending.extend(_array(following))
        elif following is not None:
            pending.append(following)
    return found


def _additional_action_types(holder: DictionaryObject) -> list[str]:
    """Action types of a page's, annotation's or catalog's ``/AA`` dictionary."""
    triggers = _dict(holder.get("/AA"))
    if triggers is None:
        return []
    return [kind for trigger in triggers.values() for kind in action_types(trigger)]


def _walk_kids(roots: Iterable[Any]) -> Iterator[DictionaryObject]:
    """Every dictionary of a tree linked by ``/Kids`` (name trees, form fields): cycles
    and indirect loops are followed once, and at most ``_MAX_TREE_NODES`` nodes."""
    pending = list(roots)
    seen: set[int] = set()
    visited = 0
    while pending and visited < _MAX_TREE_NODES:
        item = pending.pop()
        visited += 1
        if isinstance(item, IndirectObject):
            if item.idnum in seen:
                continue
            seen.add(item.idnum)
        current = _dict(item)
        if current is None:
            continue
        yield current
        pending.extend(_array(current.get("/Kids")))


def _name_tree_count(node: Any) -> int:
    """Entries in a name tree (``/Names`` pairs, ``/Kids`` subtrees), cycle-safe."""
    return sum(len(_array(current.get("/Names"))) // 2 for current in _walk_kids([node]))


def _walk_fields(fields: ArrayObject) -> Iterator[DictionaryObject]:
    """Every node of an AcroForm field tree, cycle-safe."""
    return _walk_kids(fields)


def _terminal_field(node: DictionaryObject) -> bool:
    # A field whose kids are only widgets (no /T of their own) is one field people fill.
    if "/T" not in node:
        return False
    return not any("/T" in (_dict(kid) or {}) for kid in _array(node.get("/Kids")))


def _metadata_value(value: Any) -> str | None:
    if value is None:
        return None
    text = str(_resolve(value)).strip()
    return text[:_MAX_META_CHARS] or None


_PDF_DATE = re.compile(
    r"^D?:?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:([Zz+-])(\d{2})?'?(\d{2})?'?)?"
)


def pdf_date(value: Any) -> str | None:
    """A PDF date (``D:20210306133900+01'00'``) as ISO 8601; unparseable ones as given."""
    raw = _metadata_value(value)
    if raw is None:
        return None
    match = _PDF_DATE.match(raw)
    if not match:
        return raw
    year, month, day, hour, minute, second, sign, off_h, off_m = match.groups()
    iso = f"{year}-{month or '01'}-{day or '01'}T{hour or '00'}:{minute or '00'}:{second or '00'}"
    if sign in ("Z", "z"):
        iso += "Z"
    elif sign:
        iso += f"{sign}{off_h or '00'}:{off_m or '00'}"
    return iso


def _document_features(
    reader: PdfReader, root: DictionaryObject, encrypted: bool, revision: int | None
) -> DocumentFeatures:
    javascript: list[str] = []
    launch = 0
    names = _dict(root.get("/Names")) or DictionaryObject()
    if _name_tree_count(names.get("/JavaScript")):
        javascript.append("names_tree")
    open_action = action_types(root.get("/OpenAction"))
    if "JavaScript" in open_action:
        javascript.append("open_action")
    launch += open_action.count("Launch")
    document_actions = _additional_action_types(root)
    if "JavaScript" in document_actions:
        javascript.append("document_actions")
    launch += document_actions.count("Launch")

    acroform = _dict(root.get("/AcroForm"))
    fields = 0
    xfa = False
    if acroform is not None:
        xfa = acroform.get("/XFA") is not None
        field_scripts = False
        for node in _walk_fields(_array(acroform.get("/Fields"))):
            fields += _terminal_field(node)
            kinds = _additional_action_types(node) + action_types(node.get("/A"))
            field_scripts = field_scripts or "JavaScript" in kinds
            launch += kinds.count("Launch")
        if field_scripts:
            javascript.append("form_actions")

    info: Mapping[str, Any] = reader.metadata or {}
    return DocumentFeatures(
        encryption_revision=revision,
        # Pages are only checked when an encrypted document opens without a password.
        empty_user_password=encrypted,
        javascript=javascript,
        launch_actions=launch,
        embedded_files=_name_tree_count(names.get("/EmbeddedFiles")),
        acroform=acroform is not None and bool(_array(acroform.get("/Fields"))),
        form_fields=fields,
        xfa=xfa,
        producer=_metadata_value(info.get("/Producer")),
        creator=_metadata_value(info.get("/Creator")),
        created=pdf_date(info.get("/CreationDate")),
        modified=pdf_date(info.get("/ModDate")),
    )


# --- pages -----------------------------------------------------------------------------


@dataclass
class _Annotations:
    by_subtype: dict[str, int] = field(default_factory=dict)
    links: int = 0
    external_links: int = 0
    hosts: list[str] = field(default_factory=list)
    form_widgets: int = 0
    file_attachments: int = 0
    javascript: int = 0
    launch: int = 0

    def actions(self, kinds: list[str]) -> None:
        self.javascript += kinds.count("JavaScript")
        self.launch += kinds.count("Launch")


def _uri_host(action: Any) -> str | None:
    current = _dict(action)
    if current is None or str(current.get("/S")) != "/URI":
        return None
    try:
        parts = urlsplit(str(_resolve(current.get("/URI", ""))).strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in _EXTERNAL_SCHEMES or not host:
        return None
    return host.lower()[:253]


def _check_annotations(page: PageObject) -> _Annotations:
    found = _Annotations()
    found.actions(_additional_action_types(page))
    for item in _array(page.get("/Annots"))[:_MAX_ANNOTATIONS]:
        annotation = _dict(item)
        if annotation is None:
            continue
        subtype = str(annotation.get("/Subtype", "")).lstrip("/")
        if not _SUBTYPE.match(subtype):
            subtype = "Unknown"
        if subtype in found.by_subtype or len(found.by_subtype) < _MAX_SUBTYPES_PER_PAGE:
            found.by_subtype[subtype] = found.by_subtype.get(subtype, 0) + 1
        action = annotation.get("/A")
        found.actions(action_types(action) + _additional_action_types(annotation))
        if subtype == "Link":
            found.links += 1
            host = _uri_host(action)
            if host is not None:
                found.external_links += 1
                if host not in found.hosts and len(found.hosts) < _MAX_LINK_HOSTS_PER_PAGE:
                    found.hosts.append(host)
        elif subtype == "Widget":
            found.form_widgets += 1
        elif subtype == "FileAttachment":
            found.file_attachments += 1
    found.hosts.sort()
    return found


def check_page(page: PageObject, number: int) -> PageResult:
    """Check one page. Errors are raised to the caller, which records them per page."""
    box = page.mediabox
    text, image_count = _text_and_images(page)
    text_chars, words = text_counts(text)
    blank = text_chars == 0 and image_count == 0 and _paints_nothing(page)
    annotations = _check_annotations(page)
    sensitive = find_sensitive(text)
    width, height = round(float(box.width), 2), round(float(box.height), 2)
    return PageResult(
        page=number,
        text_chars=text_chars,
        words=words,
        image_count=image_count,
        width_pt=width,
        height_pt=height,
        paper_size=paper_size(width, height),
        rotation=int(page.rotation) % 360,
        blank=blank,
        image_only=text_chars == 0 and image_count > 0,
        annotations=dict(sorted(annotations.by_subtype.items())),
        links=annotations.links,
        external_links=annotations.external_links,
        link_hosts=annotations.hosts,
        form_widgets=annotations.form_widgets,
        file_attachments=annotations.file_attachments,
        javascript_actions=annotations.javascript,
        launch_actions=annotations.launch,
        sensitive=dict(sorted(sensitive.counts.items())),
        sensitive_samples=dict(sorted(sensitive.samples.items())),
    )


def text_counts(text: str) -> tuple[int, int]:
    """Characters that are not white space, and words (runs of them), of a text."""
    words = text.split()  # splits on exactly the characters str.isspace() names
    return sum(map(len, words)), len(words)


def _text_and_images(page: PageObject) -> tuple[str, int]:
    """The page's text and its number of images, reading its content stream once.

    pypdf's ``extract_text()`` and ``images`` each decode and parse the content stream
    (about a fifth of a plain page's time each); here text extraction gets the stream
    ready-made, and the inline images are counted from the operations it parsed.
    """
    images = _xobject_images(page)
    contents = _content_stream(page)
    if contents is None:
        # No stream to share (none, or not a stream): pypdf's own path handles it.
        return page.extract_text() or "", images
    sharing = PageObject(page.pdf, page.indirect_reference)
    sharing.update(page)
    sharing[NameObject("/Contents")] = contents
    text = sharing.extract_text() or ""
    inline = sum(1 for _, operator in contents.operations if operator == b"INLINE IMAGE")
    return text, images + inline


def _content_stream(page: PageObject) -> ContentStream | None:
    """The page's content stream as text extraction reads it (strings kept as bytes)."""
    contents = page.get("/Contents")
    if contents is None:
        return None
    contents = contents.get_object()
    if not isinstance(contents, (ArrayObject, StreamObject)):
        return None
    return ContentStream(contents, page.pdf, "bytes")


def _xobject_images(holder: DictionaryObject, visited: list[Any] | None = None) -> int:
    """Image XObjects of a page's (or form's) own resources, and inside its forms.

    Counted as pypdf's ``page.images`` lists them: by name, each form once (``visited``
    holds the forms seen, by reference; like pypdf, a form that is not an indirect
    object, whose reference is None, is not looked into).
    """
    if visited is None:
        visited = [None]
    resources = _dict(holder.get("/Resources"))
    if resources is None:
        return 0
    xobjects = _dict(resources.get("/XObject"))
    if xobjects is None:
        return 0
    count = 0
    for name in xobjects:
        entry = xobjects[name]
        if not isinstance(entry, StreamObject):
            continue
        if entry.get("/Subtype", "") == "/Image":
            count += 1
            continue
        form = getattr(entry, "indirect_reference", None)
        if form in visited:
            continue
        visited.append(form)
        count += _xobject_images(entry, visited)
    return count


def _paints_nothing(page: PageObject) -> bool:
    contents = page.get_contents()
    if contents is None:
        return True
    data = contents.get_data()
    return len(bytes(data).translate(None, b" \t\r\n")) < _BLANK_CONTENT_BYTES


def check_pages(reader: PdfReader, first: int, last: int) -> list[PageResult]:
    """Check pages ``first``..``last`` (1-based, inclusive); a broken page gets an error."""
    results = []
    for number in range(first, last + 1):
        try:
            results.append(check_page(reader.pages[number - 1], number))
        except Exception as exc:
            results.append(
                PageResult(page=number, error_type=error_type(exc), error=_describe(exc))
            )
    return results


def error_type(exc: BaseException) -> str:
    """How a page error is classified: ``memory`` and ``limit`` for the parser's limits
    (see pipeline.pool), else the exception's type name (``PdfReadError``, ...)."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, (LimitReachedError, RecursionError)):
        # RecursionError: structures nested deeper than the parser's recursion limit.
        return "limit"
    return type(exc).__name__


def _describe(exc: BaseException) -> str:
    # Messages from pypdf describe structure, not content; cap them all the same.
    return (str(exc) or type(exc).__name__)[:200]
