"""Repair before reject: a copy of a damaged PDF rebuilt by qpdf, for pypdf to read.

Runs in a parser process (``pipeline.pdf.parser_process``), under its time and memory limits:
a repair that hangs is ended by the pool's watch, one that allocates without end by the
process's ``RLIMIT_AS``. The repaired copy is written next to the spooled file and removed
with it (``pipeline.check.spool``); it never leaves the worker's spool. pikepdf (qpdf) is
imported only when a document needs repairing.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

# Warnings kept as samples in the report, and the length of each.
MAX_REPAIR_WARNINGS = 20
MAX_WARNING_CHARS = 200
_REPAIRED_SUFFIX = ".repaired.pdf"
_REBUILD_SUFFIX = ".rebuild.pdf"
# Appended to a copy whose cross-reference data qpdf trusts but cannot use (a trailer
# without /Root): a startxref that leads nowhere makes qpdf rebuild the cross-reference
# table by scanning every object, which finds the catalog.
_NO_XREF = b"\nstartxref\n0\n%%EOF\n"


class RepairError(Exception):
    """qpdf could not make a readable copy of the document."""


def repaired_path(path: Path) -> Path:
    """Where the repaired copy of the spooled file ``path`` lives (beside it, in the spool)."""
    return path.with_suffix(_REPAIRED_SUFFIX)


def repair_files(path: Path) -> list[Path]:
    """Every file a repair of ``path`` made or left behind (a killed repair leaves parts)."""
    return sorted(path.parent.glob(f"{glob.escape(path.stem)}.*.pdf"))


def _scrub(warning: str, *paths: Path) -> str:
    # qpdf names the file it read: a spool path of this machine, not the report's business.
    for path in paths:
        warning = warning.replace(str(path), "file")
    return warning[:MAX_WARNING_CHARS]


def repair_copy(path: Path) -> list[str]:
    """Write a copy of ``path`` repaired by qpdf to :func:`repaired_path` (``path`` unchanged).

    The copy appears whole or not at all (written aside, then renamed), so that another
    parser process may open it as soon as it exists.

    Returns:
        qpdf's warnings about the damage (at most ``MAX_REPAIR_WARNINGS``), without paths.

    Raises:
        RepairError: qpdf could not read the document, even rebuilding it from its objects.
        MemoryError: the repair ran into the process's memory limit.
    """
    from pikepdf import PdfError

    target = repaired_path(path)
    # Named per process: two processes may repair the same document at once.
    partial = path.with_suffix(f".{os.getpid()}.part.pdf")
    rebuild = path.with_suffix(f".{os.getpid()}{_REBUILD_SUFFIX}")
    paths = (path, rebuild, partial)
    try:
        try:
            warnings = _save_repaired(path, partial)
        except MemoryError:
            raise
        except Exception as first:
            if not isinstance(first, PdfError):
                raise RepairError(_scrub(describe(first), *paths)) from None
            shutil.copyfile(path, rebuild)
            with rebuild.open("ab") as out:
                out.write(_NO_XREF)
            try:
                warnings = _save_repaired(rebuild, partial)
            except MemoryError:
                raise
            except Exception as second:
                raise RepairError(_scrub(describe(second), *paths)) from None
        try:
            os.replace(partial, target)
        except OSError as exc:
            raise RepairError(_scrub(describe(exc), *paths, target)) from None
    finally:
        partial.unlink(missing_ok=True)
        rebuild.unlink(missing_ok=True)
    return [_scrub(w, *paths) for w in warnings[:MAX_REPAIR_WARNINGS]]


def describe(exc: BaseException) -> str:
    """An error as one line: its message, or its type when it has none."""
    return str(exc) or type(exc).__name__


def _save_repaired(source: Path, out: Path) -> list[str]:
    import pikepdf

    with pikepdf.open(source, attempt_recovery=True, suppress_warnings=True) as pdf:
        # Pages are resolved now: a page tree qpdf cannot follow fails the repair here.
        len(pdf.pages)
        # The metadata is left as it is: pikepdf would otherwise parse its XMP to update
        # the PDF version in it, and log a traceback for every document whose XMP is bad.
        pdf.save(out, deterministic_id=True, fix_metadata_version=False)
        return [str(warning) for warning in pdf.get_warnings()]
