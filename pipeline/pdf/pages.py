"""Random access to the pages of a large PDF in memory that does not grow with its size.

pypdf's ``reader.pages`` flattens the whole page tree into one ``PageObject`` per page
(about 3.7 KB each: 75 MB for 20,000 pages), and ``PdfReader(path)`` reads the whole file
into memory. Parser processes here instead read from an open file, keep only each page's
object number and its inherited attributes, build a ``PageObject`` on demand, and drop
pypdf's object cache between page ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO
from typing import Any
from typing import cast

from pypdf import PageObject
from pypdf import PdfReader
from pypdf.errors import PdfReadError
from pypdf.generic import DictionaryObject
from pypdf.generic import IndirectObject
from pypdf.generic import NameObject

# Attributes a page inherits from its ancestors in the page tree (PDF 32000-1, 7.7.3.4).
_INHERITABLE = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")
_MAX_DEPTH = 100
_MAX_NODES = 5_000_000


def _is_tree_node(node: DictionaryObject) -> bool:
    """A page tree node (``/Pages``) rather than a page, as the walk tells them apart."""
    return node.get("/Type") == "/Pages" or ("/Kids" in node and "/Type" not in node)


def _kids(node: DictionaryObject, inherited: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A tree node's kids, and the attributes they inherit: ``inherited`` and the node's."""
    kids = node.get("/Kids")
    local = dict(inherited)
    for name in _INHERITABLE:
        if name in node:
            local[name] = node.raw_get(name)
    return (kids.get_object() if kids is not None else []), local


class LeanPages(Sequence[PageObject]):
    """The pages of a reader, as a sequence that builds each page when asked.

    A tree node whose ``/Count`` equals its number of kids says that each kid is one
    page; the walk takes it at its word and does not parse those kids (parsing every
    page object is most of the cost of a walk). Each such page is verified when it is
    built: a tree node found there is followed down its single kid, and anything else
    (a lying count) makes that page a page error instead of a page.
    """

    def __init__(self, reader: PdfReader) -> None:
        self._reader = reader
        # Per page: (object number, generation, index into _inherited); -1 means inline.
        self._refs: list[tuple[int, int, int]] = []
        self._inline: dict[int, DictionaryObject] = {}
        self._inherited: list[dict[str, Any]] = []
        self._walk()

    def _walk(self) -> None:
        root = self._reader.trailer["/Root"].get_object()
        tree = root.raw_get("/Pages") if isinstance(root, DictionaryObject) else None
        if tree is None:
            raise PdfReadError("the document has no page tree")
        inherited_ids: dict[int, int] = {}
        seen: set[tuple[int, int]] = set()

        def bucket_of(inherit: dict[str, Any]) -> int:
            bucket = inherited_ids.setdefault(id(inherit), len(self._inherited))
            if bucket == len(self._inherited):
                self._inherited.append(inherit)
            return bucket

        def first_sight(ref: IndirectObject) -> None:
            key = (ref.idnum, ref.generation)
            if key in seen:
                raise PdfReadError("the page tree refers to itself")
            seen.add(key)

        # (node or reference, inherited attributes, depth); a stack keeps page order when
        # kids are pushed in reverse.
        stack: list[tuple[Any, dict[str, Any], int]] = [(tree, {}, 0)]
        visited = 0
        while stack:
            item, inherit, depth = stack.pop()
            visited += 1
            if depth > _MAX_DEPTH or visited > _MAX_NODES:
                raise PdfReadError("the page tree is too deep or too large")
            ref = item if isinstance(item, IndirectObject) else None
            if ref is not None:
                first_sight(ref)
            node = item.get_object()
            if not isinstance(node, DictionaryObject):
                raise PdfReadError("a page tree node is not a dictionary")
            if _is_tree_node(node):
                kids, local = _kids(node, inherit)
                count = node.get("/Count")
                if (
                    isinstance(count, int)
                    and count == len(kids)
                    and all(isinstance(kid, IndirectObject) for kid in kids)
                ):
                    # One page per kid, the node says: built and verified when checked.
                    visited += len(kids)
                    if visited > _MAX_NODES:
                        raise PdfReadError("the page tree is too large")
                    bucket = bucket_of(local)
                    for kid in kids:
                        first_sight(kid)
                        self._refs.append((kid.idnum, kid.generation, bucket))
                    continue
                for kid in reversed(list(kids)):
                    stack.append((kid, local, depth + 1))
                continue
            bucket = bucket_of(inherit)
            if ref is None:
                self._inline[len(self._refs)] = node
                self._refs.append((-1, 0, bucket))
            else:
                self._refs.append((ref.idnum, ref.generation, bucket))
                # Leaves are parsed again when checked; holding them all is what costs.
                self._reader.resolved_objects.pop((ref.generation, ref.idnum), None)

    def __len__(self) -> int:
        return len(self._refs)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        idnum, generation, bucket = self._refs[index]
        if idnum < 0:
            page = PageObject(self._reader)
            page.update(self._inline[index % len(self)])
        else:
            page = self._page(IndirectObject(idnum, generation, self._reader))
        inherited = self._inherited[bucket]
        if _is_tree_node(page):
            page, inherited = self._down_single_kids(page, inherited)
        for name, value in inherited.items():
            if name not in page:
                page[NameObject(name)] = value
        return page

    def _page(self, ref: IndirectObject) -> PageObject:
        # A missing or garbled object resolves to nothing: an error, not an empty page.
        if not isinstance(ref.get_object(), DictionaryObject):
            raise PdfReadError(f"page object {ref.idnum} is missing or not a dictionary")
        return PageObject(self._reader, ref)

    def _down_single_kids(
        self, node: PageObject, inherited: dict[str, Any]
    ) -> tuple[PageObject, dict[str, Any]]:
        """The page under a tree node counted as one page: down its chain of single kids."""
        for _ in range(_MAX_DEPTH):
            kids, inherited = _kids(node, inherited)
            if len(kids) != 1:
                raise PdfReadError(
                    f"a page tree node with {len(kids)} kids stands where one page was counted"
                )
            kid = kids[0]
            if isinstance(kid, IndirectObject):
                node = self._page(kid)
            else:
                if not isinstance(kid, DictionaryObject):
                    raise PdfReadError("a page tree kid is not a dictionary")
                node = PageObject(self._reader)
                node.update(kid)
            if not _is_tree_node(node):
                return node, inherited
        raise PdfReadError("the page tree is too deep")


def index_pages(reader: PdfReader) -> LeanPages:
    """Index a reader's pages leanly; ``reader.pages`` then serves pages from the index.

    Raises:
        PdfReadError: the page tree is missing, malformed, cyclic or too large.
    """
    pages = LeanPages(reader)
    reader.flattened_pages = cast(list[PageObject], pages)
    return pages


class LeanReader:
    """A PdfReader over an open file, with :class:`LeanPages` as its pages.

    Args:
        file: the open PDF file; it stays open until :meth:`close`.
        reader: a reader of ``file`` whose pages :func:`index_pages` has indexed.
    """

    def __init__(self, file: IO[bytes], reader: PdfReader) -> None:
        if not isinstance(reader.flattened_pages, LeanPages):
            raise ValueError("the reader's pages are not indexed")
        self._file: IO[bytes] = file
        name = getattr(file, "name", None)
        # The file read, for what reads it by path too (pdfium renders pages for OCR).
        self.path: Path | None = Path(name) if isinstance(name, str) else None
        self.reader: PdfReader = reader
        self.pages: LeanPages = reader.flattened_pages
        self.release()

    @classmethod
    def open(cls, path: Path) -> LeanReader:
        """Open ``path``, decrypt it with the empty password if needed, index its pages.

        Raises:
            PdfReadError: the file or its page tree is unreadable.
        """
        file: IO[bytes] = path.open("rb")
        try:
            reader = PdfReader(file)
            if reader.is_encrypted:
                reader.decrypt("")
            index_pages(reader)
            return cls(file, reader)
        except BaseException:
            file.close()
            raise

    def release(self) -> None:
        """Forget parsed objects; call between page ranges to keep memory flat."""
        self.reader.resolved_objects.clear()

    def close(self) -> None:
        """Close the file, so that a removed spool file's space is really freed."""
        self._file.close()
