"""Looking into a parser pool from tests: which processes run, what they hold open."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import TypeVar

from pipeline.check.pool import PagePool
from pipeline.pdf import parser_process

T = TypeVar("T")


def pool_pids(pool: PagePool) -> list[int]:
    """PIDs of the pool's live parser processes."""
    return [pid for slot in pool._slots for pid in slot.pids()]


async def open_documents(pool: PagePool) -> list[list[str]]:
    """Per started parser process, the documents it holds open; asked after the work
    already sent to each process."""
    opened: list[list[str]] = []
    for paths in await pool.on_every_process(parser_process.open_paths):
        if isinstance(paths, BaseException):
            raise paths
        opened.append(paths)
    return opened


async def run_in_pool(
    pool: PagePool, fn: Callable[..., T], *args: Any, log_extra: dict[str, Any]
) -> T:
    """``fn(*args)`` in one of the pool's parser processes, as the pool runs its own jobs."""
    return await pool._run(fn, *args, limit_s=30.0, log_extra=log_extra)


def noisy_job(message: str) -> str:
    """Runs in a parser process: what damaged documents make libraries do, then a result."""
    import logging
    import os
    import warnings

    try:
        raise ValueError("Metadata seems to be XML but not XMP")
    except ValueError:
        logging.getLogger("pikepdf.models.metadata._xmp").warning(
            "Error occurred parsing XMP", exc_info=True
        )
    logging.getLogger("somelib").error("an error a library\nlogged on two lines")
    os.write(2, f"WARNING: file: {message}; ignoring\n\n\n".encode())
    warnings.warn("a library's warning", UserWarning, stacklevel=1)
    return "done"


def failing_job(message: str) -> None:
    """Runs in a parser process: says something on stderr, then fails."""
    import os

    os.write(2, f"{message}\n".encode())
    raise RuntimeError("the job failed")


def pages_in_progress(pool: PagePool) -> list[int]:
    """The page each parser process is on now (0: idle, -1: inspecting)."""
    return [slot.busy_with()[0] for slot in pool._slots]
