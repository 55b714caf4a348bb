"""Repair before reject, in real parser processes: damaged files pypdf cannot read.

Each damaged document is built from a good one (``tests.support.damaged``); the page count a
repair must find is the number of page objects that survived in its bytes, counted there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.processes import pid_alive
from pipeline.check import spool
from pipeline.check.pool import InspectTimeoutError
from pipeline.check.pool import PagePool
from pipeline.pdf.document_checks import inspect_document
from pipeline.pdf.document_checks import inspect_or_repair
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.parser_process import ParserLimits
from pipeline.pdf.repair import repair_files
from pipeline.pdf.repair import repaired_path
from tests.support import damaged
from tests.support import hostile
from tests.support.pool import open_documents
from tests.support.reports import report_of_results


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", sorted(damaged.DAMAGED))
async def test_each_damaged_document_is_repaired_and_its_pages_checked(
    pool: PagePool, tmp_path: Path, name: str
) -> None:
    data = damaged.DAMAGED[name]()
    path = _write(tmp_path, name, data)
    # pypdf alone cannot read it: this case is one for repair.
    assert inspect_document(path).problem == "unreadable"

    facts = await pool.inspect(path)
    assert facts.problem is None, facts.problem_detail
    assert facts.page_count == damaged.complete_pages(data) == damaged.PAGES
    features = facts.features
    assert features.repaired
    assert features.repair_cause
    assert all(str(tmp_path) not in warning for warning in features.repair_warnings)
    # The original stays as it was; the repaired copy is beside it, in the spool.
    assert path.read_bytes() == data
    assert repaired_path(path).exists()

    pages = await pool.check_range(path, 1, facts.page_count)
    assert [p["page"] for p in pages] == list(range(1, damaged.PAGES + 1))
    assert [p["error_type"] for p in pages] == [None] * damaged.PAGES
    if name != "truncated":
        # Nothing of the pages was lost (a truncated file lost its fonts with its end).
        assert all(p["text_chars"] > 0 for p in pages)

    results = [PageResult(**p) for p in pages]
    report = report_of_results(path, facts, results)
    assert report["verdict"] == {"verdict": "review", "reasons": ["repaired"], "informational": []}
    assert report["facts"]["repair"]["repaired"] is True
    assert report["facts"]["repair"]["warnings"] == features.repair_warnings
    # Signatures and revisions of a repaired copy would be qpdf's: not examined.
    assert report["facts"]["revisions"]["count"] is None
    assert report["checks"]["signatures"]["error"]


async def test_a_worker_that_did_not_inspect_repairs_the_document_itself(
    tmp_path: Path,
) -> None:
    # Page checking may run on another worker: its processes find no repaired copy.
    data = damaged.truncated()
    path = _write(tmp_path, "elsewhere", data)
    pool = PagePool(1)
    try:
        pages = await pool.check_range(path, 1, damaged.PAGES)
        assert [p["error_type"] for p in pages] == [None] * damaged.PAGES
        assert await open_documents(pool) == [[str(path)]]
    finally:
        pool.shutdown()
    assert repaired_path(path).exists()


async def test_a_document_pypdf_reads_by_itself_is_not_repaired(
    pool: PagePool, tmp_path: Path
) -> None:
    # Most junk before the header pypdf finds its way through; only the 30-line case
    # above sends its search astray.
    path = _write(tmp_path, "junk-20", damaged.junk_before_header(lines=20))
    facts = await pool.inspect(path)
    assert facts.problem is None and facts.page_count == damaged.PAGES
    assert not facts.features.repaired
    assert not repaired_path(path).exists()


@pytest.mark.parametrize(
    ("name", "data", "detail"),
    [
        # qpdf finds the loop too: nothing to check.
        ("self-referencing-tree", hostile.self_referencing_tree(), "Loop detected"),
        ("header-only", b"%PDF-1.7\nnothing else\n", "repair"),
        ("noise-after-header", b"%PDF-1.4\n" + bytes(range(256)) * 8, "repair"),
    ],
)
async def test_what_cannot_be_repaired_stays_unreadable(
    pool: PagePool, tmp_path: Path, name: str, data: bytes, detail: str
) -> None:
    path = _write(tmp_path, name, data)
    facts = await pool.inspect(path)
    assert facts.problem == "unreadable"
    assert detail in (facts.problem_detail or "")
    assert not facts.features.repaired
    assert await open_documents(pool) == [[], []]


def _overstated_xref_of_large(tmp_path: Path, pages: int) -> Path:
    """A large document whose xref table declares more entries than any file could hold:
    pypdf gives up on it at once, qpdf rebuilds it from every object in the file."""
    from tests.support.pdfs import make_large_pdf

    data = make_large_pdf(pages)
    xref = data.rindex(b"\nxref") + 1
    line_end = data.index(b"\n", xref + 5)
    path = tmp_path / "large-overstated-xref.pdf"
    path.write_bytes(data[:xref] + b"xref\n0 99999999" + data[line_end:])
    return path


async def test_a_repair_that_takes_too_long_is_ended_and_the_document_unreadable(
    tmp_path: Path,
) -> None:
    path = _overstated_xref_of_large(tmp_path, 40_000)
    # The limit restarts when the repair starts. pypdf gives up on this file in
    # milliseconds (a hundred times within the limit); rebuilding 40,000 pages' objects
    # and indexing them takes seconds (about ten times the limit here, unloaded).
    assert inspect_document(path).problem == "unreadable"
    pool = PagePool(1, ParserLimits(inspect_seconds=0.2))
    try:
        (repairing,) = await pool.warm()
        with pytest.raises(InspectTimeoutError, match="repairing the damaged document"):
            await pool.inspect(path)
        # The process that was repairing is gone, and its slot starts a new one.
        assert not pid_alive(repairing)
        assert await pool.warm() != [repairing]
    finally:
        pool.shutdown()


def test_a_repair_that_cannot_write_its_copy_fails_as_a_repair_not_a_crash(
    tmp_path: Path,
) -> None:
    # Whatever goes wrong around qpdf (here: something else already where the copy
    # goes) is a failed repair with a message, and nothing of this machine's paths.
    path = _write(tmp_path, "truncated", damaged.truncated())
    repaired_path(path).mkdir()
    facts, reader, stream = inspect_or_repair(path)
    assert (facts.problem, reader, stream) == ("unreadable", None, None)
    assert "; repair: " in (facts.problem_detail or "")
    assert str(tmp_path) not in (facts.problem_detail or "")
    assert [p.name for p in repair_files(path)] == [repaired_path(path).name]


def test_the_spool_removes_a_repaired_copy_with_its_document(tmp_path: Path) -> None:
    # A dead worker's spooled file and what repairing it made are swept together.
    dead_pid = 2**22 + 12345
    assert not os.path.exists(f"/proc/{dead_pid}")
    path = tmp_path / f"docpipe-spool-{dead_pid}-abc.pdf"
    path.write_bytes(damaged.truncated())
    repaired = repaired_path(path)
    repaired.write_bytes(b"repaired")
    part = path.with_suffix(".999.part.pdf")
    part.write_bytes(b"part")
    assert repair_files(path) == sorted([repaired, part])
    removed = spool.sweep_stale_spools(str(tmp_path))
    assert sorted(removed) == sorted([path, repaired, part])
    assert list(tmp_path.iterdir()) == []
