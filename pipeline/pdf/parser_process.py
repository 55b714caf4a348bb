"""What runs inside a parser process: its limits, its globals, and the work sent to it.

Each parser process is started by ``pipeline.check.pool`` (a slot of its own) with
:func:`init_process`, and then runs the functions below on the documents it is sent. The
module-level names below the imports are that process's state: the worker process never
uses them. A slot shares three numbers with its process (``progress``): the page being
parsed, since when, and the job the worker wants abandoned.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from pipeline.pdf.bounds import bind_to_parent
from pipeline.pdf.bounds import limit_memory
from pipeline.pdf.document_checks import DocumentFacts
from pipeline.pdf.document_checks import inspect_path
from pipeline.pdf.document_checks import inspect_repaired
from pipeline.pdf.document_checks import needs_repair
from pipeline.pdf.ocr import OcrEngine
from pipeline.pdf.ocr import OcrOptions
from pipeline.pdf.ocr_page import OCR
from pipeline.pdf.ocr_page import DocumentRenderer
from pipeline.pdf.ocr_page import read_page
from pipeline.pdf.ocr_page import unread
from pipeline.pdf.page_checks import PageResult
from pipeline.pdf.page_checks import check_pages
from pipeline.pdf.pages import LeanReader
from pipeline.pdf.repair import repair_copy
from pipeline.pdf.repair import repaired_path

# Per parser process: the documents being checked, kept open (and their pages indexed)
# between page ranges; the least recently used beyond _OPEN_READERS is closed.
_open: collections.OrderedDict[str, LeanReader] = collections.OrderedDict()
_OPEN_READERS = 4
# Per parser process, shared with its slot: [page being parsed (0: idle, -1: inspecting,
# -2: repairing a damaged document), CLOCK_MONOTONIC ns when it started, the job the
# worker wants abandoned (0: none), what is being done to the page (PARSING or READING:
# OCR, which has a time limit of its own)].
_progress: Any = None
INSPECTING = -1
REPAIRING = -2
PAGE, SINCE, ABANDON, PHASE = 0, 1, 2, 3
PROGRESS_SLOTS = 4
PARSING, READING = 0, 1
# Per parser process: how image-only pages are read, the OCR engine (created on the first
# such page, then reused), and a pdfium renderer per open document.
_ocr = OcrOptions(enabled=False)
_engine: OcrEngine | None = None
_renderers: dict[str, DocumentRenderer] = {}
# Per parser process: write a line for every page checked to the worker's log when the
# worker logs at debug level. Written as each page is done (to _log_fd, the worker's
# stderr), so that what a killed worker's processes had checked is known from its log.
_log_pages = False
_pages_log = logging.getLogger("parser.pages")
# Per parser process: what libraries say while a job runs, handed back with its outcome
# (``Logged``) for the worker to log with the document it concerns. Records logged through
# ``logging`` are collected by _JobLines; what is written straight to the stderr file
# descriptor (qpdf, C extensions) lands in a file (_stderr_fd; a file, so that a library
# that writes a lot never blocks on a full pipe) and is read after the job.
_job_lines: list[LogLine] = []
_stderr_fd: int | None = None
# At most this much of one job's output is kept: a flood is cut, never a memory problem.
MAX_JOB_LINES = 50
MAX_STDERR_BYTES = 64 * 1024
STDERR_LOGGER = "parser.stderr"
# Per parser process: seconds the analysis of changes after signatures may take, per
# document (a share of the inspection's limit, so that a large signed document gets its
# other checks done and a report, instead of timing out as unreadable).
_diff_budget_s: float | None = None
DIFF_BUDGET_SHARE = 0.25
# pypdf's limits on what one stream may declare or decode to: every decoder gets the same
# byte limit (ParserLimits.max_stream_bytes).
_STREAM_SIZE_LIMITS = (
    "maximum_declared_stream_length",
    "array_based_stream_maximum_output_length",
    "jbig2_maximum_output_length",
    "lzw_maximum_output_length",
    "run_length_maximum_output_length",
    "zlib_maximum_output_length",
    "brotli_maximum_output_length",
    "image_maximum_buffer_size",
)


@dataclass(frozen=True)
class ParserLimits:
    """Limits of one parser process.

    Attributes:
        page_seconds: wall time one page may take before its process is replaced.
        inspect_seconds: wall time the document-level checks may take.
        memory_mb: address-space limit of a parser process (0: none).
        max_stream_bytes: pypdf's limit on decompressed and declared stream sizes.
        ocr: how image-only pages are read (and the time the OCR of one may take).
    """

    page_seconds: float = 10.0
    inspect_seconds: float = 60.0
    memory_mb: int = 2048
    max_stream_bytes: int = 75_000_000
    ocr: OcrOptions = field(default_factory=OcrOptions)


class AbandonedError(Exception):
    """Raised in a parser process that stopped a job the worker no longer wants."""


@dataclass(frozen=True)
class LogLine:
    """One line a library said in a parser process: its level, logger and text."""

    level: int
    logger: str
    text: str


@dataclass
class Logged:
    """What a job in a parser process gave (or raised), and the lines said meanwhile."""

    result: Any = None
    error: Exception | None = None
    lines: list[LogLine] = field(default_factory=list)


class _JobLines(logging.Handler):
    """Collects the records of the running job as ``LogLine`` values (formatted by the
    formatter the logging setup gives it)."""

    def emit(self, record: logging.LogRecord) -> None:
        if len(_job_lines) < MAX_JOB_LINES:
            _job_lines.append(LogLine(record.levelno, record.name, self.format(record)))


# How a parser process's logging is set up by the process that runs the pool: given the
# handler that collects each job's records and the one that writes page lines to the
# worker's log, it sets their formats and what becomes of warnings.
LoggingSetup = Callable[[logging.Handler, logging.Handler], None]


@dataclass(frozen=True)
class ParserLogging:
    """How a parser process logs: the worker's level, and its setup (picklable)."""

    level: int = logging.INFO
    setup: LoggingSetup | None = None


def init_process(
    owner_pid: int, progress: Any, limits: ParserLimits, logs: ParserLogging | None = None
) -> None:
    """Pool initializer: limits, and never outlive the worker process that asked for us."""
    global _progress, _log_pages, _diff_budget_s, _ocr
    logs = logs or ParserLogging()
    _progress = progress
    _ocr = limits.ocr
    # Tesseract's own threads, pinned before it loads: the pool runs a page per process.
    os.environ["OMP_THREAD_LIMIT"] = "1"
    _log_pages = logs.level <= logging.DEBUG
    _diff_budget_s = limits.inspect_seconds * DIFF_BUDGET_SHARE
    _capture_output(logs)
    bind_to_parent(owner_pid)
    # A bomb that gets past pypdf's limits raises MemoryError here, as a page error,
    # instead of taking the machine's memory.
    limit_memory(limits.memory_mb)
    from pypdf._configuration import overwrite_configuration

    stream_limits: dict[str, Any] = dict.fromkeys(_STREAM_SIZE_LIMITS, limits.max_stream_bytes)
    overwrite_configuration(**stream_limits)


def _capture_output(logs: ParserLogging) -> None:
    """Collect what is logged or written to stderr from now on, for ``run_logged``.

    The page lines alone go to the worker's stderr at once (they must be there should the
    worker be killed the next moment).
    """
    global _stderr_fd
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    job_lines = _JobLines()
    root.addHandler(job_lines)
    root.setLevel(logs.level)
    sys.stderr.flush()
    page_lines = logging.StreamHandler(os.fdopen(os.dup(2), "w", buffering=1))
    _pages_log.addHandler(page_lines)
    _pages_log.propagate = False
    if logs.setup is not None:
        logs.setup(job_lines, page_lines)
    with tempfile.TemporaryFile() as spill:
        _stderr_fd = os.dup(spill.fileno())
    os.dup2(_stderr_fd, 2)


def _take_lines() -> list[LogLine]:
    """The lines said since the last call (records, then what stderr received)."""
    taken = _job_lines[:]
    _job_lines.clear()
    if _stderr_fd is None:
        return taken
    sys.stderr.flush()
    os.lseek(_stderr_fd, 0, os.SEEK_SET)
    written = os.read(_stderr_fd, MAX_STDERR_BYTES).decode("utf-8", "replace")
    os.ftruncate(_stderr_fd, 0)
    os.lseek(_stderr_fd, 0, os.SEEK_SET)
    for line in written.splitlines():
        if len(taken) >= MAX_JOB_LINES:
            break
        if line.strip():
            taken.append(LogLine(logging.WARNING, STDERR_LOGGER, line.strip()))
    return taken


def run_logged(fn: Callable[..., Any], *args: Any) -> Logged:
    """Runs in a parser process: ``fn(*args)``, with what libraries said while it ran.

    An exception ``fn`` raises is handed back too (not raised), so that its lines are not
    lost with it.
    """
    try:
        outcome = Logged(result=fn(*args))
    except Exception as exc:
        outcome = Logged(error=exc)
    outcome.lines = _take_lines()
    return outcome


def _mark(page: int, phase: int = PARSING) -> None:
    if _progress is not None:
        _progress[SINCE] = time.monotonic_ns()
        _progress[PHASE] = phase
        _progress[PAGE] = page


def pid() -> int:
    """This process's PID: sent to start a process (and to learn who it is)."""
    return os.getpid()


def open_paths() -> list[str]:
    """The documents this process holds open (for diagnostics and tests)."""
    return list(_open)


def forget(path: str) -> None:
    """Runs in a parser process: close the document (its spooled file is being removed)."""
    _close(path, _open.pop(path, None))


def _close(path: str, lean: LeanReader | None) -> None:
    if lean is not None:
        lean.close()
    renderer = _renderers.pop(path, None)
    if renderer is not None:
        renderer.close()


def _keep_open(path: str, lean: LeanReader) -> None:
    _close(path, _open.pop(path, None))
    _open[path] = lean
    while len(_open) > _OPEN_READERS:
        _close(*_open.popitem(last=False))


def _reader(path: str, *, repairing_page: int | None = None) -> LeanReader:
    """The open document at ``path``: as it is, or its repaired copy when it needed one.

    Args:
        repairing_page: repair the document here if pypdf cannot read it and no repaired
            copy is there yet, counting the time against this page's limit; None: do not.
    """
    lean = _open.get(path)
    if lean is None:
        original = Path(path)
        try:
            lean = LeanReader.open(original)
        except Exception:
            repaired = repaired_path(original)
            if not repaired.exists():
                if repairing_page is None:
                    raise
                # Inspected on another worker: repair as the inspection did, and within
                # a page's limits (the pool's watch ends a repair that hangs).
                _mark(repairing_page)
                repair_copy(original)
            lean = LeanReader.open(repaired)
        _keep_open(path, lean)
    _open.move_to_end(path)
    return lean


def inspect(path: Path) -> DocumentFacts:
    """Runs in a parser process: document-level checks; a checkable document stays open.

    A document pypdf cannot read as it is is repaired (into the spool, beside ``path``)
    within the same limits, and its repaired copy stays open instead.
    """
    _mark(INSPECTING)
    try:
        facts, reader, stream = inspect_path(path, diff_budget_s=_diff_budget_s)
        if needs_repair(facts):
            # The time limit starts again: the watch names what took too long.
            _mark(REPAIRING)
            facts, reader, stream = inspect_repaired(path, facts)
        if reader is not None and stream is not None:
            # Its pages are indexed already: page ranges sent here need not do it again.
            _keep_open(str(path), LeanReader(stream, reader))
        return facts
    finally:
        _mark(0)


def preload(path: str) -> None:
    """Runs in a parser process: open and index a document before its pages are sent.

    A document that needs repair is left to the inspection (it repairs it once).
    """
    _mark(INSPECTING)
    try:
        _reader(path)
    finally:
        _mark(0)


def check_range(
    path: str, first: int, last: int, ocr: bool = True, job: int = 0
) -> list[dict[str, Any]]:
    """Runs in a parser process: check pages ``first``..``last`` of the spooled file.

    ``ocr``: False reads no page by OCR (the check leaves such pages to an OCR worker).
    Stops before any page once the worker has asked to abandon ``job``. Returns early,
    after a page read by OCR, with the pages checked so far: the pool hands the rest on,
    shared with the processes that are free (a scanned page costs as much as a thousand
    text pages, so a range of scans is no longer a fair share).
    """
    try:
        lean = _reader(path, repairing_page=first)
    except BaseException:
        _mark(0)
        raise
    results: list[dict[str, Any]] = []
    try:
        for number in range(first, last + 1):
            if job and _progress is not None and _progress[ABANDON] == job:
                raise AbandonedError(f"job {job} abandoned at page {number}")
            _mark(number)
            (result,) = check_pages(lean.reader, number, number)
            if ocr and _ocr.enabled and result.image_only and result.error_type is None:
                _mark(number, READING)
                result = _read(path, lean, result)
                if _log_pages:
                    _pages_log.debug("parser process %d: page %d read by OCR", os.getpid(), number)
            results.append(result.to_json())
            if _log_pages:
                _pages_log.debug("parser process %d: page %d checked", os.getpid(), number)
            if result.text_source == OCR:
                break
    finally:
        _mark(0)
        # Parsed objects of this range are not needed again: memory stays flat.
        lean.release()
    return results


def _read(path: str, lean: LeanReader, result: PageResult) -> PageResult:
    """An image-only page's result with the checks of the text OCR reads from it."""
    global _engine
    if _engine is None:
        _engine = OcrEngine(_ocr)
    renderer = _renderers.get(path)
    if renderer is None:
        renderer = _renderers[path] = DocumentRenderer(lean.path or Path(path))
    page = lean.reader.pages[result.page - 1]
    return read_page(page, result, renderer=renderer, engine=_engine, options=_ocr)


def check_unread(path: str, number: int, cause: str) -> list[dict[str, Any]]:
    """Runs in a parser process: check page ``number`` without OCR, as unread for ``cause``.

    For a page whose OCR took too long or killed its process: its other checks are kept,
    and it is reported as a page OCR could not read.
    """
    lean = _reader(path, repairing_page=number)
    try:
        _mark(number)
        (result,) = check_pages(lean.reader, number, number)
        if result.image_only and result.error_type is None:
            result = unread(result, cause)
        return [result.to_json()]
    finally:
        _mark(0)
        lean.release()
