"""Ports on loopback: which are free, which are taken, which already answer.

The embedded stack, the tests and the benchmarks listen on loopback only.
"""

from __future__ import annotations

import errno
import socket

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """Ports on loopback that nothing listens on right now."""
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
