"""The heartbeat checkpoint: round trips, and every way details can be untrustworthy."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.check.checkpoint import CHECKPOINT_VERSION
from pipeline.check.checkpoint import Checkpoint


def _details(next_page: Any, chunks: Any, chunk_pages: Any, v: Any = 1) -> dict[str, Any]:
    return {"v": v, "next_page": next_page, "chunks": chunks, "chunk_pages": chunk_pages}


def test_to_details_shape() -> None:
    assert Checkpoint(next_page=101, chunks=2, chunk_pages=50).to_details() == {
        "v": CHECKPOINT_VERSION,
        "next_page": 101,
        "chunks": 2,
        "chunk_pages": 50,
    }
    assert CHECKPOINT_VERSION == 1


@pytest.mark.parametrize(
    ("checkpoint", "page_count"),
    [
        (Checkpoint(next_page=1, chunks=0, chunk_pages=50), 120),
        (Checkpoint(next_page=51, chunks=1, chunk_pages=50), 120),
        (Checkpoint(next_page=101, chunks=2, chunk_pages=50), 120),
        (Checkpoint(next_page=121, chunks=3, chunk_pages=50), 120),
        (Checkpoint(next_page=101, chunks=2, chunk_pages=50), 100),
        (Checkpoint(next_page=2, chunks=1, chunk_pages=1), 1),
    ],
)
def test_round_trip(checkpoint: Checkpoint, page_count: int) -> None:
    assert Checkpoint.from_details([checkpoint.to_details()], page_count) == checkpoint


def test_start_round_trips() -> None:
    start = Checkpoint.start(25)
    assert start == Checkpoint(next_page=1, chunks=0, chunk_pages=25)
    assert Checkpoint.from_details([start.to_details()], 10) == start


def test_the_last_detail_wins() -> None:
    older = _details(51, 1, 50)
    newer = _details(101, 2, 50)
    assert Checkpoint.from_details([older, newer], 200) == Checkpoint(101, 2, 50)


def test_last_chunk_partial_is_accepted_at_the_end() -> None:
    # 120 pages in chunks of 50: the third chunk holds 20 pages.
    assert Checkpoint.from_details([_details(121, 3, 50)], 120) == Checkpoint(121, 3, 50)
    # ...but a next_page that pretends the partial chunk was full is not.
    assert Checkpoint.from_details([_details(151, 3, 50)], 120) is None


@pytest.mark.parametrize(
    "details",
    [
        pytest.param([], id="empty"),
        pytest.param((), id="empty-tuple"),
        pytest.param([_details(51, 1, 50, v=2)], id="newer-version"),
        pytest.param([_details(51, 1, 50, v=0)], id="older-version"),
        pytest.param([_details(51, 1, 50, v="1")], id="version-as-str"),
        pytest.param([{"next_page": 51, "chunks": 1, "chunk_pages": 50}], id="no-version"),
        pytest.param(["not a dict"], id="str"),
        pytest.param([[51, 1, 50]], id="list"),
        pytest.param([None], id="none"),
        pytest.param([_details("51", 1, 50)], id="next-page-str"),
        pytest.param([_details(51, 1.0, 50)], id="chunks-float"),
        pytest.param([_details(51, 1, None)], id="chunk-pages-none"),
        pytest.param([{"v": 1, "next_page": 51, "chunks": 1}], id="chunk-pages-missing"),
        pytest.param([_details(True, 0, 50)], id="next-page-bool"),
        pytest.param([_details(2, True, 1)], id="chunks-bool"),
        pytest.param([_details(2, 1, True)], id="chunk-pages-bool"),
        pytest.param([_details(100, 2, 50)], id="next-page-before-chunks-end"),
        pytest.param([_details(102, 2, 50)], id="next-page-after-chunks-end"),
        pytest.param([_details(51, 2, 50)], id="chunks-ahead-of-next-page"),
        pytest.param([_details(0, 0, 50)], id="next-page-zero"),
        pytest.param([_details(1, -1, 50)], id="negative-chunks"),
        pytest.param([_details(1, 0, 0)], id="zero-chunk-pages"),
        pytest.param([_details(202, 5, 50)], id="beyond-page-count-plus-one"),
        pytest.param([_details(251, 5, 50)], id="whole-chunks-beyond-page-count"),
        # Consistent with next_page, but more chunk files than 200 pages can have.
        pytest.param([_details(201, 5, 50)], id="more-chunks-than-the-document"),
        pytest.param([_details(51, 1, 50), "garbage"], id="garbage-last"),
    ],
)
def test_untrustworthy_details_are_rejected(details: list[Any]) -> None:
    assert Checkpoint.from_details(details, 200) is None
