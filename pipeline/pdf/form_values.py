"""The values filled into a document's form fields, as a parser process reads them for the
sensitive-data search.

A field's widgets are the annotations that show its value on pages, and a page's check
reads the values its widgets show (``pipeline.pdf.page_checks``). A field can also hold a
value that no page shows: its widgets were taken off the pages, or it never had one (a
hidden field a form's script fills), and an XFA form keeps its data apart from the
fields. The inspection reads those, once for the document (:func:`values_no_page_shows`).
"""

from __future__ import annotations

from collections.abc import Iterable

from pypdf import PdfReader
from pypdf.generic import ArrayObject
from pypdf.generic import DictionaryObject
from pypdf.generic import IndirectObject

from pipeline.pdf.objects import MAX_PAGE_ANNOTATIONS
from pipeline.pdf.objects import as_array
from pipeline.pdf.objects import as_dict
from pipeline.pdf.objects import resolve
from pipeline.pdf.objects import text_string
from pipeline.pdf.objects import walk_fields
from pipeline.pdf.xfa import xfa_values

# Fields nest (a widget's value may sit on its field, or that field's parent): how far up.
_MAX_FIELD_DEPTH = 10
_MAX_CHOICES = 100
# Annotations looked up on all the pages at the most. Past it, which fields the pages
# show is not known, and no value is read as one that no page shows.
_MAX_PLACED = 100_000


def field_of(widget: DictionaryObject) -> DictionaryObject | None:
    """The form field a widget shows the value of: the widget, or the nearest of its
    parent fields that holds a value (None: no value filled in)."""
    node: DictionaryObject | None = widget
    for _ in range(_MAX_FIELD_DEPTH):
        if node is None or "/V" in node:
            return node
        node = as_dict(node.get("/Parent"))
    return None


def field_value(field: DictionaryObject) -> str:
    """A form field's value, as text (the choices picked in a list, one a line)."""
    value = resolve(field["/V"])
    if isinstance(value, ArrayObject):
        return "\n".join(text_string(choice) for choice in value[:_MAX_CHOICES])
    return text_string(value)


def values_no_page_shows(reader: PdfReader, acroform: DictionaryObject | None) -> list[str]:
    """The text values of a form that no page shows, in the field tree's order: those of
    the AcroForm fields that no widget on a page shows, then the XFA form's data that no
    AcroForm field holds too (``pipeline.pdf.xfa``).

    A field is shown when one of its widgets is among the annotations a page check reads,
    hidden ones too; a value a field passes down to its kids is shown when one of their
    widgets is. No field's value is read here when which fields the pages show is not
    known: they hold more than ``_MAX_PLACED`` annotations, or a page cannot be read (its
    check says so).
    """
    if acroform is None:
        return []
    nodes = list(walk_fields(as_array(acroform.get("/Fields"))))
    values = {id(node): field_value(node) for node in nodes if "/V" in node}
    off_pages = _off_pages(reader, nodes, values) if any(values.values()) else []
    held = {value.strip() for value in values.values()}
    return off_pages + [value for value in xfa_values(acroform.get("/XFA")) if value not in held]


def _off_pages(
    reader: PdfReader, nodes: list[DictionaryObject], values: dict[int, str]
) -> list[str]:
    try:
        placed = _placed(reader)
    except Exception:
        placed = None
    if placed is None:
        return []
    shown = _shown(nodes, placed)
    return [
        values[id(node)] for node in nodes if values.get(id(node)) and _number(node) not in shown
    ]


def _number(node: DictionaryObject) -> int | None:
    """The object number a field node is stored under; None for a direct one (no page can
    hold a reference to it)."""
    reference = node.indirect_reference
    return None if reference is None else reference.idnum


def _placed(reader: PdfReader) -> set[int] | None:
    """The object numbers of the annotations the page checks read, or None past
    ``_MAX_PLACED``."""
    placed: set[int] = set()
    for page in reader.pages:
        annotations = as_array(page.get("/Annots"))[:MAX_PAGE_ANNOTATIONS]
        placed.update(item.idnum for item in annotations if isinstance(item, IndirectObject))
        if len(placed) > _MAX_PLACED:
            return None
    return placed


def _shown(nodes: Iterable[DictionaryObject], placed: set[int]) -> set[int]:
    """The field nodes (object numbers) a page shows: a placed widget, and every field it
    belongs to, up the tree."""
    parents: dict[int, int | None] = {}
    for node in nodes:
        number = _number(node)
        if number is None:
            continue
        parents.setdefault(number, None)
        for kid in as_array(node.get("/Kids")):
            if isinstance(kid, IndirectObject):
                parents[kid.idnum] = number
    shown: set[int] = set()
    for number in placed & parents.keys():
        current: int | None = number
        # Each node is marked once, so a loop of /Kids ends.
        while current is not None and current not in shown:
            shown.add(current)
            current = parents.get(current)
    return shown
