"""The README documents every setting and command a user can reach."""

from __future__ import annotations

from pathlib import Path

from app.cli import build_parser
from infra.settings_env import setting_names

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    missing = [env for env, _, _, _ in setting_names() if f"`{env}`" not in README]
    assert missing == []


def test_every_command_is_documented() -> None:
    import argparse

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [name for name in commands.choices if f"`docpipe {name}" not in README]
    assert missing == []
