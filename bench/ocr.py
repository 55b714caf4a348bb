"""OCR benchmark: docpipe's reading of scanned pages against plain tesserocr loops, in one run.

Scans are made here from text pages whose words are known (``tests.support.scans``: A4
rendered at 200 dpi, grayscale JPEG; clean, askew by 1.5 degrees with speckle, and lying
sideways or upside down), and read three ways on the same machine, in the same run:

- **quality**: word recall (the share of the page's words read exactly) and character
  error rate (edit distance over the page's characters, whitespace collapsed), for each
  style, read with docpipe's picture choice and reading (``page_picture``,
  ``read_upright``); docpipe's own runs must count the same words on every page. Its CPU
  per page too: ``lying_cpu_ratio`` is what a page lying sideways or upside down costs
  (read, found doubtful, turned, read again) against an upright clean one;
- **throughput**: docpipe's parser pool checking the scans (page ranges as a check sends
  them, every page read by OCR in its parser process) against the **perfect split**: as
  many plain tesserocr loops as the pool has processes, side by side, each on an equal
  share of the same pages (decode the page's image with pypdf, ``SetImage``,
  ``GetUTF8Text``). ``ocr_parallel_efficiency`` is docpipe ÷ perfect split;
- **per page**: one parser process against one plain loop, ``ocr_time_ratio`` being
  docpipe's time per page ÷ the loop's, and ``ocr_cpu_ratio`` the same in CPU seconds
  (which other users of a shared machine disturb far less than wall time);
- the parser processes' peak RSS.

Runs alternate (docpipe, loops, loops, docpipe...) and ratios are medians over rounds: a
shared machine's speed drifts within minutes. Targets: word recall >= 0.97 clean and
>= 0.95 noisy, sideways and upside down, ``ocr_parallel_efficiency`` >= 0.85,
``ocr_time_ratio`` <= 1.15. The last line is a JSON object of every figure. Usage:
``python bench/ocr.py [--pages N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

# Run as a script from a checkout: tests.support (the scan generator) is found beside it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import RssSampler
from common import cpu_snapshot
from pypdf import PdfReader

from pipeline.check.chunk_run import ChunkRun
from pipeline.check.chunk_run import page_ranges
from pipeline.check.pool import PagePool
from pipeline.pdf.ocr import OcrEngine
from pipeline.pdf.ocr import OcrOptions
from pipeline.pdf.ocr import tessdata_dir
from pipeline.pdf.ocr_image import page_picture
from pipeline.pdf.ocr_page import DocumentRenderer
from pipeline.pdf.ocr_page import read_upright
from pipeline.pdf.page_checks import text_counts
from tests.support.scans import CLEAN
from tests.support.scans import NOISY
from tests.support.scans import ScanStyle
from tests.support.scans import known_pages
from tests.support.scans import scan_pdf

TARGETS = {
    "clean": 0.97,
    "noisy": 0.95,
    "sideways": 0.95,
    "upside_down": 0.95,
    "efficiency": 0.85,
    "time_ratio": 1.15,
}


def edit_distance(first: str, second: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    previous = list(range(len(second) + 1))
    for i, char in enumerate(first, start=1):
        current = [i]
        for j, other in enumerate(second, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other))
            )
        previous = current
    return previous[-1]


def word_recall(read: str, expected: str) -> float:
    """The share of the expected words (with their counts) found among the words read."""
    remaining: dict[str, int] = {}
    for word in read.split():
        remaining[word] = remaining.get(word, 0) + 1
    found = 0
    for word in expected.split():
        if remaining.get(word, 0) > 0:
            remaining[word] -= 1
            found += 1
    return found / max(1, len(expected.split()))


def char_error_rate(read: str, expected: str) -> float:
    """Edit distance over the expected characters, whitespace collapsed to one space."""
    hypothesis, reference = " ".join(read.split()), " ".join(expected.split())
    return edit_distance(hypothesis, reference) / max(1, len(reference))


def quality(path: Path, texts: list[str]) -> dict[str, Any]:
    """Recall and CER of docpipe's picture choice and reading, per page; words read; and
    the CPU seconds reading a page took (its engine started before the first)."""
    engine = OcrEngine(OcrOptions())
    renderer = DocumentRenderer(path)
    reader = PdfReader(path)
    recalls, rates, words = [], [], []
    engine.read(page_picture(reader.pages[0], 0, renderer.render, OcrOptions()).image)
    reading = 0.0
    try:
        for index, expected in enumerate(texts):
            began = time.process_time()
            picture = page_picture(reader.pages[index], index, renderer.render, OcrOptions())
            read = read_upright(engine, picture.image)[0].text
            reading += time.process_time() - began
            recalls.append(word_recall(read, expected))
            rates.append(char_error_rate(read, expected))
            words.append(text_counts(read)[1])
    finally:
        renderer.close()
        engine.close()
    return {
        "cpu_s_per_page": round(reading / len(texts), 3),
        "word_recall": round(statistics.mean(recalls), 4),
        "word_recall_min": round(min(recalls), 4),
        "char_error_rate": round(statistics.mean(rates), 4),
        "words": words,
    }


def _plain_loop(path: str, numbers: list[int], start: Any, out: Any) -> None:
    """Runs in a process of its own: plain tesserocr on the pages' embedded images."""
    os.environ["OMP_THREAD_LIMIT"] = "1"
    import tesserocr

    reader = PdfReader(path)
    with tesserocr.PyTessBaseAPI(path=f"{tessdata_dir(('eng',))}{os.sep}", lang="eng") as api:
        start.wait()
        began, cpu = time.perf_counter(), time.process_time()
        for number in numbers:
            api.SetImage(reader.pages[number - 1].images[0].image)
            api.GetUTF8Text()
        out.put((time.perf_counter() - began, time.process_time() - cpu))


def plain_loops(path: Path, pages: int, loops: int) -> tuple[float, float]:
    """Seconds of ``loops`` plain loops side by side, each on an equal share of the pages
    (the slowest loop's time): the perfect split; and their CPU seconds in all."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(loops), context.Queue()
    shares = [list(range(1 + n, pages + 1, loops)) for n in range(loops)]
    processes = [
        context.Process(target=_plain_loop, args=(str(path), share, start, out)) for share in shares
    ]
    for process in processes:
        process.start()
    measured = [out.get() for _ in processes]
    for process in processes:
        process.join()
    return max(wall for wall, _ in measured), sum(cpu for _, cpu in measured)


async def docpipe_run(pool: PagePool, path: Path, pages: int) -> tuple[float, list[int]]:
    """Seconds for the pool to check every page as one check's chunk does (its page
    ranges, each to the next free process), and the words read per page."""
    ranges = page_ranges(
        1,
        pages,
        page_count=pages,
        processes=pool.size,
        most=ChunkRun.RANGE_PAGES,
        least=ChunkRun.MIN_RANGE_PAGES,
    )
    began = time.perf_counter()
    parts = await asyncio.gather(*(pool.check_range(path, start, end) for start, end in ranges))
    seconds = time.perf_counter() - began
    results = [page for part in parts for page in part]
    assert all(page["text_source"] == "ocr" and not page["ocr_error"] for page in results)
    return seconds, [int(page["words"]) for page in results]


@dataclass
class Compared:
    """Wall seconds of each round of docpipe and of the perfect split, CPU seconds of
    docpipe's parser processes and of the loops, the parsers' peak RSS, words read."""

    docpipe: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    docpipe_cpu: list[float] = field(default_factory=list)
    plain_cpu: list[float] = field(default_factory=list)
    peak_kb: int = 0
    words: list[int] = field(default_factory=list)


async def compare(path: Path, pages: int, processes: int, rounds: int) -> Compared:
    """``rounds`` of docpipe (a warm pool of ``processes``) and the perfect split, in
    alternating order."""
    pool = PagePool(processes)
    found = Compared()
    try:
        pids = await pool.warm()
        named = {str(pid): pid for pid in pids}
        # Every process reads a page first: engines created, documents open.
        await asyncio.gather(*(pool.check_range(path, n, n) for n in range(1, processes + 1)))
        samplers = [RssSampler(pid) for pid in pids]
        for sampler in samplers:
            sampler.__enter__()
        for round_ in range(rounds):
            if round_ % 2:
                _plain(found, plain_loops(path, pages, processes))
            before = cpu_snapshot(named)
            seconds, found.words = await docpipe_run(pool, path, pages)
            after = cpu_snapshot(named)
            found.docpipe.append(seconds)
            found.docpipe_cpu.append(sum(after.values()) - sum(before.values()))
            if not round_ % 2:
                _plain(found, plain_loops(path, pages, processes))
        for sampler in samplers:
            sampler.__exit__()
        found.peak_kb = max(sampler.peak_kb for sampler in samplers)
    finally:
        pool.shutdown()
    return found


def _plain(found: Compared, measured: tuple[float, float]) -> None:
    found.plain.append(measured[0])
    found.plain_cpu.append(measured[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=6, help="pages per scan style")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="docpipe-ocr-bench-"))
    figures: dict[str, Any] = {"pages_per_style": args.pages, "processes": args.processes}
    styles: dict[str, ScanStyle] = {
        "clean": CLEAN,
        "noisy": NOISY,
        "sideways": ScanStyle(lying_deg=90),
        "upside_down": ScanStyle(lying_deg=180),
    }
    paths = {}
    for name, style in styles.items():
        texts = [page.text for page in known_pages(args.pages, seed=len(name))]
        paths[name] = work / f"{name}.pdf"
        paths[name].write_bytes(scan_pdf(texts, style))
        print(f"{name}: {args.pages} pages, reading for quality ...", flush=True)
        measured = quality(paths[name], texts)
        figures[f"{name}_word_recall"] = measured["word_recall"]
        figures[f"{name}_word_recall_min"] = measured["word_recall_min"]
        figures[f"{name}_char_error_rate"] = measured["char_error_rate"]
        figures[f"{name}_words"] = measured["words"]
        figures[f"{name}_cpu_s_per_page"] = measured["cpu_s_per_page"]
        print(
            f"  word recall {measured['word_recall']:.3f} (min {measured['word_recall_min']:.3f})"
            f", CER {measured['char_error_rate']:.3f}, CPU {measured['cpu_s_per_page']} s/page",
            flush=True,
        )
    lying_cpu = (figures["sideways_cpu_s_per_page"] + figures["upside_down_cpu_s_per_page"]) / 2
    figures["lying_cpu_ratio"] = round(lying_cpu / figures["clean_cpu_s_per_page"], 2)
    print(f"lying sideways or upside down: {figures['lying_cpu_ratio']}x an upright page's CPU")
    mixed = work / "mixed.pdf"
    mixed.write_bytes(
        scan_pdf(
            [page.text for page in known_pages(args.pages, seed=5)]
            + [page.text for page in known_pages(args.pages, seed=6)],
            NOISY,
        )
    )
    total = 2 * args.pages
    print(f"throughput: {total} pages, {args.processes} processes ...", flush=True)
    split = asyncio.run(compare(mixed, total, args.processes, args.rounds))
    efficiency = statistics.median(p / d for d, p in zip(split.docpipe, split.plain, strict=True))
    figures["ocr_pages_per_s"] = round(total / statistics.median(split.docpipe), 2)
    figures["perfect_split_pages_per_s"] = round(total / statistics.median(split.plain), 2)
    figures["ocr_parallel_efficiency"] = round(efficiency, 3)
    figures["parser_peak_rss_mb"] = round(split.peak_kb / 1024, 1)
    print(
        f"  docpipe {figures['ocr_pages_per_s']} pages/s, perfect split "
        f"{figures['perfect_split_pages_per_s']} pages/s: efficiency {efficiency:.3f}",
        flush=True,
    )
    print("per page: one parser process against one plain loop ...", flush=True)
    one = asyncio.run(compare(paths["clean"], args.pages, 1, args.rounds))
    ratio = statistics.median(d / p for d, p in zip(one.docpipe, one.plain, strict=True))
    cpu_ratio = statistics.median(
        d / p for d, p in zip(one.docpipe_cpu, one.plain_cpu, strict=True)
    )
    figures["ocr_s_per_page"] = round(statistics.median(one.docpipe) / args.pages, 3)
    figures["plain_s_per_page"] = round(statistics.median(one.plain) / args.pages, 3)
    figures["ocr_time_ratio"] = round(ratio, 3)
    # CPU seconds are what a shared machine's load disturbs least.
    figures["ocr_cpu_s_per_page"] = round(statistics.median(one.docpipe_cpu) / args.pages, 3)
    figures["plain_cpu_s_per_page"] = round(statistics.median(one.plain_cpu) / args.pages, 3)
    figures["ocr_cpu_ratio"] = round(cpu_ratio, 3)
    figures["docpipe_counts_the_same_words"] = one.words == figures["clean_words"]
    print(
        f"  docpipe {figures['ocr_s_per_page']} s/page, plain {figures['plain_s_per_page']} "
        f"s/page: ratio {ratio:.3f}; CPU {figures['ocr_cpu_s_per_page']} against "
        f"{figures['plain_cpu_s_per_page']} s/page: ratio {cpu_ratio:.3f}",
        flush=True,
    )
    figures["targets_met"] = {
        "clean_word_recall": figures["clean_word_recall"] >= TARGETS["clean"],
        "noisy_word_recall": figures["noisy_word_recall"] >= TARGETS["noisy"],
        "sideways_word_recall": figures["sideways_word_recall"] >= TARGETS["sideways"],
        "upside_down_word_recall": figures["upside_down_word_recall"] >= TARGETS["upside_down"],
        "ocr_parallel_efficiency": efficiency >= TARGETS["efficiency"],
        "ocr_time_ratio": ratio <= TARGETS["time_ratio"],
    }
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
