"""Parts of PDFs that tests build with pypdf: names, text strings, rectangles, actions,
annotations and embedded files (``feature_pdfs`` and ``pdf_edits`` put them together)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def name_object(value: str) -> Any:
    """A PDF name (``/Action``)."""
    from pypdf.generic import NameObject

    return NameObject(value)


def action(kind: str, **entries: Any) -> Any:
    """An action of type ``kind`` (``/JavaScript``, ``/Launch``...) with ``entries``."""
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject

    made = DictionaryObject(
        {NameObject("/Type"): name_object("/Action"), NameObject("/S"): name_object(kind)}
    )
    for key, value in entries.items():
        made[NameObject(f"/{key}")] = value
    return made


def text_object(value: str) -> Any:
    """A PDF text string."""
    from pypdf.generic import TextStringObject

    return TextStringObject(value)


def rect(*values: float) -> Any:
    """A rectangle (left, bottom, right, top)."""
    from pypdf.generic import ArrayObject
    from pypdf.generic import FloatObject

    return ArrayObject(FloatObject(v) for v in values)


def annotation(writer: Any, page: Any, subtype: str, box: Any, **entries: Any) -> Any:
    """An annotation of ``subtype`` in ``box`` with ``entries``, added to ``page`` (a
    reference)."""
    from pypdf.generic import ArrayObject
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject
    from pypdf.generic import NumberObject

    made = DictionaryObject(
        {
            NameObject("/Type"): name_object("/Annot"),
            NameObject("/Subtype"): name_object(subtype),
            NameObject("/Rect"): box,
            NameObject("/F"): NumberObject(4),
        }
    )
    for key, value in entries.items():
        made[NameObject(f"/{key}")] = value
    reference = writer._add_object(made)
    if "/Annots" not in page:
        page[NameObject("/Annots")] = ArrayObject()
    page["/Annots"].append(reference)
    return reference


def filespec(writer: Any, name: str, data: bytes, compressed: bool = False) -> Any:
    """A file specification embedding ``data`` as the file ``name`` (a reference), its
    stream Flate-compressed if ``compressed``."""
    import zlib

    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject
    from pypdf.generic import StreamObject

    stream = StreamObject()
    stream.set_data(zlib.compress(data) if compressed else data)
    if compressed:
        stream[NameObject("/Filter")] = name_object("/FlateDecode")
    stream[NameObject("/Type")] = name_object("/EmbeddedFile")
    spec = DictionaryObject(
        {
            NameObject("/Type"): name_object("/Filespec"),
            NameObject("/F"): text_object(name),
            NameObject("/EF"): DictionaryObject({NameObject("/F"): writer._add_object(stream)}),
        }
    )
    return writer._add_object(spec)


def attach_to_page(writer: Any, page: Any, data: bytes = b"attached to an annotation\n") -> None:
    """``data`` attached to ``page`` by a file attachment annotation."""
    annotation(
        writer,
        page,
        "/FileAttachment",
        rect(300, 700, 320, 720),
        FS=filespec(writer, "annotated.txt", data),
        Contents=text_object("attached"),
    )


def embedded_files(
    writer: Any, files: Sequence[tuple[str, bytes]], compressed: bool = False
) -> Any:
    """An EmbeddedFiles name tree of ``files`` (name, contents)."""
    from pypdf.generic import ArrayObject
    from pypdf.generic import DictionaryObject
    from pypdf.generic import NameObject

    entries = ArrayObject()
    for name, data in files:
        entries += [text_object(name), filespec(writer, name, data, compressed)]
    return DictionaryObject({NameObject("/Names"): entries})
