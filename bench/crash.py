"""Crash benchmark: one check whose worker is SIGKILLed three times, all settings default.

A 3,000-page document made of real-world pages (the corpus beside the project, else
generated pages) goes through the whole stack: upload event, intake, workflow, worker. The
worker is SIGKILLed at three random moments while it checks pages, and each time the next
worker is started right away (it takes the check over once the heartbeat timeout has
passed). Workers log at debug level: their parser processes then write a line to the
worker's log for every page they have checked, as they go, so that a killed worker's log
still says what it had checked. From those lines and the report it prints:

- ``redo_ratio``: pages checked more than once, over the document's pages (target <=
  0.05), and ``resent_ratio``: pages of chunks sent to parser processes more than once
  (a chunk killed halfway counts whole);
- ``resume_s``: median seconds from a kill to the next attempt's first stored chunk (the
  heartbeat timeout, 30 s by default, is most of it);
- ``orphans``: parser processes of a killed worker still alive 5 s after the kill;
- ``pages_once``: the report's chunk files hold every page exactly once.

With ``--scanned`` the document is a scan instead (300 pages by default: a picture of a
page of known text per page, no text layer), so every page checked is a page read by OCR,
and ``redo_ratio`` counts the pages OCRed more than once. A scanned page takes seconds, so
each kill comes after a random number of pages more than its chunks (up to a chunk's),
rather than within 0.2 s.

The last line is a JSON object of every figure. Usage: ``python bench/crash.py [--seed N]
[--pages N] [--scanned] [--chunk-pages N]`` (fewer pages for a quicker run; the figures
above are for 3,000).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import os
import random
import re
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script from a checkout: tests.support (the PDF generators) is found beside it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import add_state_dir_option
from common import bench_stack
from common import print_figures
from common import run_in_work_dir
from pypdf import PageObject
from pypdf import PdfReader
from pypdf import PdfWriter

from app.submit import submit_files
from infra.check_requests import check_request
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.processes import ManagedProcess
from infra.processes import docpipe_process
from infra.processes import parser_pids
from infra.processes import pid_alive
from infra.processes import stop_all
from infra.settings import Settings
from infra.settings_env import to_env
from pipeline.check import chunk_run
from pipeline.models import REPORT_NAME
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from tests.support.pdfs import make_large_pdf
from tests.support.scans import scanned_document

PAGES = 3000
# A scan costs about 0.4 s of CPU per page to read: a tenth of the pages is minutes.
SCANNED_PAGES = 300
KILLS = 3
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pypdf-resources"
# The worker's debug lines: a page checked in a parser process; a chunk sent to the parser
# processes; a chunk stored (the chunk run logs under its module's name, wherever it lives).
_PAGE = re.compile(r"DEBUG parser\.pages: parser process \d+: page (\d+) checked")
_CHUNK_RUN = re.escape(chunk_run.__name__)
_CHECKING = re.compile(rf"DEBUG {_CHUNK_RUN}: checking pages (\d+)-(\d+)")
_STORED = re.compile(rf"DEBUG {_CHUNK_RUN}: pages (\d+)-(\d+) stored \(written\)")


def corpus_document(pages: int, path: Path) -> str:
    """Write a ``pages``-page PDF of the corpus's pages, over and over; say what it is.

    Each page beyond the first round is a page object of its own that shares its
    content and resources with its original, so the file stays small while every page
    costs what the real one does to check.
    """
    files = sorted(CORPUS.glob("*.pdf")) if CORPUS.is_dir() else []
    writer = PdfWriter()
    originals = []
    for file in files:
        try:
            reader = PdfReader(file)
            if reader.is_encrypted:
                continue
            originals.extend(writer.add_page(page) for page in reader.pages)
        except Exception:  # a file pypdf cannot copy is simply not used
            continue
    if not originals:
        make_large_pdf(pages, path=path)
        return f"{pages} generated pages (no corpus at {CORPUS})"
    while len(writer.pages) < pages:
        for original in originals[: pages - len(writer.pages)]:
            copy = PageObject(writer)
            copy.update({key: value for key, value in original.items() if key != "/Parent"})
            writer.add_page(copy)
    del writer.pages[pages:]
    with path.open("wb") as out:
        writer.write(out)
    return f"{pages} pages cycling {len(originals)} real-world pages of {len(files)} files"


def scanned_file(pages: int, path: Path) -> str:
    """Write a scan of ``pages`` pages of known text (200 dpi, one picture per page, no
    text layer); say what it is."""
    path.write_bytes(scanned_document(pages))
    return f"{pages} scanned pages (200 dpi pictures, no text layer)"


def _chunks_sent(log: Path) -> list[tuple[int, int]]:
    return [(int(m[1]), int(m[2])) for m in _CHECKING.finditer(log.read_text(errors="replace"))]


def _checked_count(log: Path) -> int:
    return len(_PAGE.findall(log.read_text(errors="replace")))


def _stored_count(log: Path) -> int:
    return len(_STORED.findall(log.read_text(errors="replace")))


def _attempt_started(log: Path, attempt: int) -> bool:
    return f"(attempt {attempt}" in log.read_text(errors="replace")


def _wait(condition: Any, seconds: float, what: str, every: float = 0.05) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {seconds:.0f} s")
        time.sleep(every)


def _worker(settings: Settings, logs: Path, number: int) -> ManagedProcess:
    return docpipe_process(
        ["worker", "--log-level", "debug"],
        settings_env=to_env(settings),
        log_path=logs / f"worker-{number}.log",
        base_env=os.environ,
    )


def pages_in_report(settings: Settings, document: DocumentRef) -> list[int]:
    """Every page number in the report's chunk files, in their order."""
    s3 = s3_client(settings.s3)
    bucket = settings.s3.results_bucket
    prefix = document.results_prefix(settings.s3.results_prefix)
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/{REPORT_NAME}")["Body"].read())
    seen: list[int] = []
    for key in report["pages"]["chunks"]:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        seen.extend(json.loads(line)["page"] for line in body.splitlines())
    return seen


async def run(
    work: Path,
    state_dir: str | None,
    seed: int,
    pages: int,
    *,
    scanned: bool = False,
    chunk_pages: int = 0,
) -> dict[str, Any]:
    rng = random.Random(seed)
    path = work / "crash.pdf"
    made = scanned_file(pages, path) if scanned else corpus_document(pages, path)
    print(f"document: {made}, {path.stat().st_size / 1e6:.1f} MB", flush=True)
    logs = work / "logs"
    figures: dict[str, Any] = {"pages": pages, "kills": KILLS, "seed": seed, "scanned": scanned}
    # How long to wait for a step: a chunk of scans is a minute of CPU, one of text 0.1 s.
    patience = 1800 if scanned else 300
    with bench_stack(state_dir) as stack:
        settings = stack.settings()
        if chunk_pages:
            pipeline = dataclasses.replace(settings.pipeline, chunk_pages=chunk_pages)
            settings = dataclasses.replace(settings, pipeline=pipeline)
        figures["heartbeat_timeout_s"] = settings.pipeline.heartbeat_timeout_s
        figures["chunk_pages"] = size = settings.pipeline.chunk_pages
        started: list[ManagedProcess] = []
        try:
            started.append(
                docpipe_process(
                    ["consume"],
                    settings_env=to_env(settings),
                    log_path=logs / "consume.log",
                    base_env=os.environ,
                )
            )
            workers = [_worker(settings, logs, 1)]
            started.append(workers[0])
            (submission,) = await submit_files(settings, [path], key="bench/crash.pdf")
            document = submission.document
            client = await temporal_client(settings.temporal, settings.codec)
            handle = client.get_workflow_handle(
                check_request(settings, document).workflow_id, result_type=CheckSummary
            )
            resumes: list[float] = []
            orphans = 0
            killed_at = 0.0
            for attempt in range(1, KILLS + 1):
                worker = workers[-1]
                _wait(
                    lambda w=worker, a=attempt: _attempt_started(w.log_path, a), patience, "attempt"
                )
                if attempt > 1:
                    _wait(lambda w=worker: _stored_count(w.log_path) > 0, patience, "stored chunk")
                    resumes.append(time.monotonic() - killed_at)
                # A random moment of this attempt: after a random share of the chunks it
                # has left (up to half of them, so that each kill finds work to cut).
                chunks_left = -(-(pages - _stored_pages(workers)) // size)
                target = rng.randint(0, max(chunks_left // 2, 1))
                _wait(lambda w=worker, t=target: _stored_count(w.log_path) >= t, patience, "chunks")
                if scanned:
                    # A scanned page takes seconds, not 0.2 s: the kill comes after a random
                    # number of pages more (up to a chunk's), wherever they are in flight.
                    more = _checked_count(worker.log_path) + rng.randint(0, size)
                    _wait(
                        lambda w=worker, m=more: (
                            _checked_count(w.log_path) >= m or _stored_pages(workers) >= pages
                        ),
                        patience,
                        "pages read",
                    )
                else:
                    await asyncio.sleep(rng.uniform(0, 0.2))
                parsers = parser_pids(worker.pid)
                os.kill(worker.pid, signal.SIGKILL)
                killed_at = time.monotonic()
                worker.process.wait(timeout=30)
                print(
                    f"kill {attempt}: after {_stored_count(worker.log_path)} chunks stored "
                    f"by this worker ({len(parsers)} parser processes)",
                    flush=True,
                )
                workers.append(_worker(settings, logs, attempt + 1))
                started.append(workers[-1])
                await asyncio.sleep(max(0.0, killed_at + 5 - time.monotonic()))
                orphans += len([pid for pid in parsers if pid_alive(pid)])
            _wait(lambda: _stored_count(workers[-1].log_path) > 0, patience, "stored chunk")
            resumes.append(time.monotonic() - killed_at)
            summary = await asyncio.wait_for(handle.result(), 600)
        finally:
            stop_all(started, timeout=15)
        sent = collections.Counter(
            page
            for worker in workers
            for first, last in _chunks_sent(worker.log_path)
            for page in range(first, last + 1)
        )
        checked = collections.Counter(
            int(match[1])
            for worker in workers
            for match in _PAGE.finditer(worker.log_path.read_text(errors="replace"))
        )
        redone = sum(count - 1 for count in checked.values())
        figures["verdict"] = summary.verdict
        figures["pages_checked"] = sum(checked.values())
        figures["pages_redone"] = redone
        figures["redo_ratio"] = round(redone / pages, 4)
        figures["resent_ratio"] = round(sum(count - 1 for count in sent.values()) / pages, 4)
        figures["resume_runs_s"] = [round(s, 1) for s in resumes]
        figures["resume_s"] = round(statistics.median(resumes), 1)
        figures["orphans"] = orphans
        figures["pages_once"] = pages_in_report(settings, document) == list(range(1, pages + 1))
    return figures


def _stored_pages(workers: list[ManagedProcess]) -> int:
    """Pages the workers so far have stored (a chunk at most once: redone ones are skipped)."""
    return sum(
        last - first + 1
        for worker in workers
        for first, last in (
            (int(m[1]), int(m[2])) for m in _STORED.finditer(worker.log_path.read_text())
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument(
        "--pages",
        type=int,
        help=f"pages of the document (default: {PAGES}, scanned {SCANNED_PAGES})",
    )
    parser.add_argument(
        "--scanned", action="store_true", help="a scanned document: every page read by OCR"
    )
    parser.add_argument(
        "--chunk-pages", type=int, default=0, help="pages per chunk (default: the setting's)"
    )
    add_state_dir_option(parser)
    args = parser.parse_args()
    pages = args.pages or (SCANNED_PAGES if args.scanned else PAGES)
    figures = run_in_work_dir(
        lambda work: run(
            work,
            args.state_dir,
            args.seed,
            pages,
            scanned=args.scanned,
            chunk_pages=args.chunk_pages,
        )
    )
    print_figures(
        figures,
        f"redo: {figures['pages_redone']} of {figures['pages']} pages checked again -> redo_ratio "
        f"{figures['redo_ratio']} (target <= 0.05); pages of chunks sent again: "
        f"resent_ratio {figures['resent_ratio']}",
        f"resume: {figures['resume_s']} s median from a kill to the next attempt's first "
        f"stored chunk {figures['resume_runs_s']} (heartbeat timeout "
        f"{figures['heartbeat_timeout_s']:g} s)",
        f"orphans: {figures['orphans']}; every page exactly once: {figures['pages_once']}",
    )


if __name__ == "__main__":
    main()
