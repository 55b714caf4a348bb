"""The values filled into a document's form fields, as a parser process reads them for the
sensitive-data search.

A field's widgets are the annotations that show its value on pages, and a page's check
reads the values its widgets show (``pipeline.pdf.page_checks``).
"""

from __future__ import annotations

from pypdf.generic import ArrayObject, DictionaryObject

from pipeline.pdf.objects import as_dict, resolve, text_string

# Fields nest (a widget's value may sit on its field, or that field's parent): how far up.
_MAX_FIELD_DEPTH = 10
_MAX_CHOICES = 100


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
