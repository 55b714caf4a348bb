"""The ``docpipe`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from infra import settings as settings_module
from infra.settings import Settings, SettingsError, load_settings
from infra.stack import EmbeddedStack, StackConfig, StackError, exit_on_sigterm

log = logging.getLogger("docpipe")

DEFAULT_STATE_DIR = ".docpipe"


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Connection chatter from the clients drowns docpipe's own lines.
    for noisy in ("aiokafka", "botocore", "urllib3", "temporalio.activity"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _run_until_signal(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(stop)``; SIGTERM or SIGINT sets ``stop`` for a graceful exit."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    asyncio.run(runner())


def _stack_config(args: argparse.Namespace) -> StackConfig:
    return StackConfig(
        state_dir=Path(args.state_dir).resolve(),
        temporal_port=args.temporal_port,
        temporal_ui_port=args.ui_port,
        kafka_port=args.kafka_port,
        s3_port=args.s3_port,
        partitions=args.partitions,
    )


# -- commands -------------------------------------------------------------------------------


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    stack = EmbeddedStack(_stack_config(args), settings)
    with exit_on_sigterm():
        try:
            stack.start()
            live = stack.settings()
            print(f"Temporal      {live.temporal.address}  (namespace {live.temporal.namespace})")
            print(f"Temporal UI   {live.temporal.ui_url}")
            print(f"Kafka         {live.kafka.bootstrap_servers}")
            print(f"S3            {live.s3.endpoint_url}")
            print(f"State         {stack.config.state_dir}")
            print("Running; Ctrl-C stops every server.", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
        finally:
            stack.stop()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.worker import run_worker

    _run_until_signal(lambda stop: run_worker(settings, stop, pages_only=args.pages_only))
    return 0


def cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.intake import UploadIntake
    from infra.clients import s3_client, temporal_client

    async def main(stop: asyncio.Event) -> None:
        client = await temporal_client(settings.temporal)
        await UploadIntake(settings, client, s3_client(settings.s3)).run(stop)

    _run_until_signal(main)
    return 0


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from infra.submit import submit_files

    files = [Path(f) for f in args.files]
    for path in files:
        if not path.is_file():
            raise SystemExit(f"docpipe: no such file: {path}")
    submissions = asyncio.run(submit_files(settings, files, bucket=args.bucket, key=args.key))
    for submission in submissions:
        print(f"{submission.path}  ->  workflow {submission.document.workflow_id}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from infra.demo import run_demo

    return run_demo(settings, _stack_config(args), once=args.once, timeout_s=args.timeout)


def cmd_temporal_setup(args: argparse.Namespace, settings: Settings) -> int:
    from infra.clients import temporal_client
    from infra.temporal_setup import register_search_attributes

    async def main() -> list[str]:
        client = await temporal_client(settings.temporal)
        return await register_search_attributes(client, settings.temporal.namespace)

    added = asyncio.run(main())
    namespace = settings.temporal.namespace
    print(f"registered in {namespace}: {', '.join(added)}" if added else f"{namespace}: ready")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    for name, value in settings_module.describe(settings):
        print(f"{name}={value}")
    return 0


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=os.environ.get("DOCPIPE_LOG_LEVEL", "info"))
    settings_module.add_arguments(common)

    stack = argparse.ArgumentParser(add_help=False)
    group = stack.add_argument_group("embedded stack")
    group.add_argument(
        "--state-dir", default=os.environ.get("DOCPIPE_STATE_DIR", DEFAULT_STATE_DIR)
    )
    group.add_argument("--temporal-port", type=int, default=7233)
    group.add_argument("--ui-port", type=int, default=8233)
    group.add_argument("--kafka-port", type=int, default=9092)
    group.add_argument("--s3-port", type=int, default=4566)
    group.add_argument("--partitions", type=int, default=3, help="partitions per topic")

    parser = argparse.ArgumentParser(
        prog="docpipe",
        description="Check PDFs uploaded to S3, driven by Kafka events, orchestrated by Temporal.",
        epilog="Every setting is a --section-field flag or a DOCPIPE_SECTION_FIELD variable; "
        "`docpipe config` lists them with their values.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Any, help: str, *parents: argparse.ArgumentParser) -> Any:
        sub = commands.add_parser(name, help=help, description=help, parents=[common, *parents])
        sub.set_defaults(handler=handler)
        return sub

    add("dev", cmd_dev, "run the embedded stack until Ctrl-C", stack)
    worker = add("worker", cmd_worker, "run a Temporal worker (workflow, activities)")
    worker.add_argument(
        "--pages-only", action="store_true", help="poll only the page-checking task queue"
    )
    add("consume", cmd_consume, "consume upload events and start document checks")
    submit = add("submit", cmd_submit, "upload PDFs to S3 and publish their upload events")
    submit.add_argument("files", nargs="+", metavar="FILE")
    submit.add_argument("--bucket", help="documents bucket (default: the first allowed one)")
    submit.add_argument("--key", help="object key (one file only; default: the file name)")
    demo = add("demo", cmd_demo, "stack + worker + consumer; check the sample documents", stack)
    demo.add_argument("--once", action="store_true", help="exit when the samples are checked")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for checks")
    temporal = add("temporal", None, "Temporal namespace administration")
    temporal_commands = temporal.add_subparsers(dest="temporal_command", required=True)
    temporal_commands.add_parser(
        "setup", help="register docpipe's search attributes (safe to repeat)", parents=[common]
    ).set_defaults(handler=cmd_temporal_setup)
    add("config", cmd_config, "print the effective settings (secrets masked)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.log_level)
    try:
        settings = load_settings(os.environ, args)
        code: int = args.handler(args, settings)
    except (SettingsError, StackError) as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
