"""The text of files attached to a document, as a parser process reads it: what the
sensitive-data search reads of them.

A file is attached in the document's ``EmbeddedFiles`` name tree, or to a page by a file
attachment annotation; either way a file specification holds it as an embedded stream.
Files of up to ``MAX_ATTACHMENT_BYTES`` are read when they are text (UTF-8, or UTF-16 with
its byte-order mark: a spreadsheet exported as CSV, a note, a JSON or XML file), PDFs or
office documents (``pipeline.pdf.office``). Other files (pictures, other archives) and
larger ones are counted as not read. A stream is decoded under pypdf's limits lowered to
that size, so that a compressed bomb stops decoding there.

An attached PDF is read for the text of its first ``MAX_ATTACHED_PDF_PAGES`` pages, with
its own streams under the same limits, and not further: its own attachments, form fields
and metadata are not read. A small file can still hold pages that take pypdf seconds
each, so the attached PDFs of one read (the document's files, or one page's) share
``ATTACHED_PDF_SECONDS`` (``pipeline.pdf.budget``), checked before each page and each
operator pypdf reads: a read goes past it by at most the parsing of one content stream
(of at most ``MAX_ATTACHMENT_BYTES``). What was read in time is searched, and the
document is checked either way.
"""

from __future__ import annotations

import codecs
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pypdf import PasswordType
from pypdf import PdfReader
from pypdf import apply_configuration
from pypdf.errors import LimitReachedError

from pipeline.pdf.budget import OverBudget
from pipeline.pdf.budget import TimeBudget
from pipeline.pdf.objects import as_array
from pipeline.pdf.objects import as_dict
from pipeline.pdf.objects import resolve
from pipeline.pdf.objects import walk_kids
from pipeline.pdf.office import is_zip
from pipeline.pdf.office import office_text

# Attachments read at the most in a document (and on a page), and the largest read.
MAX_ATTACHMENTS = 20
MAX_ATTACHMENT_BYTES = 1_000_000
# pypdf's limits while an attachment is decoded: its output, and the work of decoding it.
_DECODING_LIMITS: dict[str, Any] = {
    **dict.fromkeys(
        (
            "maximum_declared_stream_length",
            "array_based_stream_maximum_output_length",
            "lzw_maximum_output_length",
            "run_length_maximum_output_length",
            "zlib_maximum_output_length",
            "brotli_maximum_output_length",
        ),
        MAX_ATTACHMENT_BYTES,
    ),
    "stream_decoding_work_maximum_length": 4 * MAX_ATTACHMENT_BYTES,
}
# Bytes in which a NUL marks a binary file.
_SNIFFED_BYTES = 4096
# An attached PDF: the pages read, and the seconds all those of one read may take.
MAX_ATTACHED_PDF_PAGES = 20
ATTACHED_PDF_SECONDS = 2.0
# A PDF's header may follow other bytes, up to this far into the file.
_PDF_HEADER = b"%PDF-"
_PDF_HEADER_SEARCH_BYTES = 1024


@dataclass(frozen=True)
class AttachedTexts:
    """The text of the attached files that are text, and how many were not read."""

    texts: tuple[str, ...] = ()
    not_read: int = 0


def embedded_files(tree: Any) -> Iterator[Any]:
    """The file specifications of an ``EmbeddedFiles`` name tree, in its order."""
    for node in walk_kids([tree]):
        names = as_array(node.get("/Names"))
        for index in range(1, len(names), 2):
            yield names[index]


def attached_pdf_budget() -> TimeBudget:
    """The time the attached PDFs of one read (the document's, or one page's) share."""
    return TimeBudget(ATTACHED_PDF_SECONDS)


def read_attached(filespecs: Iterator[Any]) -> AttachedTexts:
    """The text of the first ``MAX_ATTACHMENTS`` attached files; the others count as not
    read, as do files of other kinds, or whose stream does not decode."""
    texts: list[str] = []
    not_read = 0
    budget = attached_pdf_budget()
    for filespec in itertools.islice(filespecs, MAX_ATTACHMENTS):
        text = attached_text(filespec, budget)
        if text is None:
            not_read += 1
        else:
            texts.append(text)
    not_read += sum(1 for _ in filespecs)
    return AttachedTexts(tuple(texts), not_read)


def attached_text(filespec: Any, budget: TimeBudget) -> str | None:
    """The text of the file that ``filespec`` embeds, or None when it embeds none, or one
    that is not text, a PDF or an office document that opens, is larger than
    ``MAX_ATTACHMENT_BYTES`` or does not decode. An attached PDF is read in the time
    ``budget`` has left."""
    spec = as_dict(filespec)
    streams = as_dict(spec.get("/EF")) if spec is not None else None
    if streams is None:
        return None
    try:
        data = decoded(streams.get("/UF", streams.get("/F")))
    except Exception:
        # Not a stream, one over the limit, or one that does not decode.
        return None
    if _PDF_HEADER in data[:_PDF_HEADER_SEARCH_BYTES]:
        text = _pdf_text(data, budget)
    elif is_zip(data):
        text = office_text(data)
    else:
        text = _as_text(data)
    return None if text is None else text[:MAX_ATTACHMENT_BYTES]


def decoded(stream: Any) -> bytes:
    """The bytes of an embedded file's stream, decoded under pypdf's limits lowered to
    ``MAX_ATTACHMENT_BYTES``: a compressed bomb stops decoding there.

    Raises:
        pypdf.errors.LimitReachedError: the file is larger than ``MAX_ATTACHMENT_BYTES``.
        Exception: it is not a stream, or does not decode.
    """
    with apply_configuration(**_DECODING_LIMITS):
        data = bytes(resolve(stream).get_data())
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise LimitReachedError(f"an attached file of over {MAX_ATTACHMENT_BYTES} bytes")
    return data


def _as_text(data: bytes) -> str | None:
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    if b"\x00" in data[:_SNIFFED_BYTES]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _pdf_text(data: bytes, budget: TimeBudget) -> str | None:
    """The text of an attached PDF's first pages, read in the time ``budget`` has left,
    or None when it does not open (or only with a password) or no page was read in time.
    A page that cannot be read is passed over."""

    def at_each_operator(*_: Any) -> None:
        budget.check()

    texts: list[str] = []
    size = 0
    try:
        budget.check()
        with apply_configuration(**_DECODING_LIMITS):
            try:
                reader = PdfReader(io.BytesIO(data))
                if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                    return None
                pages = reader.pages[:MAX_ATTACHED_PDF_PAGES]
            except Exception:
                return None
            for page in pages:
                budget.check()
                try:
                    text = page.extract_text(visitor_operand_before=at_each_operator)
                except Exception:
                    continue
                texts.append(text)
                size += len(text)
                if size >= MAX_ATTACHMENT_BYTES:
                    break
    except OverBudget:
        if not texts:
            return None
        # What was read in time is searched.
    return "\n".join(texts)
