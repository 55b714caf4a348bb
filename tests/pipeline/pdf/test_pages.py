"""The lean page index: page order, inherited attributes, and page tree nodes that lie."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from pipeline.pdf.page_checks import check_pages
from pipeline.pdf.pages import index_pages
from tests.support.hostile import build_pdf
from tests.support.hostile import stream


def _page(parent: int, content: int, extra: bytes = b"") -> bytes:
    return b"<< /Type /Page /Parent %d 0 R /Contents %d 0 R %s>>" % (parent, content, extra)


def _text(words: str) -> bytes:
    return stream(b"BT /F1 12 Tf 72 720 Td (" + words.encode() + b") Tj ET")


def _reader(objects: dict[int, bytes]) -> PdfReader:
    return PdfReader(io.BytesIO(build_pdf(objects)))


def _counted_root(kids: bytes, more: dict[int, bytes] | None = None) -> dict[int, bytes]:
    """A document whose root node counts two pages for its ``kids`` (object 3 is a page),
    with ``more`` objects."""
    return {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Count 2 /MediaBox [0 0 100 100] /Kids [%s] >>" % kids,
        3: _page(2, 20),
        20: _text("x"),
        **(more or {}),
    }


def _mediaboxes(reader: PdfReader) -> list[list[float]]:
    return [[float(v) for v in page.mediabox] for page in index_pages(reader)]


def test_a_node_whose_count_matches_its_kids_is_indexed_without_parsing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leaves = range(10, 20)
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Count 10 /MediaBox [0 0 595 842] /Kids [%s] >>"
        % b" ".join(b"%d 0 R" % n for n in leaves),
        **{n: _page(2, n + 20) for n in leaves},
        **{n + 20: _text(f"page {n}") for n in leaves},
    }
    reader = _reader(objects)
    parsed: list[int] = []
    real = reader.get_object

    def get_object(ref: Any) -> Any:
        parsed.append(ref if isinstance(ref, int) else ref.idnum)
        return real(ref)

    monkeypatch.setattr(reader, "get_object", get_object)
    pages = index_pages(reader)
    assert len(pages) == 10
    assert not set(parsed) & set(leaves)
    # Each page is parsed when it is asked for, with what it inherits.
    assert getattr(pages[3].indirect_reference, "idnum", None) == 13
    assert [float(v) for v in pages[3].mediabox] == [0, 0, 595, 842]


def test_nested_nodes_keep_page_order_and_inheritance() -> None:
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        # Three pages under two kids: the root's count does not match, its kids are walked.
        2: b"<< /Type /Pages /Count 3 /MediaBox [0 0 100 100] /Kids [3 0 R 6 0 R] >>",
        3: b"<< /Type /Pages /Parent 2 0 R /Count 2 /MediaBox [0 0 200 200] /Kids [4 0 R 5 0 R] >>",
        4: _page(3, 20),
        5: _page(3, 20, b"/MediaBox [0 0 300 300] "),
        6: _page(2, 20),
        20: _text("x"),
    }
    assert _mediaboxes(_reader(objects)) == [[0, 0, 200, 200], [0, 0, 300, 300], [0, 0, 100, 100]]


def test_a_node_counted_as_one_page_is_followed_down_to_its_page() -> None:
    # Legal if unusual: a kid that is itself a node holding one page.
    objects = _counted_root(
        b"3 0 R 4 0 R",
        {
            4: b"<< /Type /Pages /Parent 2 0 R /Count 1 /Rotate 90 /Kids [5 0 R] >>",
            5: _page(4, 20),
        },
    )
    reader = _reader(objects)
    pages = index_pages(reader)
    assert [getattr(page.indirect_reference, "idnum", None) for page in pages] == [3, 5]
    assert pages[1]["/Rotate"] == 90 and "/Rotate" not in pages[0]
    assert [r.error_type for r in check_pages(reader, 1, 2)] == [None, None]


def test_a_count_that_hides_a_subtree_makes_that_page_an_error() -> None:
    # The root claims two pages for two kids, but its second kid holds two pages.
    objects = _counted_root(
        b"3 0 R 4 0 R",
        {
            4: b"<< /Type /Pages /Parent 2 0 R /Count 2 /Kids [5 0 R 6 0 R] >>",
            5: _page(4, 20),
            6: _page(4, 20),
        },
    )
    reader = _reader(objects)
    pages = index_pages(reader)
    assert len(pages) == 2
    with pytest.raises(PdfReadError, match="2 kids stands where one page was counted"):
        pages[1]
    results = check_pages(reader, 1, 2)
    assert [r.error_type for r in results] == [None, "PdfReadError"]


@pytest.mark.parametrize(
    "kids", [b"3 0 R 2 0 R", b"3 0 R 3 0 R"], ids=["node-itself", "page-twice"]
)
def test_a_counted_node_that_refers_to_itself_is_unreadable(kids: bytes) -> None:
    with pytest.raises(PdfReadError, match="refers to itself"):
        index_pages(_reader(_counted_root(kids)))


def test_a_chain_of_single_kids_that_loops_is_a_page_error() -> None:
    objects = _counted_root(
        b"3 0 R 4 0 R", {4: b"<< /Type /Pages /Parent 2 0 R /Count 1 /Kids [4 0 R] >>"}
    )
    reader = _reader(objects)
    assert len(index_pages(reader)) == 2
    assert [r.error_type for r in check_pages(reader, 1, 2)] == [None, "PdfReadError"]


def test_a_counted_page_whose_object_is_missing_is_a_page_error_not_a_blank_page() -> None:
    reader = _reader(_counted_root(b"3 0 R 4 0 R"))
    assert len(index_pages(reader)) == 2
    results = check_pages(reader, 1, 2)
    assert [r.error_type for r in results] == [None, "PdfReadError"]
    assert "page object 4 is missing" in str(results[1].error)
