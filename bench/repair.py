"""Repair benchmark: which damaged files pypdf reads before and after a qpdf repair, and
what a repair costs.

Two sets of files:
- the damaged documents the tests build (``tests.support.damaged``, the hostile truncated
  file, and the ones qpdf cannot repair either), plus a 20,000-page document with its
  cross-reference table cut;
- the real-world corpus (``../shared/corpus``): every file, and among them those qpdf
  itself calls damaged (it warns when opening them).

"Readable" means docpipe could check the pages: the document-level checks found no
problem (pypdf opened it and built its page list). A repair (qpdf's copy, then pypdf's
document-level checks of it) is timed and its peak memory measured in a fresh process per
file: peak RSS of that process minus its peak before the repair, pypdf and pikepdf
imported. Files are copied to a temporary directory first: nothing is written beside the
corpus. The last line is a JSON object of every figure. Usage: ``python bench/repair.py``.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Run as a script from a checkout: tests.support (the PDF generators) is found beside it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.pdf.document_checks import inspect_path
from pipeline.pdf.document_checks import inspect_repaired
from pipeline.pdf.document_checks import needs_repair
from tests.support import damaged
from tests.support import hostile
from tests.support.corpus import CORPUS
from tests.support.pdfs import make_large_pdf


def _before(path: str, out: Any) -> None:
    """In a fresh process: can docpipe check the file as it is?"""
    facts, _, stream = inspect_path(Path(path))
    if stream is not None:
        stream.close()
    before = facts.problem is None
    out.put({"before": before, "problem": facts.problem, "repair": needs_repair(facts)})


def _peak_rss_mb() -> float:
    # VmHWM, not ru_maxrss: ru_maxrss survives exec, so a spawned process would start
    # with the peak of the (large) process that started it.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _repair(path: str, out: Any) -> None:
    """In a fresh process: repair, and inspect the repaired copy; its time and memory."""
    import pikepdf  # noqa: F401  (imported before the baseline: not the repair's cost)

    from pipeline.pdf.document_checks import DocumentFacts
    from pipeline.reasons import Reason

    baseline = _peak_rss_mb()
    started = time.perf_counter()
    unreadable = DocumentFacts(None, 0, False, Reason.UNREADABLE, "unreadable as it is")
    repaired, _, stream = inspect_repaired(Path(path), unreadable)
    seconds = time.perf_counter() - started
    peak = _peak_rss_mb() - baseline
    if stream is not None:
        stream.close()
    out.put(
        {
            "after": repaired.problem is None,
            "pages_after": repaired.page_count,
            "repair_s": seconds,
            "repair_mb": peak,
        }
    )


def _in_fresh_process(target: Any, path: Path) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(str(path), queue))
    process.start()
    result: dict[str, Any] = queue.get(timeout=300)
    process.join()
    return result


def measure(path: Path) -> dict[str, Any]:
    result = _in_fresh_process(_before, path)
    if result["repair"]:
        result.update(_in_fresh_process(_repair, path))
    else:
        result["after"] = result["before"]
    return result


def qpdf_calls_damaged(path: Path) -> bool:
    import pikepdf

    try:
        with pikepdf.open(path, suppress_warnings=True) as pdf:
            len(pdf.pages)
            return bool(pdf.get_warnings())
    except pikepdf.PasswordError:
        return False
    except pikepdf.PdfError:
        return True


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="docpipe-repair-bench-"))
    try:
        built = {f"damaged/{name}": build() for name, build in damaged.DAMAGED.items()}
        built["damaged/junk-before-header (20 lines)"] = damaged.junk_before_header(lines=20)
        built["hostile/truncated"] = hostile.truncated()
        built["hostile/self-referencing-tree"] = hostile.self_referencing_tree()
        built["header-only"] = b"%PDF-1.7\nnothing else\n"
        built["noise-after-header"] = b"%PDF-1.4\n" + bytes(range(256)) * 8
        large = make_large_pdf(20_000)
        xref = large.rindex(b"\nxref") + 1
        start = large.index(b"trailer", xref)
        trailer = large[start : large.index(b">>", start) + 2]
        built["large (20,000 pages), xref cut"] = (
            large[: xref + 60] + b"\n" + trailer + b"\nstartxref\n%d\n%%%%EOF\n" % xref
        )
        tests: dict[str, dict[str, Any]] = {}
        for index, (name, data) in enumerate(built.items()):
            path = work / f"built-{index}.pdf"
            path.write_bytes(data)
            tests[name] = measure(path)

        corpus: dict[str, dict[str, Any]] = {}
        files = sorted(CORPUS.glob("*.pdf")) + sorted(CORPUS.glob("encryption/*.pdf"))
        for index, source in enumerate(files):
            path = work / f"corpus-{index}.pdf"
            shutil.copyfile(source, path)
            result = measure(path)
            result["qpdf_damaged"] = qpdf_calls_damaged(path)
            corpus[str(source.relative_to(CORPUS))] = result
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'file':45} {'before':>7} {'after':>7} {'repair s':>9} {'repair MB':>10}")
    for name, r in {**tests, **{f"corpus/{k}": v for k, v in corpus.items()}}.items():
        if name.startswith("corpus/") and r["before"] and not r["qpdf_damaged"]:
            continue
        seconds = f"{r['repair_s']:.3f}" if "repair_s" in r else "-"
        memory = f"{r['repair_mb']:.1f}" if "repair_mb" in r else "-"
        print(f"{name[:45]:45} {r['before']!s:>7} {r['after']!s:>7} {seconds:>9} {memory:>10}")

    repairs = [r for r in (*tests.values(), *corpus.values()) if "repair_s" in r]
    small = [r for r in repairs if r.get("pages_after", 0) < 1000]
    figures = {
        "tests_files": len(tests),
        "tests_readable_before": sum(r["before"] for r in tests.values()),
        "tests_readable_after": sum(r["after"] for r in tests.values()),
        "corpus_files": len(corpus),
        "corpus_encrypted_needing_password": sum(
            r["problem"] == "encrypted" for r in corpus.values()
        ),
        "corpus_qpdf_damaged": sum(r["qpdf_damaged"] for r in corpus.values()),
        "corpus_qpdf_damaged_readable_before": sum(
            r["before"] for r in corpus.values() if r["qpdf_damaged"]
        ),
        "corpus_readable_before": sum(r["before"] for r in corpus.values()),
        "corpus_readable_after": sum(r["after"] for r in corpus.values()),
        "corpus_repairs": sum("repair_s" in r for r in corpus.values()),
        "repair_s_median_small": statistics.median(r["repair_s"] for r in small) if small else None,
        "repair_mb_max_small": max(r["repair_mb"] for r in small) if small else None,
        "repair_s_large": tests["large (20,000 pages), xref cut"].get("repair_s"),
        "repair_mb_large": tests["large (20,000 pages), xref cut"].get("repair_mb"),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
