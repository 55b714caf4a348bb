"""``docpipe dev``: the embedded stack alone; and the options ``dev`` and ``demo`` start it with."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

from app.command import Commands
from app.review_web import start_dev_review_page
from infra.processes import exit_on_sigterm
from infra.settings import Settings
from infra.stack import EmbeddedStack
from infra.stack import StackConfig

DEFAULT_STATE_DIR = ".docpipe"


# The stack's numeric options: flag, the StackConfig field it sets, and what it is for.
# Their defaults are StackConfig's, so that the command line and the fixtures agree.
_NUMBER_OPTIONS = (
    ("--temporal-port", "temporal_port", "Temporal's port"),
    ("--ui-port", "temporal_ui_port", "the Web UI's port"),
    ("--kafka-port", "kafka_port", "the broker's port"),
    ("--s3-port", "s3_port", "S3's port"),
    ("--codec-port", "codec_port", "codec server for the UI"),
    ("--review-port", "review_port", "the review page"),
    ("--partitions", "partitions", "partitions per topic"),
)


def stack_options() -> argparse.ArgumentParser:
    """The embedded stack's options, as a parent parser of the commands that start it."""
    stack = argparse.ArgumentParser(add_help=False)
    group = stack.add_argument_group("embedded stack")
    group.add_argument(
        "--state-dir",
        default=os.environ.get("DOCPIPE_STATE_DIR", DEFAULT_STATE_DIR),
        help=f"Temporal's database and the logs (DOCPIPE_STATE_DIR, default {DEFAULT_STATE_DIR})",
    )
    defaults = {field.name: field.default for field in dataclasses.fields(StackConfig)}
    for flag, field_name, purpose in _NUMBER_OPTIONS:
        default = defaults[field_name]
        group.add_argument(
            flag, dest=field_name, type=int, default=default, help=f"{purpose} ({default})"
        )
    return stack


def stack_config(args: argparse.Namespace) -> StackConfig:
    """The embedded stack that ``stack_options`` describe."""
    numbers = {field_name: getattr(args, field_name) for _, field_name, _ in _NUMBER_OPTIONS}
    return StackConfig(state_dir=Path(args.state_dir).resolve(), **numbers)


def add_commands(commands: Commands) -> None:
    """``docpipe dev``."""
    commands.add("dev", "run the embedded stack until Ctrl-C", _run_stack, stack_options())


def _run_stack(args: argparse.Namespace, settings: Settings) -> int:
    """The embedded stack alone, for running the parts by hand, until Ctrl-C."""
    stack = EmbeddedStack(stack_config(args), settings)
    review_page = None
    with exit_on_sigterm():
        try:
            stack.start()
            live = stack.settings()
            review_page = start_dev_review_page(stack, live)
            print(f"Temporal      {live.temporal.address}  (namespace {live.temporal.namespace})")
            print(f"Temporal UI   {live.temporal.ui_url}")
            print(f"Kafka         {live.kafka.bootstrap_servers}")
            print(f"S3            {live.s3.endpoint_url}")
            print(f"Codec server  {stack.codec_url or 'none: payloads in clear'}")
            print(
                f"Review page   {review_page.url}  (log in as {review_page.reviewer}: "
                f"{review_page.login_url})"
            )
            print(f"State         {stack.config.state_dir}")
            print("Running; Ctrl-C stops every server.", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
        finally:
            if review_page is not None:
                review_page.process.stop()
            stack.stop()
