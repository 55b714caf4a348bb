"""The text of an office document attached to a PDF, as a parser process reads it for the
sensitive-data search.

Office Open XML (``.docx``, ``.xlsx``, ``.pptx``) and OpenDocument (``.odt``, ``.ods``,
``.odp``) files are ZIP archives of XML parts. The parts that hold what people write are
read: a text's body, headers, footers, notes and comments; a spreadsheet's shared strings,
sheets and comments; a presentation's slides, notes and comments (an OpenDocument file
keeps them in its ``content.xml``, and its headers and footers in ``styles.xml``). Their
text is taken a paragraph (or cell) at a time, so that a value a word processor split
across runs of formatting is read whole. Other ZIP archives are not read.

Bounded: an archive's first ``MAX_ENTRIES`` entries are looked at, and at most
``MAX_XML_BYTES`` of its parts are inflated in all, whatever their entries declare (a ZIP
bomb stops there); a part with a DTD is refused rather than expanded, and one that does
not parse is passed over (``pipeline.pdf.untrusted_xml``).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from xml.etree import ElementTree

from pipeline.pdf.untrusted_xml import parse_xml

# Entries looked at, and the bytes of XML inflated in all, at the most.
MAX_ENTRIES = 1_000
MAX_XML_BYTES = 4_000_000
_ZIP = b"PK\x03\x04"
_OPENDOCUMENT = b"application/vnd.oasis.opendocument."
_PARTS = re.compile(
    r"""^(
        word/(document|header\d*|footer\d*|footnotes|endnotes|comments)
        |xl/(sharedStrings|worksheets/sheet\d+|comments\d*)
        |ppt/(slides/slide\d+|notesSlides/notesSlide\d+|comments/[^/]+)
        |content|styles
    )\.xml$""",
    re.VERBOSE,
)
# Elements read as one line: paragraphs and headings (Word, PowerPoint, OpenDocument),
# a spreadsheet's shared strings and cells.
_BLOCKS = frozenset({"p", "h", "si", "c", "table-cell"})


def is_zip(data: bytes) -> bool:
    """True for the bytes of a ZIP archive (an office document is one)."""
    return data.startswith(_ZIP)


def office_text(data: bytes) -> str | None:
    """The text of the office document in ``data``, a line a paragraph or cell; None
    when it is not one (another archive, or not a ZIP that opens)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()[:MAX_ENTRIES]
            if not _is_office(archive, entries):
                return None
            return "\n".join(_texts(archive, entries))
    except Exception:
        # Not a ZIP archive that opens.
        return None


def _is_office(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]) -> bool:
    names = {entry.filename for entry in entries}
    if "[Content_Types].xml" in names:
        return True
    if "mimetype" not in names:
        return False
    with archive.open("mimetype") as mimetype:
        return mimetype.read(len(_OPENDOCUMENT)) == _OPENDOCUMENT


def _texts(archive: zipfile.ZipFile, entries: list[zipfile.ZipInfo]) -> Iterator[str]:
    left = MAX_XML_BYTES
    for entry in entries:
        if not _PARTS.match(entry.filename):
            continue
        try:
            with archive.open(entry) as part:
                # The entry's declared size is the archive's word: the bound is kept on
                # what inflates.
                xml = part.read(left + 1)
        except Exception:
            # Encrypted, compressed by a method zipfile lacks, or corrupt: passed over.
            continue
        if len(xml) > left:
            return
        left -= len(xml)
        root = parse_xml(xml)
        if root is not None:
            yield from _blocks(root)


def _blocks(root: ElementTree.Element) -> Iterator[str]:
    """The text of each block element under ``root`` (a block inside another is part of
    it), in document order; walked without recursion, however deep the XML."""
    stack = [root]
    while stack:
        element = stack.pop()
        if _local_name(element.tag) in _BLOCKS:
            text = "".join(element.itertext()).strip()
            if text:
                yield text
            continue
        stack.extend(reversed(element))


def _local_name(tag: object) -> str:
    # Comments and processing instructions have a function for a tag.
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""
