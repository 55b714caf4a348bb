"""The text of files attached to a document, as a parser process reads it: what the
sensitive-data search reads of them.

A file is attached in the document's ``EmbeddedFiles`` name tree, or to a page by a file
attachment annotation; either way a file specification holds it as an embedded stream.
Only text files of up to ``MAX_ATTACHMENT_BYTES`` are read (UTF-8, or UTF-16 with its
byte-order mark): a spreadsheet exported as CSV, a note, a JSON or XML file. Other files
(PDFs, office documents, pictures, archives) and larger ones are counted as not read. A
stream is decoded under pypdf's limits lowered to that size, so that a compressed bomb
stops decoding there.
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pypdf import apply_configuration
from pypdf.errors import LimitReachedError

from pipeline.pdf.objects import as_array, as_dict, resolve, walk_kids

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


def read_attached(filespecs: Iterator[Any]) -> AttachedTexts:
    """The text of the first ``MAX_ATTACHMENTS`` attached files; the others count as not
    read, as do files that are not text or whose stream does not decode."""
    texts: list[str] = []
    not_read = 0
    for filespec in itertools.islice(filespecs, MAX_ATTACHMENTS):
        text = attached_text(filespec)
        if text is None:
            not_read += 1
        else:
            texts.append(text)
    not_read += sum(1 for _ in filespecs)
    return AttachedTexts(tuple(texts), not_read)


def attached_text(filespec: Any) -> str | None:
    """The text of the file that ``filespec`` embeds, or None when it embeds none, or one
    that is not text, is larger than ``MAX_ATTACHMENT_BYTES`` or does not decode."""
    spec = as_dict(filespec)
    streams = as_dict(spec.get("/EF")) if spec is not None else None
    if streams is None:
        return None
    try:
        data = decoded(streams.get("/UF", streams.get("/F")))
    except Exception:
        # Not a stream, one over the limit, or one that does not decode.
        return None
    return _as_text(data)


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
