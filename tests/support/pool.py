"""Looking into a parser pool from tests: which processes run, what they hold open."""

from __future__ import annotations

from pipeline import parser_process
from pipeline.pool import PagePool


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
