"""A process that owns a started parser pool, as a worker does, until it is killed: run as
``python -m tests.support.pool_owner``. It prints a line once its parser processes run."""

from __future__ import annotations

import asyncio

from pipeline.check.pool import PagePool


async def _own() -> None:
    pool = PagePool(2)
    print(" ".join(str(pid) for pid in await pool.warm()), flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(_own())
