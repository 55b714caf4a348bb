"""The parser pool's document handling: inspected documents stay open, ready for pages."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from infra.logs import parser_logging
from pipeline.check.pool import InspectTimeoutError
from pipeline.check.pool import PagePool
from pipeline.check.pool import ParserCrashedError
from pipeline.pdf import parser_process
from pipeline.pdf.parser_process import ParserLimits
from tests.support.feature_pdfs import SEEDED
from tests.support.hostile import many_operators
from tests.support.hostile import slow_to_read
from tests.support.pdf_edits import with_attached
from tests.support.pdfs import make_large_pdf
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.pool import failing_job
from tests.support.pool import noisy_job
from tests.support.pool import open_documents
from tests.support.pool import pool_pids
from tests.support.pool import run_in_pool
from tests.support.scans import scanned_document

EMAIL = SEEDED["email"][0][0]
IBAN = SEEDED["iban"][0][0]


def _pdf(tmp_path: Path, name: str, pages: int = 3) -> Path:
    path = tmp_path / name
    path.write_bytes(make_pdf(["text"] * pages))
    return path


async def test_an_inspected_document_is_open_in_every_process_until_forgotten(
    pool: PagePool, tmp_path: Path
) -> None:
    path = _pdf(tmp_path, "doc.pdf")
    facts = await pool.inspect(path)
    assert facts.problem is None and facts.page_count == 3
    # The inspecting process kept it; the other one opened it meanwhile.
    assert await open_documents(pool) == [[str(path)], [str(path)]]
    pages = await pool.check_range(path, 1, 3)
    assert [page["page"] for page in pages] == [1, 2, 3]
    await pool.forget(path)
    assert await open_documents(pool) == [[], []]


async def test_a_document_that_cannot_be_checked_is_not_kept_open(
    pool: PagePool, tmp_path: Path
) -> None:
    path = tmp_path / "not.pdf"
    path.write_bytes(b"plain text, not a PDF at all")
    facts = await pool.inspect(path)
    assert facts.problem == "not_pdf"
    assert await open_documents(pool) == [[], []]


def test_a_process_keeps_a_few_documents_open_and_closes_the_oldest(tmp_path: Path) -> None:
    paths = [str(_pdf(tmp_path, f"doc-{n}.pdf", pages=1)) for n in range(6)]
    try:
        readers = [parser_process._reader(path) for path in paths]
        assert list(parser_process._open) == paths[-parser_process._OPEN_READERS :]
        # Used again, a document moves to the back of the line and stays open.
        assert parser_process._reader(paths[2]) is readers[2]
        parser_process._reader(paths[0])
        assert paths[2] in parser_process._open and paths[3] not in parser_process._open
        assert readers[1]._file.closed and not readers[2]._file.closed
    finally:
        for path in paths:
            parser_process.forget(path)
    assert not parser_process._open


def _slow_to_index(directory: Path, pages: int, lines_per_page: int) -> Path:
    """A document whose root /Count does not match its kids, so that indexing parses
    every page object: about 3 s for 20,000 pages here, 10 s for 60,000."""
    body = make_large_pdf(pages, lines_per_page=lines_per_page)
    declared = b"/Count %d" % pages
    assert declared in body
    path = directory / "slow.pdf"
    path.write_bytes(body.replace(declared, b"/Count %d" % (pages * 4 + 1), 1))
    return path


def _die(*args: object) -> None:
    """Stands in for the inspection in a parser process: the process dies at once."""
    os._exit(1)


@pytest.mark.parametrize("failure", ["times out", "its process dies twice"])
async def test_an_inspection_that_fails_stops_the_preparing_processes_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    # While one process inspects, the other prepares (indexes) the document. When the
    # inspection fails, that preparation must stop too rather than run on for nobody.
    error: type[Exception]
    if failure == "times out":
        # Both processes are slower than the limit.
        path = _slow_to_index(tmp_path, 20_000, lines_per_page=20)
        limits, error = ParserLimits(inspect_seconds=0.05), InspectTimeoutError
    else:
        # The preparing process is still indexing long after the inspection died.
        path = _slow_to_index(tmp_path, 60_000, lines_per_page=1)
        monkeypatch.setattr(parser_process, "inspect", _die)
        limits, error = ParserLimits(inspect_seconds=600), ParserCrashedError
    pool = PagePool(2, limits)
    try:
        before = set(await pool.warm())
        with pytest.raises(error):
            await pool.inspect(path)
        await async_wait_for(
            lambda: _replaced(pool, before), 10, "both parser processes to be replaced"
        )
    finally:
        pool.shutdown()


async def _replaced(pool: PagePool, before: set[int]) -> bool:
    return not set(pool_pids(pool)) & before


async def _busy(pool: PagePool, slot: int) -> bool:
    return pool._slots[slot].busy_with()[0] > 0


async def test_a_cancelled_range_stops_at_its_next_page_and_spares_every_process(
    pool: PagePool, tmp_path: Path
) -> None:
    # Two checks share the pool: one range each, one process each.
    ours, theirs = (tmp_path / "ours.pdf", tmp_path / "theirs.pdf")
    make_large_pdf(2000, path=ours)
    make_large_pdf(1500, path=theirs)
    before = sorted(pool_pids(pool))
    cancelled = asyncio.create_task(pool.check_range(ours, 1, 2000))
    await async_wait_for(lambda: _busy(pool, 0), 30, "the first range to be parsing")
    other = asyncio.create_task(pool.check_range(theirs, 1, 1500))
    await async_wait_for(lambda: _busy(pool, 1), 30, "the second range to be parsing")
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    # Stopped before its next page, long before 2,000 pages: the process is idle, alive.
    assert pool._slots[0].busy_with() == (0, 0.0)
    pages = await other
    assert [page["page"] for page in pages] == list(range(1, 1501))
    assert not [page for page in pages if page.get("error_type")]
    assert sorted(pool_pids(pool)) == before, "no parser process was replaced"
    # The spared process goes on with new work.
    assert [page["page"] for page in await pool.check_range(ours, 5, 6)] == [5, 6]


async def test_a_cancelled_range_deep_in_one_slow_page_gets_its_process_killed(
    pool: PagePool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PagePool, "ABANDON_GRACE_S", 0.05)
    slow = tmp_path / "slow.pdf"
    # Far more than the grace on any machine: seconds of parsing for its one page.
    slow.write_bytes(many_operators(400_000))
    before = set(pool_pids(pool))
    cancelled = asyncio.create_task(pool.check_range(slow, 1, 1))
    await async_wait_for(lambda: _busy(pool, 0), 30, "the slow page to be parsing")
    stuck_pid = pool._slots[0].pids()
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert stuck_pid and not set(stuck_pid) & set(pool_pids(pool))
    assert set(pool._slots[1].pids()) <= before, "the other process is untouched"


@pytest.fixture
async def worker_pool() -> AsyncIterator[PagePool]:
    """A pool whose processes log as a worker's do."""
    made = PagePool(1, logging_setup=functools.partial(parser_logging, "text"))
    yield made
    made.shutdown()


async def test_what_libraries_say_in_a_parser_process_is_logged_once_per_document(
    worker_pool: PagePool, caplog: pytest.LogCaptureFixture
) -> None:
    pool = worker_pool
    ids = {"document_id": "documents/a.pdf@v1", "workflow_id": "docpipe/documents/a.pdf@v1"}
    caplog.set_level(logging.DEBUG)
    assert await run_in_pool(pool, noisy_job, "Pages tree is odd", log_extra=ids) == "done"
    assert await run_in_pool(pool, noisy_job, "Pages tree is odd", log_extra=ids) == "done"
    said = [
        (
            r.name,
            r.levelname,
            re.sub(r"line \d+", "line N", r.getMessage()),
            r.__dict__.get("document_id"),
        )
        for r in caplog.records
        if r.name != "pipeline.check.pool"
    ]
    assert sorted(said) == sorted(
        [
            (
                "pikepdf.models.metadata._xmp",
                "WARNING",
                "Error occurred parsing XMP (ValueError: Metadata seems to be XML but not XMP)",
                ids["document_id"],
            ),
            # Capped at WARNING: the report says what a damaged document means.
            ("somelib", "WARNING", "an error a library logged on two lines", ids["document_id"]),
            (
                "parser.stderr",
                "WARNING",
                "WARNING: file: Pages tree is odd; ignoring",
                ids["document_id"],
            ),
            (
                "py.warnings",
                "WARNING",
                "UserWarning in tests.support.pool (line N): a library's warning",
                ids["document_id"],
            ),
        ]
    ), "each line once, the second run adding nothing"
    # Another document's lines are its own (a warning, as Python does, once per process).
    other = {"document_id": "documents/b.pdf@v1"}
    await run_in_pool(pool, noisy_job, "Pages tree is odd", log_extra=other)
    assert {
        r.name for r in caplog.records if r.__dict__.get("document_id") == "documents/b.pdf@v1"
    } == {
        "pikepdf.models.metadata._xmp",
        "somelib",
        "parser.stderr",
    }


async def test_a_failed_job_still_hands_back_what_was_said(
    worker_pool: PagePool, caplog: pytest.LogCaptureFixture
) -> None:
    pool = worker_pool
    with pytest.raises(RuntimeError, match="the job failed"):
        await run_in_pool(pool, failing_job, "said before failing", log_extra={})
    assert [r.getMessage() for r in caplog.records if r.name == "parser.stderr"] == [
        "said before failing"
    ]


async def test_a_range_of_scans_is_shared_with_an_idle_process(
    pool: PagePool, tmp_path: Path
) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_document(3))
    # One range, as a small document's chunk sends it: after its first page, read by OCR,
    # the rest is halved between the process that read it and the idle one.
    pages = await pool.check_range(path, 1, 3)
    assert [(page["page"], page["text_source"]) for page in pages] == [
        (1, "ocr"),
        (2, "ocr"),
        (3, "ocr"),
    ]
    assert await open_documents(pool) == [[str(path)], [str(path)]]


async def test_a_scan_whose_reading_kills_its_process_twice_is_checked_without_ocr(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_document(1))
    pool = PagePool(1)
    killed: list[int] = []

    async def reading() -> int | None:
        """A process, not killed yet, that OCR is reading the page in."""
        slot = pool._slots[0]
        pids = [pid for pid in slot.pids() if pid not in killed]
        return pids[0] if slot.reading() and pids else None

    try:
        await pool.warm()
        checking = asyncio.create_task(pool.check_range(path, 1, 1))
        for _ in range(2):
            killed.append(await async_wait_for(reading, 60, "OCR reading the page"))
            os.kill(killed[-1], signal.SIGKILL)
        (result,) = await checking
    finally:
        pool.shutdown()
    assert result["error_type"] is None
    assert (result["text_source"], result["ocr_error"]) == ("ocr", "crashed")
    assert (result["image_only"], result["paper_size"]) == (True, "A4")


async def test_a_range_sent_without_ocr_reads_no_page_and_leaves_it_image_only(
    pool: PagePool, tmp_path: Path
) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_document(2))
    unread = await pool.check_range(path, 1, 2, ocr=False)
    assert [page["image_only"] for page in unread] == [True, True]
    assert all(page["text_source"] != "ocr" for page in unread)
    read = await pool.check_range(path, 1, 2)
    assert [page["text_source"] for page in read] == ["ocr", "ocr"]


async def test_an_attached_pdf_slow_to_read_is_cut_short_in_a_parser_process(
    pool: PagePool, tmp_path: Path
) -> None:
    # A PDF attached to the page: the IBAN on its first page is read; the e-mail address
    # on its last, after pages that take pypdf seconds each, is not. The default budget
    # (2 s) stops the reading well before the page's time limit (10 s): the page is
    # checked without an error.
    slow = slow_to_read([f"IBAN {IBAN}", *[None] * 18, EMAIL])
    path = tmp_path / "slow-attachment.pdf"
    path.write_bytes(with_attached(make_pdf(["text"]), [], slow))
    facts = await pool.inspect(path)
    assert facts.problem is None
    (page,) = await pool.check_range(path, 1, 1)
    assert page["error_type"] is None
    assert page["sensitive"] == {"iban": 1}


async def test_a_pool_shut_down_leaves_none_of_its_threads_running() -> None:
    before = set(threading.enumerate())
    pool = PagePool(2)
    await pool.warm()
    assert set(threading.enumerate()) > before, "each executor runs a thread of its own"
    pool.shutdown()
    # Those threads hold the executors' queues and their named semaphores: a process that
    # ends with os._exit, as ``docpipe`` does, leaves whatever they hold to the resource
    # tracker, which then warns of leaked semaphores in the worker's log.
    assert set(threading.enumerate()) == before


def test_a_program_that_ends_once_its_pool_is_shut_down_leaves_no_warning() -> None:
    program = (
        "import asyncio, os\n"
        "from pipeline.check.pool import PagePool\n"
        "async def main():\n"
        "    pool = PagePool(2)\n"
        "    await pool.warm()\n"
        "    pool.shutdown()\n"
        "asyncio.run(main())\n"
        "os._exit(0)\n"  # as ``docpipe`` ends (app.cli.main)
    )
    # Read to the end of stderr, which the resource tracker shares and writes its
    # warnings to as it exits after the program.
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
