"""How a child process that parses or renders PDFs is bounded: it never outlives the
process that started it, it ignores Ctrl-C (its parent decides when it stops), and its
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

_PR_SET_PDEATHSIG = 1


def bind_to_parent(parent_pid: int) -> None:
    """Die with ``parent_pid``: the kernel kills us when it dies, and a thread watches it
    in case it died before that request was made."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Ctrl-C reaches the whole process group; the parent decides when children stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space at ``memory_mb`` (0: no cap)."""
    if memory_mb:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
