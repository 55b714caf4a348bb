"""``docpipe dev``: the embedded stack alone; and the options ``dev`` and ``demo`` start it with."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from app.command import Commands
from app.review_web import start_dev_review_page
from infra.processes import exit_on_sigterm
from infra.settings import Settings
from infra.stack import EmbeddedStack, StackConfig

DEFAULT_STATE_DIR = ".docpipe"


def stack_options() -> argparse.ArgumentParser:
    """The embedded stack's options, as a parent parser of the commands that start it."""
    stack = argparse.ArgumentParser(add_help=False)
    group = stack.add_argument_group("embedded stack")
    group.add_argument(
        "--state-dir",
        default=os.environ.get("DOCPIPE_STATE_DIR", DEFAULT_STATE_DIR),
        help=f"Temporal's database and the logs (DOCPIPE_STATE_DIR, default {DEFAULT_STATE_DIR})",
    )
    group.add_argument("--temporal-port", type=int, default=7233, help="Temporal's port (7233)")
    group.add_argument("--ui-port", type=int, default=8233, help="the Web UI's port (8233)")
    group.add_argument("--kafka-port", type=int, default=9092, help="the broker's port (9092)")
    group.add_argument("--s3-port", type=int, default=4566, help="S3's port (4566)")
    group.add_argument(
        "--codec-port", type=int, default=8235, help="codec server for the UI (8235)"
    )
    group.add_argument(
        "--review-port", type=int, default=8236, help="the review page's port (8236)"
    )
    group.add_argument("--partitions", type=int, default=3, help="partitions per topic")
    return stack


def stack_config(args: argparse.Namespace) -> StackConfig:
    """The embedded stack that ``stack_options`` describe."""
    return StackConfig(
        state_dir=Path(args.state_dir).resolve(),
        temporal_port=args.temporal_port,
        temporal_ui_port=args.ui_port,
        kafka_port=args.kafka_port,
        s3_port=args.s3_port,
        codec_port=args.codec_port,
        review_port=args.review_port,
        partitions=args.partitions,
    )


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
