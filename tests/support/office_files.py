"""Office documents as ZIP archives of XML parts, written part by part (no office suite or
library): a Word text, an Excel workbook, a PowerPoint deck and an OpenDocument text."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from xml.sax.saxutils import escape

WORD_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_S = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
_A = (
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
    'xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"'
)
_TEXT = 'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
_OFFICE = 'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
_STYLE = 'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"'
_CONTENT_TYPES = (
    '<?xml version="1.0"?><Types '
    'xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
)


def archive(parts: Mapping[str, str | bytes], *, stored: frozenset[str] = frozenset()) -> bytes:
    """A ZIP archive of ``parts`` (name -> contents), deflated but for the names in
    ``stored``, in the order given."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as made:
        for name, contents in parts.items():
            method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            made.writestr(name, contents, compress_type=method)
    return out.getvalue()


def word_part(text: str, tag: str = "w:hdr") -> str:
    """A part of a Word text (a header by default) holding ``text`` in one paragraph."""
    return f"<{tag} {WORD_NS}><w:p><w:r><w:t>{escape(text)}</w:t></w:r></w:p></{tag}>"


def docx(paragraphs: list[list[str]], *, extra: Mapping[str, str | bytes] | None = None) -> bytes:
    """A Word text: each paragraph a list of runs (a value split across runs, as a word
    processor splits it where its formatting or spell-checking changes)."""
    body = "".join(
        "<w:p>" + "".join(f"<w:r><w:t>{escape(run)}</w:t></w:r>" for run in runs) + "</w:p>"
        for runs in paragraphs
    )
    return archive(
        {
            "[Content_Types].xml": _CONTENT_TYPES,
            "word/document.xml": f"<w:document {WORD_NS}><w:body>{body}</w:body></w:document>",
            **(extra or {}),
        }
    )


def xlsx(shared: list[str], inline: list[str]) -> bytes:
    """An Excel workbook: ``shared`` strings in its shared-string table, ``inline`` ones
    in the cells of its first sheet (one a row)."""
    items = "".join(f"<si><t>{escape(value)}</t></si>" for value in shared)
    rows = "".join(
        f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
        f'<c r="B{n}"><v>{n}</v></c></row>'
        for n, value in enumerate(inline, start=1)
    )
    return archive(
        {
            "[Content_Types].xml": _CONTENT_TYPES,
            "xl/sharedStrings.xml": f"<sst {_S}>{items}</sst>",
            "xl/worksheets/sheet1.xml": (
                f"<worksheet {_S}><sheetData>{rows}</sheetData></worksheet>"
            ),
        }
    )


def pptx(slides: list[str]) -> bytes:
    """A PowerPoint deck of one text box a slide."""
    return archive(
        {
            "[Content_Types].xml": _CONTENT_TYPES,
            **{
                f"ppt/slides/slide{n}.xml": f"<p:sld {_A}><p:cSld><p:spTree><p:sp><p:txBody>"
                f"<a:p><a:r><a:t>{escape(text)}</a:t></a:r></a:p>"
                "</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
                for n, text in enumerate(slides, start=1)
            },
        }
    )


def odt(
    paragraphs: list[str],
    *,
    header: str = "",
    mimetype: str = "application/vnd.oasis.opendocument.text",
) -> bytes:
    """An OpenDocument text (its ``mimetype`` stored first, as the format asks), with a
    ``header`` on its pages when given (kept with the styles)."""
    body = "".join(f"<text:p>{escape(text)}</text:p>" for text in paragraphs)
    styles = f"<style:header><text:p>{escape(header)}</text:p></style:header>" if header else ""
    return archive(
        {
            "mimetype": mimetype,
            "content.xml": f"<office:document-content {_OFFICE} {_TEXT}><office:body>"
            f"<office:text>{body}</office:text></office:body></office:document-content>",
            "styles.xml": f"<office:document-styles {_OFFICE} {_TEXT} {_STYLE}>"
            f"<office:master-styles>{styles}</office:master-styles></office:document-styles>",
        },
        stored=frozenset({"mimetype"}),
    )
