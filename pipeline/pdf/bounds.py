"""How a child process that parses or renders PDFs is bounded: it never outlives the
process that asked for it, it ignores Ctrl-C (its parent decides when it stops), and its
address space is capped so that a bomb raises ``MemoryError`` instead of taking the
machine's memory.

Used by the parser processes (``pipeline.pdf.parser_process``) and the page renderer's
process (``pipeline.pdf.render``), each in its initializer.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import threading
import time
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask the kernel to kill this process when its parent dies (Linux; elsewhere nothing).
    The signal follows the parent's *thread* that started us: processes are started from
    the thread that lives as long as they should (the main thread)."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def bind_to_parent(owner_pid: int) -> None:
    """Die with ``owner_pid``, the process that asked for us: our parent, or the parent of
    the fork server we were forked from (``pipeline.pdf.fork_server``), which dies with it.
    The kernel kills us when our parent dies, and a thread watches the chain once a second
    in case that request came too late, or the fork server outlived the owner."""
    die_with_parent()
    # Ctrl-C reaches the whole process group; the parent decides when children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()

    def bound() -> bool:
        # Forked from a fork server: the server must still be the owner's child too.
        chained = parent == owner_pid or parent_of(parent) == owner_pid
        return chained and os.getppid() == parent

    def watch() -> None:
        while bound():
            time.sleep(1.0)
        os._exit(1)

    if not bound():
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def parent_of(pid: int) -> int | None:
    """The parent of process ``pid`` (Linux), or None when it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name in parentheses may hold spaces and parentheses of its own.
    return int(stat.rsplit(")", 1)[1].split()[1])


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space at ``memory_mb`` (0: no cap)."""
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
