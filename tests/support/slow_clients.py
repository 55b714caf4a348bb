"""A client that sends its request a byte at a time, each sooner than a read timeout: what
only a deadline for the whole request stops."""

from __future__ import annotations

import select
import socket


def bytes_sent_before_closed(host: str, port: int, request: bytes, every_s: float) -> int:
    """Send ``request`` one byte every ``every_s`` seconds until the server closes the
    connection; how many bytes it took.

    Raises:
        AssertionError: the server took the whole request and kept the connection open.
    """
    with socket.create_connection((host, port), timeout=10) as sock:
        for sent in range(len(request)):
            try:
                sock.sendall(request[sent : sent + 1])
            except OSError:  # reset or broken pipe: closed
                return sent
            readable, _, _ = select.select([sock], [], [], every_s)
            if readable:
                try:
                    if sock.recv(65536) == b"":
                        return sent + 1
                except OSError:
                    return sent + 1
    raise AssertionError(f"the server read all {len(request)} bytes and kept the connection")
