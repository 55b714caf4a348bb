"""What every ``docpipe`` command shares: how it is added, how it fails, how it connects.

Each command module has one ``add_commands(commands)`` that adds its sub-commands, each
with its handler; ``app.cli`` calls them all, loads the settings and runs the handler.
A handler returns its exit code, or raises ``CommandError`` (or an error derived from
it): ``app.cli.run`` prints that on one line and exits with its code.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

from temporalio.client import Client

from infra.clients import temporal_client
from infra.settings import Settings

# The command could not do what was asked (a check not found, a server refusing).
EXIT_FAILURE = 1
# What was asked cannot be done as asked (options, settings, ports): fix the command line.
EXIT_USAGE = 2

Handler = Callable[[argparse.Namespace, Settings], int]
T = TypeVar("T")


class CommandError(Exception):
    """A command stops: one line for the person who ran it, and the exit code.

    Attributes:
        exit_code: ``EXIT_FAILURE`` or ``EXIT_USAGE``.
    """

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Commands:
    """Where a module adds its commands: a list of sub-commands, and what each takes.

    Attributes:
        subparsers: the list (``docpipe COMMAND``, or ``docpipe dlq COMMAND`` below).
        common: the global options (log level, every setting as a flag), on every command
            so that they may follow its name.
    """

    subparsers: argparse._SubParsersAction[argparse.ArgumentParser]
    common: argparse.ArgumentParser

    def add(
        self, name: str, help: str, handler: Handler | None, *parents: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        """Add the command ``name``, run by ``handler`` (None: one of its sub-commands)."""
        parser = self.subparsers.add_parser(
            name, help=help, description=help, parents=[self.common, *parents]
        )
        if handler is not None:
            parser.set_defaults(handler=handler)
        return parser

    def below(self, parser: argparse.ArgumentParser, dest: str, **options: Any) -> Commands:
        """The sub-commands of the command ``parser`` (``docpipe dlq list``).

        Args:
            dest: the attribute that names the sub-command given.
            options: for ``add_subparsers`` (``required``, ``metavar``).
        """
        return Commands(parser.add_subparsers(dest=dest, **options), self.common)


def with_temporal(settings: Settings, work: Callable[[Client], Awaitable[T]]) -> T:
    """Connect to Temporal and run ``work(client)`` to its end, in an event loop of its own.

    Raises:
        ServerUnreachableError: Temporal does not answer (``run`` says so on one line).
    """

    async def connected() -> T:
        return await work(await temporal_client(settings.temporal, settings.codec))

    return asyncio.run(connected())
