"""The ``docpipe`` command line: every command is there, documented, and fails on one line."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError

from app import cli
from app.command import CommandError
from app.command import Commands
from infra.clients import ServerUnreachableError
from infra.settings import Settings
from infra.settings import SettingsError
from infra.stack_errors import StackError

COMMANDS = (
    "dev",
    "worker",
    "consume",
    "dlq",
    "submit",
    "report",
    "reprocess",
    "recheck",
    "review",
    "demo",
    "status",
    "list",
    "temporal",
    "config",
    "codec-server",
)
SUB_COMMANDS = {
    "dlq": ("list", "replay"),
    "recheck": ("show", "cancel"),
    "review": ("list", "show", "approve", "reject", "serve"),
    "temporal": ("setup",),
}


@pytest.fixture(autouse=True)
def _logging_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    # ``run`` configures the process's logging; here that process is pytest's.
    monkeypatch.setattr(cli, "configure_logging", lambda level, log_format: None)


def _with_command(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Add ``docpipe fail``, which raises ``error``."""

    def fail(args: argparse.Namespace, settings: Settings) -> int:
        raise error

    def add_commands(commands: Commands) -> None:
        commands.add("fail", "raise an error", fail)

    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, add_commands))


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every command's parser below it."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_a_command_error_is_one_line_on_stderr_with_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_command(monkeypatch, CommandError("the answer is no", exit_code=3))
    assert cli.run(["fail"]) == 3
    captured = capsys.readouterr()
    assert captured.err == "docpipe: the answer is no\n"
    assert captured.out == ""


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        pytest.param(SettingsError("DOCPIPE_X: no"), 2, "DOCPIPE_X: no", id="settings"),
        pytest.param(StackError("port 7233 is taken"), 2, "port 7233 is taken", id="stack"),
        pytest.param(
            ServerUnreachableError("Temporal", "127.0.0.1:1", "DOCPIPE_T", False, "refused"),
            1,
            "cannot reach Temporal at 127.0.0.1:1 (set by DOCPIPE_T)",
            id="server",
        ),
        pytest.param(
            EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
            1,
            "cannot reach S3 at http://127.0.0.1:1 (set by DOCPIPE_S3_ENDPOINT_URL)",
            id="s3",
        ),
    ],
)
def test_the_grounds_errors_are_one_line_with_their_exit_code(
    error: Exception,
    code: int,
    line: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _with_command(monkeypatch, error)
    assert cli.run(["fail", "--s3-endpoint-url", "http://127.0.0.1:1"]) == code
    assert capsys.readouterr().err == f"docpipe: {line}\n"


def test_an_unreadable_setting_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.run(["config", "--kafka-max-in-flight", "many"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("docpipe: DOCPIPE_KAFKA_MAX_IN_FLIGHT") and err.count("\n") == 1


def test_commands_say_what_is_wrong_with_their_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.pdf"
    assert cli.run(["submit", str(missing)]) == 1
    assert capsys.readouterr().err == f"docpipe: no such file: {missing}\n"
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.4\n")
    (tmp_path / "b.pdf").write_bytes(b"%PDF-1.4\n")
    files = [str(tmp_path / "a.pdf"), str(tmp_path / "b.pdf")]
    assert cli.run(["submit", *files, "--key", "in/a.pdf"]) == 2
    assert capsys.readouterr().err.startswith("docpipe: --key names one object")
    assert cli.run(["list", "--since", "soon"]) == 2
    assert capsys.readouterr().err == "docpipe: --since 'soon': give 30m, 2h, 7d or an ISO time\n"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        cli.run(["--help"])
    assert done.value.code == 0
    # A command's line: its name indented by four spaces (its help's next lines, by more).
    listed = re.findall(r"^    (\S+)", capsys.readouterr().out, re.MULTILINE)
    assert listed == list(COMMANDS)
    for command, below in SUB_COMMANDS.items():
        with pytest.raises(SystemExit):
            cli.run([command, "--help"])
        assert re.findall(r"^    (\S+)", capsys.readouterr().out, re.MULTILINE) == list(below)


def test_every_option_of_every_command_has_help() -> None:
    undocumented = [
        (parser.prog, action.option_strings)
        for parser in _parsers(cli.build_parser())
        for action in parser._actions
        if action.option_strings and not action.help
    ]
    assert undocumented == []
