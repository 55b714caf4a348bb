"""Reading PDF objects defensively: resolved, typed, bounded, cycle-safe.

Hostile files hold references that loop, trees that never end and values of the wrong
type; every walk here is bounded and follows each object once. Shared by the document and
page checks, in the parser processes.
"""

from __future__ import annotations

import collections
import logging
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

from pypdf.errors import LimitReachedError
from pypdf.generic import ArrayObject
from pypdf.generic import DictionaryObject
from pypdf.generic import IndirectObject
from pypdf.generic import PdfObject
from pypdf.generic import TextStringObject

# pypdf logs every recoverable oddity of a broken file at WARNING; they are recorded as
# page errors where they matter.
logging.getLogger("pypdf").setLevel(logging.ERROR)

# Bounds that keep a hostile file from inflating results.
_MAX_TREE_NODES = 10_000
# Bookmarks looked at in a document outline, at the most.
MAX_OUTLINE_ITEMS = 10_000
# Annotations read on one page: by its check, and by the inspection's look for the form
# fields that no page shows.
MAX_PAGE_ANNOTATIONS = 10_000
_MAX_ACTION_CHAIN = 100
_MAX_META_CHARS = 120


def resolve(value: Any) -> Any:
    """The object a reference points to (anything else as it is)."""
    return value.get_object() if isinstance(value, (IndirectObject, PdfObject)) else value


def as_dict(value: Any) -> DictionaryObject | None:
    """The (resolved) value if it is a dictionary, else None."""
    value = resolve(value)
    return value if isinstance(value, DictionaryObject) else None


def as_array(value: Any) -> ArrayObject:
    """The (resolved) value if it is an array, else an empty one."""
    value = resolve(value)
    return value if isinstance(value, ArrayObject) else ArrayObject()


def _each_once(
    start: Iterable[Any], following: Callable[[DictionaryObject], Iterable[Any]], limit: int
) -> Iterator[DictionaryObject]:
    """The dictionaries reached from ``start`` by ``following``, in breadth-first order:
    an indirect object is visited once (loops end), and at most ``limit`` are looked at."""
    pending = collections.deque(start)
    seen: set[int] = set()
    visited = 0
    while pending and visited < limit:
        item = pending.popleft()
        visited += 1
        if isinstance(item, IndirectObject):
            if item.idnum in seen:
                continue
            seen.add(item.idnum)
        current = as_dict(item)
        if current is None:
            continue
        yield current
        pending.extend(following(current))


def _next_actions(action: DictionaryObject) -> Iterable[Any]:
    following = action.get("/Next")
    if isinstance(resolve(following), ArrayObject):
        return as_array(following)
    return [] if following is None else [following]


def action_types(action: Any) -> list[str]:
    """The ``/S`` types of an action and every action chained after it by ``/Next``."""
    return [
        str(current["/S"]).lstrip("/")
        for current in _each_once([action], _next_actions, _MAX_ACTION_CHAIN)
        if current.get("/S") is not None
    ]


def additional_action_types(holder: DictionaryObject) -> list[str]:
    """Action types of a page's, annotation's or catalog's ``/AA`` dictionary."""
    triggers = as_dict(holder.get("/AA"))
    if triggers is None:
        return []
    return [kind for trigger in triggers.values() for kind in action_types(trigger)]


def walk_kids(roots: Iterable[Any]) -> Iterator[DictionaryObject]:
    """Every dictionary of a tree linked by ``/Kids`` (name trees, form fields): cycles
    and indirect loops are followed once, and at most ``_MAX_TREE_NODES`` nodes."""
    return _each_once(roots, lambda node: as_array(node.get("/Kids")), _MAX_TREE_NODES)


def walk_outline(outlines: Any) -> Iterator[DictionaryObject]:
    """Every item of a document outline (its bookmarks, linked by ``/First`` and
    ``/Next``), the outline's own dictionary first: cycles and indirect loops are
    followed once, and at most ``MAX_OUTLINE_ITEMS`` items are looked at."""
    return _each_once(
        [outlines],
        lambda item: [link for link in (item.get("/First"), item.get("/Next")) if link],
        MAX_OUTLINE_ITEMS,
    )


def name_tree_count(node: Any) -> int:
    """Entries in a name tree (``/Names`` pairs, ``/Kids`` subtrees), cycle-safe."""
    return sum(len(as_array(current.get("/Names"))) // 2 for current in walk_kids([node]))


def walk_fields(fields: ArrayObject) -> Iterator[DictionaryObject]:
    """Every node of an AcroForm field tree, cycle-safe."""
    return walk_kids(fields)


def terminal_field(node: DictionaryObject) -> bool:
    """Whether a form field node is one field people fill (not a group of them)."""
    # A field whose kids are only widgets (no /T of their own) is one field people fill.
    if "/T" not in node:
        return False
    return not any("/T" in (as_dict(kid) or {}) for kid in as_array(node.get("/Kids")))


def text_string(value: Any) -> str:
    """A PDF text string's text ('' for anything else: names, numbers, binary strings)."""
    value = resolve(value)
    return str(value) if isinstance(value, TextStringObject) else ""


def metadata_value(value: Any) -> str | None:
    """A metadata value as short text (cut to 120 characters), or None when empty."""
    if value is None:
        return None
    text = str(resolve(value)).strip()
    return text[:_MAX_META_CHARS] or None


_PDF_DATE = re.compile(
    r"^D?:?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:([Zz+-])(\d{2})?'?(\d{2})?'?)?"
)


def pdf_date(value: Any) -> str | None:
    """A PDF date (``D:20210306133900+01'00'``) as ISO 8601; unparseable ones as given."""
    raw = metadata_value(value)
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


def error_type(exc: BaseException) -> str:
    """How a page error is classified: ``memory`` and ``limit`` for the parser's limits
    (see pipeline.check.pool), else the exception's type name (``PdfReadError``, ...)."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, (LimitReachedError, RecursionError)):
        # RecursionError: structures nested deeper than the parser's recursion limit.
        return "limit"
    return type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """A page or document error as one short line for the report (never its content)."""
    # Messages from pypdf describe structure, not content; cap them all the same.
    return (str(exc) or type(exc).__name__)[:200]
