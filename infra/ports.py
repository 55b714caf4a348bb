"""Ports on loopback: which are free, which are taken, which already answer.

The embedded stack, the tests and the benchmarks listen on loopback only.

A port found free is only free until someone binds it, and a server binds its port a
moment (or, starting under load, seconds) after it was chosen. Two things can take it in
between, and both happen when several stacks start at once:

- the kernel, which hands out ports of the ephemeral range to every ``bind(port 0)`` and
  every outgoing connection. The Temporal dev server picks its internal ports that way,
  and when one of them is a port chosen here, one of the two servers fails to bind (the
  dev server then dies with a panic);
- another docpipe process choosing ports at the same time.

So :func:`free_ports` chooses below the ephemeral range, where the kernel never hands a
port out on its own, and records each choice with a byte-range lock on one shared file.
Other processes skip a locked port; the lock goes when the process that chose it ends.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import os
import random
import socket
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

LOOPBACK = "127.0.0.1"

# Where chosen ports start: above the defaults of common local servers, and of docpipe's
# own embedded stack (7233, 8233, 9092, 4566, 8235, 8236), so that a test never takes a
# port that `make demo` is about to use.
FIRST_CHOSEN_PORT = 20000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
# Linux's default start of the range; macOS's and Windows' start higher still.
_DEFAULT_EPHEMERAL_START = 32768

_lock = threading.Lock()
_chosen: set[int] = set()
_lock_file: int | None = None


def ephemeral_start() -> int:
    """The first port the kernel hands out on its own (bind to port 0, connect)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return _DEFAULT_EPHEMERAL_START


def free_ports(count: int) -> list[int]:
    """``count`` different ports on loopback that nothing listens on right now, chosen
    where neither the kernel nor another docpipe process will hand them out while this
    process runs."""
    candidates = range(FIRST_CHOSEN_PORT, ephemeral_start())
    if len(candidates) < 1000:
        # No room below the ephemeral range (an unusual kernel setting): ask the kernel.
        return _kernel_ports(count)
    return _choose(random.sample(candidates, len(candidates)), count)


def _choose(candidates: Iterable[int], count: int) -> list[int]:
    chosen: list[int] = []
    with _lock:
        for port in candidates:
            if port not in _chosen and _bindable(port) and _claim(port):
                _chosen.add(port)
                chosen.append(port)
                if len(chosen) == count:
                    return chosen
    raise OSError(errno.EADDRNOTAVAIL, f"fewer than {count} free ports on {LOOPBACK}")


def _bindable(port: int) -> bool:
    # No SO_REUSEADDR: a port with a connection closing on it counts as taken, since
    # servers that do not set the option (the broker, moto) could not bind it either.
    with socket.socket() as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _claim(port: int) -> bool:
    """Lock byte ``port`` of the shared claims file; False if another process holds it."""
    global _lock_file
    if _lock_file is None:
        path = Path(tempfile.gettempdir()) / f"docpipe-ports-{os.getuid()}.lock"
        _lock_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(_lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        raise
    return True


def _kernel_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_taken(port: int) -> bool:
    """Whether something holds ``port`` on loopback, so that a server could not bind it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def port_open(port: int) -> bool:
    """Whether something accepts connections on ``port`` on loopback."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def is_loopback_host(host: str) -> bool:
    """Whether a server listening on ``host`` is reachable from this machine only; a host
    name other than ``localhost`` may lead anywhere, so it is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
