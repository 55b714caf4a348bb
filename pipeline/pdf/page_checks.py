"""Page checks: one page in, a ``PageResult`` out.

Run in a parser process (``pipeline.pdf.parser_process``). Results never carry document text:
only counts, facts and masked samples of sensitive data (see ``pipeline.pdf.sensitive``).
Sensitive data is searched in the page's text and in what its annotations hold that the
text does not show: the values filled into its form fields, and comments.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from dataclasses import replace
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

from pypdf import PageObject
from pypdf import PdfReader
from pypdf.generic import ArrayObject
from pypdf.generic import ContentStream
from pypdf.generic import DictionaryObject
from pypdf.generic import NameObject
from pypdf.generic import StreamObject

from pipeline.pdf.attachments import MAX_ATTACHMENTS
from pipeline.pdf.attachments import attached_pdf_budget
from pipeline.pdf.attachments import attached_text
from pipeline.pdf.form_values import field_of
from pipeline.pdf.form_values import field_value
from pipeline.pdf.objects import MAX_PAGE_ANNOTATIONS
from pipeline.pdf.objects import action_types
from pipeline.pdf.objects import additional_action_types
from pipeline.pdf.objects import as_array
from pipeline.pdf.objects import as_dict
from pipeline.pdf.objects import describe_error
from pipeline.pdf.objects import error_type
from pipeline.pdf.objects import resolve
from pipeline.pdf.objects import text_string
from pipeline.pdf.sensitive import SensitiveFindings
from pipeline.pdf.sensitive import find_sensitive
from pipeline.pdf.sensitive import joined_up_to

# A content stream shorter than this (without whitespace) paints nothing worth seeing.
_BLANK_CONTENT_BYTES = 16

# Paper sizes in points (short side, long side), either orientation.
PAPER_SIZES: dict[str, tuple[float, float]] = {
    "A4": (595.28, 841.89),
    "Letter": (612.0, 792.0),
    "Legal": (612.0, 1008.0),
}
OTHER_PAPER = "other"
# Producers round A4 to 595x842 and the like; a few points either way is the same paper.
_PAPER_TOLERANCE_PT = 3.0

# Bounds that keep a hostile page from inflating results.
_MAX_LINK_HOSTS_PER_PAGE = 20
_MAX_SUBTYPES_PER_PAGE = 20
_SUBTYPE = re.compile(r"^[A-Za-z0-9]{1,32}$")
_EXTERNAL_SCHEMES = ("http", "https", "ftp", "ftps")
# Text read from a page's annotations for the sensitive-data search: a page of text's worth.
_MAX_ANNOTATION_TEXT_CHARS = 100_000


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
    # Where the counts and sensitive data come from: "text" (the text layer) or "ocr"
    # (an image-only page read by OCR; pipeline.pdf.ocr_page). Older results lack the
    # OCR fields: they are text pages, or image-only pages that were not read.
    text_source: str = "text"
    # OCR only: mean word confidence (0-100), engine and version, language data, which
    # picture was read (embedded image or rendered page), how far it was turned clockwise
    # to be read (a page lying sideways or upside down), and why OCR could not read the
    # page (its cause code), if it could not.
    ocr_confidence: float | None = None
    ocr_engine: str | None = None
    ocr_data: str | None = None
    ocr_image: str | None = None
    ocr_rotation: int | None = None
    ocr_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as the plain values a chunk file's line holds."""
        # Shallow: the dicts and lists of a result are made for it alone, and asdict's deep
        # copy would cost about 1% of checking the page.
        return {name: getattr(self, name) for name in _PAGE_RESULT_FIELDS}


_PAGE_RESULT_FIELDS = tuple(item.name for item in fields(PageResult))


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


def _uri_host(action: Any) -> str | None:
    current = as_dict(action)
    if current is None or str(current.get("/S")) != "/URI":
        return None
    try:
        parts = urlsplit(str(resolve(current.get("/URI", ""))).strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in _EXTERNAL_SCHEMES or not host:
        return None
    return host.lower()[:253]


def _check_annotations(page: PageObject, number: int) -> PageResult:
    """The page's annotation counts, as the result of a page that holds nothing else."""
    subtypes: Counter[str] = Counter()
    actions = _counted_actions(additional_action_types(page))
    external_links = 0
    link_hosts: list[str] = []
    for item in as_array(page.get("/Annots"))[:MAX_PAGE_ANNOTATIONS]:
        annotation = as_dict(item)
        if annotation is None:
            continue
        subtype = str(annotation.get("/Subtype", "")).lstrip("/")
        subtypes[subtype if _SUBTYPE.match(subtype) else "Unknown"] += 1
        action = annotation.get("/A")
        actions += _counted_actions(action_types(action) + additional_action_types(annotation))
        host = _uri_host(action) if subtype == "Link" else None
        if host is not None:
            external_links += 1
            if host not in link_hosts and len(link_hosts) < _MAX_LINK_HOSTS_PER_PAGE:
                link_hosts.append(host)
    # The subtypes met first (a Counter keeps that order), each with all its annotations.
    kept = islice(subtypes.items(), _MAX_SUBTYPES_PER_PAGE)
    return PageResult(
        page=number,
        annotations=dict(sorted(kept)),
        links=subtypes["Link"],
        external_links=external_links,
        link_hosts=sorted(link_hosts),
        form_widgets=subtypes["Widget"],
        file_attachments=subtypes["FileAttachment"],
        javascript_actions=actions["JavaScript"],
        launch_actions=actions["Launch"],
    )


def _counted_actions(kinds: list[str]) -> Counter[str]:
    return Counter(kind for kind in kinds if kind in ("JavaScript", "Launch"))


def annotation_text(page: PageObject, shown: str = "") -> str:
    """What the page's annotations hold that its content does not show: the values of its
    form fields, annotations' text (comments, free text), and the text of files attached
    to it (``pipeline.pdf.attachments``: text, PDFs and office documents, the first
    ``MAX_ATTACHMENTS``). A value that ``shown`` (the page's text) already holds is not
    read again: a flattened form draws its values into the page and may keep them in its
    widgets too. Bounded: the first ``MAX_PAGE_ANNOTATIONS`` annotations,
    ``_MAX_ANNOTATION_TEXT_CHARS`` characters in all."""
    return joined_up_to(_not_shown(_annotation_texts(page), shown), _MAX_ANNOTATION_TEXT_CHARS)


def _not_shown(texts: Iterator[str], shown: str) -> Iterator[str]:
    # Compared with white space folded (extraction lays a value's spaces out its own
    # way), and folded only for a page whose annotations hold text: most hold none.
    folded: str | None = None
    for text in texts:
        value = " ".join(text.split())
        if not value:
            continue
        if folded is None:
            folded = " ".join(shown.split())
        if value not in folded:
            yield text


def _annotation_texts(page: PageObject) -> Iterator[str]:
    # A field shown by several widgets (its kids) holds one value: read once. The fields
    # are kept, so that no other object takes the identity of one read.
    fields_read: dict[int, DictionaryObject] = {}
    files = 0
    budget = attached_pdf_budget()
    for item in as_array(page.get("/Annots"))[:MAX_PAGE_ANNOTATIONS]:
        annotation = as_dict(item)
        if annotation is None:
            continue
        subtype = resolve(annotation.get("/Subtype"))
        if subtype == "/Popup":  # shows its markup annotation's text, read there
            continue
        yield text_string(annotation.get("/Contents"))
        if subtype == "/FileAttachment" and files < MAX_ATTACHMENTS:
            files += 1
            yield attached_text(annotation.get("/FS"), budget) or ""
        field = field_of(annotation) if subtype == "/Widget" else None
        if field is not None and id(field) not in fields_read:
            fields_read[id(field)] = field
            yield field_value(field)


def sensitive_on(page: PageObject, text: str) -> SensitiveFindings:
    """The sensitive data in ``text`` (the page's, from its text layer or OCR) and in what
    its annotations hold besides (:func:`annotation_text`)."""
    held = annotation_text(page, shown=text)
    return find_sensitive(f"{text}\n{held}" if held else text)


def check_page(page: PageObject, number: int) -> PageResult:
    """Check one page. Errors are raised to the caller, which records them per page."""
    box = page.mediabox
    text, image_count = _text_and_images(page)
    text_chars, words = text_counts(text)
    blank = text_chars == 0 and image_count == 0 and _paints_nothing(page)
    sensitive = sensitive_on(page, text)
    width, height = round(float(box.width), 2), round(float(box.height), 2)
    return replace(
        _check_annotations(page, number),
        text_chars=text_chars,
        words=words,
        image_count=image_count,
        width_pt=width,
        height_pt=height,
        paper_size=paper_size(width, height),
        rotation=int(page.rotation) % 360,
        blank=blank,
        image_only=text_chars == 0 and image_count > 0,
        sensitive=sensitive.counts,
        sensitive_samples=sensitive.samples,
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
    resources = as_dict(holder.get("/Resources"))
    if resources is None:
        return 0
    xobjects = as_dict(resources.get("/XObject"))
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
                PageResult(page=number, error_type=error_type(exc), error=describe_error(exc))
            )
    return results
