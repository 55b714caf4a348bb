"""The one error the embedded stack fails with, apart from its pieces that raise it
(``infra.binaries``, ``infra.stack``) so that each can import it."""

from __future__ import annotations


class StackError(RuntimeError):
    """The stack cannot start; the message says what to do about it."""
