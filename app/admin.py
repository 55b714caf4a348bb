"""``docpipe temporal setup`` and ``docpipe config``: preparing and inspecting docpipe's ground."""

from __future__ import annotations

import argparse

from app.command import Commands
from app.command import with_temporal
from infra import settings_env
from infra.codec import describe_keyring
from infra.settings import Settings
from infra.temporal_setup import register_search_attributes


def add_commands(commands: Commands) -> None:
    """``docpipe temporal setup`` and ``docpipe config``."""
    temporal = commands.add("temporal", "Temporal namespace administration", None)
    commands.below(temporal, "temporal_command", required=True).add(
        "setup", "register docpipe's search attributes (safe to repeat)", _set_up_namespace
    )
    commands.add("config", "print the effective settings (secrets masked)", _print_settings)


def _set_up_namespace(args: argparse.Namespace, settings: Settings) -> int:
    """Register the search attributes in the namespace."""
    namespace = settings.temporal.namespace
    added = with_temporal(settings, lambda client: register_search_attributes(client, namespace))
    print(f"registered in {namespace}: {', '.join(added)}" if added else f"{namespace}: ready")
    return 0


def _print_settings(args: argparse.Namespace, settings: Settings) -> int:
    """The settings in force, secrets masked."""
    for name, value in settings_env.describe(settings):
        print(f"{name}={value}")
    print(f"# {describe_keyring(settings.codec)}")
    return 0
