"""Processes that own parser processes, as a worker does, until they are killed: run as
``python -m tests.support.pool_owner [MODE]``. Each prints a line of PIDs once its
processes run.

- ``pool`` (the default): a started parser pool of two; the line holds their PIDs.
- ``chain``: a stand-in for a fork server that does not die with its owner (this
  process), and a process under it bound to the owner; the line holds the stand-in's PID
  and the bound process's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

from pipeline.check.pool import PagePool
from pipeline.pdf.bounds import bind_to_parent


async def _own_a_pool() -> None:
    pool = PagePool(2)
    print(" ".join(str(pid) for pid in await pool.warm()), flush=True)
    await asyncio.sleep(3600)


def _stay_bound(owner_pid: int, ready: Any) -> None:
    bind_to_parent(owner_pid)
    ready.set()
    time.sleep(3600)


def _server_stand_in() -> None:
    """Starts a process bound to this one's parent, as a fork server's children are, and
    says its PID once it is bound."""
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    bound = context.Process(target=_stay_bound, args=(os.getppid(), ready))
    bound.start()
    if not ready.wait(60):
        raise SystemExit("the bound process did not start")
    print(bound.pid, flush=True)
    time.sleep(3600)


def _own_a_chain() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", __spec__.name, "server"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    print(server.pid, server.stdout.readline().strip(), flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "pool"
    if mode == "pool":
        asyncio.run(_own_a_pool())
    elif mode == "chain":
        _own_a_chain()
    else:
        _server_stand_in()
