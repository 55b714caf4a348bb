"""The ``docpipe`` command line: the global options, the settings, and how a command ends.

Each command lives in the module of its concern, which adds it (``add_commands``);
every failure a person can act on is said here, once, on one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import NoReturn

from botocore.exceptions import ConnectTimeoutError
from botocore.exceptions import EndpointConnectionError

from app import admin
from app import codec_server
from app import dead_letters
from app import demo
from app import dev
from app import recheck
from app import report_view
from app import reprocess
from app import review
from app import services
from app import status_view
from app import submit
from app.command import EXIT_USAGE
from app.command import CommandError
from app.command import Commands
from infra.clients import ServerUnreachableError
from infra.clients import s3_unreachable
from infra.logs import configure_logging
from infra.settings import SettingsError
from infra.settings_env import add_arguments
from infra.settings_env import load_settings
from infra.stack_errors import StackError

# In the order ``docpipe --help`` lists them.
COMMAND_MODULES: tuple[Callable[[Commands], None], ...] = (
    dev.add_commands,
    services.add_commands,
    dead_letters.add_commands,
    submit.add_commands,
    report_view.add_commands,
    reprocess.add_commands,
    recheck.add_commands,
    review.add_commands,
    demo.add_commands,
    status_view.add_commands,
    admin.add_commands,
    codec_server.add_commands,
)


def build_parser() -> argparse.ArgumentParser:
    """The command line: every command, with every setting as a flag."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        default=os.environ.get("DOCPIPE_LOG_LEVEL", "info"),
        help="debug, info, warning or error (DOCPIPE_LOG_LEVEL, default info)",
    )
    add_arguments(common)
    parser = argparse.ArgumentParser(
        prog="docpipe",
        description="Check PDFs uploaded to S3, driven by Kafka events, orchestrated by Temporal.",
        epilog="Every setting is a --section-field flag or a DOCPIPE_SECTION_FIELD variable; "
        "`docpipe config` lists them with their values.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands = Commands(subparsers, common)
    for add_commands in COMMAND_MODULES:
        add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``docpipe`` program: run a command, then exit deliberately.

    Every command has finished its own cleanup when it returns (offsets committed,
    servers stopped, producers flushed). Interpreter teardown can then abort or hang while
    the Temporal client's threads finish (sdk-python#300), so the process exits here.
    """
    code = run(argv)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command, return its exit code.

    A command that stops with a ``CommandError``, or with one of the ground's errors a
    person can act on (settings, the embedded stack, a server that does not answer),
    prints one line ``docpipe: <what>`` on stderr and returns its exit code.
    """
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(os.environ, args)
    except SettingsError as exc:
        return _say(CommandError(str(exc), exit_code=EXIT_USAGE))
    configure_logging(args.log_level, settings.telemetry.log_format)
    try:
        code: int = args.handler(args, settings)
    except CommandError as exc:
        return _say(exc)
    except (SettingsError, StackError) as exc:
        return _say(CommandError(str(exc), exit_code=EXIT_USAGE))
    except ServerUnreachableError as exc:
        return _say(CommandError(exc.one_line()))
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        return _say(CommandError(s3_unreachable(settings.s3, exc).one_line()))
    return code


def _say(failure: CommandError) -> int:
    """Print ``failure`` for the person who ran the command; return its exit code."""
    print(f"docpipe: {failure}", file=sys.stderr)
    return failure.exit_code
