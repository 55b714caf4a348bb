"""The ``docpipe`` command line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn

from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

from app import codec_server
from infra import settings as settings_module
from infra.clients import ServerUnreachableError, s3_unreachable
from infra.settings import Settings, SettingsError, load_settings
from infra.stack import EmbeddedStack, StackConfig, StackError, exit_on_sigterm
from pipeline.search_attributes import CHECKING, FAILED, PASSED, REJECTED, REVIEW

STATUSES = (CHECKING, PASSED, REVIEW, REJECTED, FAILED)

log = logging.getLogger("docpipe")

DEFAULT_STATE_DIR = ".docpipe"


def _configure_logging(level: str, log_format: str = "text") -> None:
    from infra.logs import configure_logging

    configure_logging(level, log_format)


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
        codec_port=args.codec_port,
        partitions=args.partitions,
    )


# -- commands -------------------------------------------------------------------------------


def cmd_dev(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe dev``: the embedded stack alone, for running the parts by hand."""
    stack = EmbeddedStack(_stack_config(args), settings)
    with exit_on_sigterm():
        try:
            stack.start()
            live = stack.settings()
            print(f"Temporal      {live.temporal.address}  (namespace {live.temporal.namespace})")
            print(f"Temporal UI   {live.temporal.ui_url}")
            print(f"Kafka         {live.kafka.bootstrap_servers}")
            print(f"S3            {live.s3.endpoint_url}")
            print(f"Codec server  {stack.codec_url or 'none: payloads in clear'}")
            print(f"State         {stack.config.state_dir}")
            print("Running; Ctrl-C stops every server.", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
        finally:
            stack.stop()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe worker``: a worker process until SIGTERM or Ctrl-C."""
    from infra.telemetry import start_telemetry
    from workers.worker import WorkerStoppedError, run_worker

    telemetry = start_telemetry(settings.telemetry, "worker")
    try:
        _run_until_signal(
            lambda stop: run_worker(settings, stop, role=args.role, telemetry=telemetry)
        )
    except WorkerStoppedError as exc:
        log.error("%s", exc)
        return 1
    finally:
        telemetry.close()
    return 0


def cmd_consume(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe consume``: the Kafka intake until SIGTERM or Ctrl-C."""
    from consumers.intake import run_intake
    from infra.telemetry import start_telemetry

    telemetry = start_telemetry(settings.telemetry, "consume")
    try:
        _run_until_signal(lambda stop: run_intake(settings, stop, telemetry=telemetry))
    finally:
        telemetry.close()
    return 0


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe dlq list``: dead letters by reason, and the latest ones."""
    from app.dead_letters import (
        DeadLetterReadError,
        format_summary,
        summarize_dead_letters,
    )

    try:
        summary = asyncio.run(summarize_dead_letters(settings.kafka, examples=args.examples))
    except DeadLetterReadError as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 1
    print(format_summary(summary, settings.kafka.dlq_topic))
    return 0


def cmd_dlq_replay(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe dlq replay``: publish dead letters again to the uploads topic."""
    from app.dead_letters import DeadLetterReadError, replay_dead_letters

    try:
        replayed = asyncio.run(
            replay_dead_letters(settings.kafka, reason=args.reason, limit=args.limit)
        )
    except DeadLetterReadError as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 1
    print(f"replayed {len(replayed)} dead letter(s) to {settings.kafka.uploads_topic}")
    return 0


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe submit``: act as an upstream system for some files."""
    from app.submit import SubmitError, submit_files

    files = [Path(f) for f in args.files]
    for path in files:
        if not path.is_file():
            raise SystemExit(f"docpipe: no such file: {path}")
    try:
        submissions = asyncio.run(submit_files(settings, files, bucket=args.bucket, key=args.key))
    except SubmitError as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 1
    for submission in submissions:
        print(f"{submission.path}  ->  workflow {submission.document.workflow_id}")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe report``: a check's report, for a person or as JSON."""
    from app.lookups import CheckNotFoundError, looks_like_workflow_id
    from app.report_view import (
        locate_report,
        read_report,
        render_report,
    )
    from infra.clients import s3_client, temporal_client

    async def main() -> tuple[Any, dict[str, Any]]:
        # A document ID's report is found without Temporal.
        client = None
        if looks_like_workflow_id(args.check):
            client = await temporal_client(settings.temporal, settings.codec)
        location = await locate_report(settings, client, args.check)
        return location, await asyncio.to_thread(read_report, s3_client(settings.s3), location)

    try:
        location, report = asyncio.run(main())
    except CheckNotFoundError as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False))
    else:
        print(render_report(report, location))
    return 0


def cmd_reprocess(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe reprocess``: check a document version again, on purpose."""
    from app.lookups import CheckNotFoundError, workflow_url
    from app.reprocess import resolve, start_recheck
    from infra.clients import s3_client, temporal_client
    from pipeline.models import REPORT_NAME, CheckSummary

    async def main() -> None:
        client = await temporal_client(settings.temporal, settings.codec)
        s3 = s3_client(settings.s3)
        recheck = await start_recheck(
            settings, client, s3, await resolve(settings, client, s3, args.check)
        )
        request = recheck.request
        print(f"re-check {recheck.number} of {request.document.document_id}")
        print(f"  workflow  {recheck.workflow_id}")
        print(f"  report    s3://{request.results_bucket}/{request.results_prefix}/{REPORT_NAME}")
        print(f"  UI        {workflow_url(settings, recheck.workflow_id)}", flush=True)
        if args.wait:
            handle = client.get_workflow_handle(recheck.workflow_id, result_type=CheckSummary)
            summary = await handle.result()
            print(f"verdict   {summary.verdict}  {', '.join(summary.reasons) or '-'}")

    try:
        asyncio.run(main())
    except CheckNotFoundError as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_recheck(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe recheck``: re-check every document a selection matches, durably."""
    from app.lookups import workflow_url
    from app.recheck import (
        RecheckError,
        RecheckOptions,
        new_recheck_id,
        parse_prefix,
        parse_priority,
        parse_rate,
        read_diff,
        recheck_request,
        start_bulk_recheck,
    )
    from app.status_view import parse_since
    from infra.clients import s3_client, temporal_client
    from pipeline.recheck.models import RecheckSelection, diff_key, recheck_run_id, render_diff

    if bool(args.prefix) == bool(args.query or args.reason):
        print(
            "docpipe: recheck needs --prefix, or --query and/or --reason (not both kinds)",
            file=sys.stderr,
        )
        return 2
    try:
        since = parse_since(args.since) if args.since else None
        if args.since and args.prefix:
            raise ValueError(
                "--since selects checks by start time: use it with --query or --reason"
            )
        if args.prefix:
            bucket, prefix = parse_prefix(args.prefix)
            selection = RecheckSelection(bucket=bucket, prefix=prefix)
        else:
            from app.recheck import selection_query

            selection = RecheckSelection(
                query=selection_query(
                    query=args.query,
                    reason=args.reason,
                    since=since,
                    hash_keys=settings.temporal.hash_object_keys,
                )
            )
        options = RecheckOptions(
            recheck_id=args.id or new_recheck_id(),
            selection=selection,
            priority_key=parse_priority(settings, args.priority),
            rate_per_s=parse_rate(args.rate),
            max_concurrent=args.concurrency,
            page_size=args.page_size,
            max_listed=args.max_listed,
        )
        request = recheck_request(settings, options)
    except (ValueError, RecheckError) as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 2

    async def main() -> Any:
        client = await temporal_client(settings.temporal, settings.codec)
        handle, started = await start_bulk_recheck(settings, client, request)
        workflow_id = recheck_run_id(request.recheck_id)
        print(f"re-check {request.recheck_id}" + ("" if started else " (already running)"))
        print(f"  selects   {request.selection.describe()}")
        print(f"  workflow  {workflow_id}")
        diff_at = diff_key(request.results_root, request.recheck_id)
        print(f"  diff      s3://{request.results_bucket}/{diff_at}")
        print(f"  UI        {workflow_url(settings, workflow_id)}")
        print(f"  progress  docpipe recheck show {request.recheck_id}", flush=True)
        if args.wait:
            await handle.result()
            return read_diff(settings, s3_client(settings.s3), request.recheck_id)
        return None

    diff = asyncio.run(main())
    if diff is not None:
        print(json.dumps(diff, indent=2, sort_keys=True) if args.json else "\n" + render_diff(diff))
    return 0


def cmd_recheck_show(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe recheck show``: the diff of a finished bulk re-check, or its progress."""
    from app.recheck import RecheckError, read_diff, recheck_progress, render_progress
    from infra.clients import s3_client, temporal_client
    from pipeline.recheck.models import render_diff

    async def main() -> dict[str, Any] | None:
        client = await temporal_client(settings.temporal, settings.codec)
        try:
            return await recheck_progress(client, args.recheck_id)
        except RecheckError:
            return None  # gone from Temporal (retention): its diff may still be in S3

    progress = asyncio.run(main())
    # A run in progress is shown as such, even when an earlier run of the ID left a diff.
    diff = None
    if progress is None or progress["state"] != "running":
        diff = read_diff(settings, s3_client(settings.s3), args.recheck_id)
    if diff is not None:
        print(json.dumps(diff, indent=2, sort_keys=True) if args.json else render_diff(diff))
        return 0
    if progress is None:
        print(f"docpipe: no re-check {args.recheck_id}", file=sys.stderr)
        return 1
    print(json.dumps(progress, indent=2) if args.json else render_progress(progress))
    return 0


def cmd_recheck_cancel(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe recheck cancel``: stop a bulk re-check and the re-checks it runs."""
    from infra.clients import temporal_client
    from pipeline.recheck.models import recheck_run_id

    async def main() -> None:
        client = await temporal_client(settings.temporal, settings.codec)
        await client.get_workflow_handle(recheck_run_id(args.recheck_id)).cancel()

    asyncio.run(main())
    print(f"cancel requested: re-check {args.recheck_id}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe status``: where one check is."""
    from app.lookups import CheckNotFoundError
    from app.status_view import check_status, render_status
    from infra.clients import temporal_client

    async def main() -> Any:
        client = await temporal_client(settings.temporal, settings.codec)
        return await check_status(settings, client, args.check)

    try:
        status = asyncio.run(main())
    except CheckNotFoundError as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(dataclasses.asdict(status), indent=2, ensure_ascii=False))
    else:
        print(render_status(status))
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe list``: the checks a filter selects."""
    from app.status_view import list_checks, list_query, parse_since, render_list
    from infra.clients import temporal_client

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError:
        print(f"docpipe: --since {args.since!r}: give 30m, 2h, 7d or an ISO time", file=sys.stderr)
        return 2
    query = list_query(
        status=args.status,
        bucket=args.bucket,
        since=since,
        key=args.key,
        hash_keys=settings.temporal.hash_object_keys,
    )

    async def main() -> Any:
        client = await temporal_client(settings.temporal, settings.codec)
        return await list_checks(client, query, limit=args.limit)

    rows = asyncio.run(main())
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in rows], default=str, ensure_ascii=False))
    else:
        print(render_list(rows))
        print(f"query: {query}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe demo``: the whole pipeline on the samples, from one command."""
    from app.demo import run_demo

    return run_demo(settings, _stack_config(args), once=args.once, timeout_s=args.timeout)


def cmd_temporal_setup(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe temporal setup``: register the search attributes in a namespace."""
    from infra.clients import temporal_client
    from infra.temporal_setup import register_search_attributes

    async def main() -> list[str]:
        client = await temporal_client(settings.temporal, settings.codec)
        return await register_search_attributes(client, settings.temporal.namespace)

    added = asyncio.run(main())
    namespace = settings.temporal.namespace
    print(f"registered in {namespace}: {', '.join(added)}" if added else f"{namespace}: ready")
    return 0


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    """``docpipe config``: the settings in force, secrets masked."""
    from infra.codec import describe_keyring

    for name, value in settings_module.describe(settings):
        print(f"{name}={value}")
    print(f"# {describe_keyring(settings.codec)}")
    return 0


# -- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line: every command, with every setting as a flag."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        default=os.environ.get("DOCPIPE_LOG_LEVEL", "info"),
        help="debug, info, warning or error (DOCPIPE_LOG_LEVEL, default info)",
    )
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
    group.add_argument("--codec-port", type=int, default=8235, help="codec server for the UI")
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
        "--role",
        choices=["all", "pages", "workflows"],
        default="all",
        help="poll every queue (default), only page checks, or all but page checks",
    )
    add("consume", cmd_consume, "consume upload events and start document checks")
    dlq = add("dlq", None, "the dead-letter topic: list and replay refused upload events")
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_commands.add_parser(
        "list", help="counts by reason and recent examples (no contents)", parents=[common]
    )
    dlq_list.set_defaults(handler=cmd_dlq_list)
    dlq_list.add_argument("--examples", type=int, default=5, help="recent ones to show")
    dlq_replay = dlq_commands.add_parser(
        "replay",
        help="publish dead letters' original bytes to the uploads topic again; they are "
        "validated again, and replaying one twice is harmless (starts are idempotent)",
        parents=[common],
    )
    dlq_replay.set_defaults(handler=cmd_dlq_replay)
    dlq_replay.add_argument("--reason", help="only dead letters with this reason code")
    dlq_replay.add_argument("--limit", type=int, help="at most this many, oldest first")
    submit = add("submit", cmd_submit, "upload PDFs to S3 and publish their upload events")
    submit.add_argument("files", nargs="+", metavar="FILE")
    submit.add_argument("--bucket", help="documents bucket (default: the first allowed one)")
    submit.add_argument("--key", help="object key (one file only; default: the file name)")
    report = add("report", cmd_report, "print a check's report: verdict, then pages to look at")
    report.add_argument("check", metavar="ID", help="workflow ID or document ID (bucket/key@v)")
    report.add_argument("--json", action="store_true", help="print report.json as it is")
    reprocess = add("reprocess", cmd_reprocess, "check a document version again, as a new workflow")
    reprocess.add_argument("check", metavar="ID", help="workflow ID or document ID (bucket/key@v)")
    reprocess.add_argument("--wait", action="store_true", help="wait for the verdict")
    recheck = add(
        "recheck",
        cmd_recheck,
        "re-check every document a selection matches (after a policy change, a fix or a "
        "worker bug), as a durable workflow; then show what changed",
    )
    recheck.epilog = (
        "Give --prefix, or --query and/or --reason. Each document is re-checked as "
        "`docpipe reprocess` would, with its report under <its results prefix>/rechecks/<ID>/; "
        "running the same --id again re-checks nothing twice. When done, the diff report "
        "(verdict transitions, reasons added and removed, changed documents, policies) is "
        "written to <results bucket>/<results prefix>/_rechecks/<ID>/diff.json; "
        "`docpipe recheck show ID` prints it."
    )
    selection = recheck.add_argument_group(
        "which documents: --prefix, or --query and/or --reason (with --since)"
    )
    selection.add_argument(
        "--query",
        metavar="Q",
        help="a Temporal visibility query over docpipe's checks, e.g. \"DocpipeStatus = "
        "'review'\" (re-checks themselves never match)",
    )
    selection.add_argument(
        "--prefix",
        metavar="S3URL",
        help="every object under s3://bucket/prefix/ (its current version) in a documents bucket",
    )
    selection.add_argument(
        "--reason", metavar="R", help="checks whose verdict gave reason R (DocpipeReasons)"
    )
    selection.add_argument(
        "--since",
        metavar="T",
        help="with --query or --reason: only checks started since T (30m, 2h, 7d or an ISO time)",
    )
    recheck.add_argument(
        "--id",
        metavar="ID",
        help="recheck ID (lower-case letter, then letters, digits, dashes); default "
        "rc-<UTC time>-<random>. The same ID never re-checks a document twice",
    )
    recheck.add_argument(
        "--rate", default="5/s", metavar="N/s", help="re-checks started per second at most (5/s)"
    )
    recheck.add_argument(
        "--concurrency",
        type=int,
        default=10,
        metavar="N",
        help="re-checks running at once at most (10)",
    )
    recheck.add_argument(
        "--priority",
        default="low",
        metavar="P",
        help="low (DOCPIPE_TEMPORAL_RECHECK_PRIORITY, default: live uploads go first), high "
        "(the intake's) or a number 1-5",
    )
    recheck.add_argument(
        "--page-size",
        type=int,
        default=100,
        metavar="N",
        help="matches per page, one workflow run each (100)",
    )
    recheck.add_argument(
        "--max-listed",
        type=int,
        default=100,
        metavar="N",
        help="changed documents listed in the diff at most; its counts are exact (100)",
    )
    recheck.add_argument("--wait", action="store_true", help="wait until done, then print the diff")
    recheck.add_argument("--json", action="store_true", help="with --wait: print the diff as JSON")
    recheck_commands = recheck.add_subparsers(dest="recheck_command", metavar="show|cancel")
    show = recheck_commands.add_parser(
        "show", help="print a bulk re-check's diff, or its progress while it runs", parents=[common]
    )
    show.set_defaults(handler=cmd_recheck_show)
    show.add_argument("recheck_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="print it as JSON")
    cancel = recheck_commands.add_parser(
        "cancel", help="cancel a bulk re-check and the re-checks it is running", parents=[common]
    )
    cancel.set_defaults(handler=cmd_recheck_cancel)
    cancel.add_argument("recheck_id", metavar="ID")
    demo = add("demo", cmd_demo, "stack + worker + consumer; check the sample documents", stack)
    demo.add_argument("--once", action="store_true", help="exit when the samples are checked")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for checks")
    temporal = add("temporal", None, "Temporal namespace administration")
    temporal_commands = temporal.add_subparsers(dest="temporal_command", required=True)
    temporal_commands.add_parser(
        "setup", help="register docpipe's search attributes (safe to repeat)", parents=[common]
    ).set_defaults(handler=cmd_temporal_setup)
    status = add("status", cmd_status, "where a check is: live progress, or verdict and report")
    status.add_argument("check", metavar="ID", help="workflow ID or document ID (bucket/key@v)")
    status.add_argument("--json", action="store_true", help="print it as JSON")
    listing = add("list", cmd_list, "list checks by status, bucket, key and start time")
    listing.add_argument("--status", choices=STATUSES, help="only checks in this status")
    listing.add_argument("--bucket", help="only documents of this bucket")
    listing.add_argument("--key", help="only this object key (hashed if keys are hashed)")
    listing.add_argument("--since", metavar="T", help="started since: 30m, 2h, 7d or ISO time")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (newest)")
    listing.add_argument("--json", action="store_true", help="print them as JSON")
    add("config", cmd_config, "print the effective settings (secrets masked)")
    codec_server.add_parser(commands, common)
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
    """Parse ``argv``, run the command, return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(os.environ, args)
    except SettingsError as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 2
    _configure_logging(args.log_level, settings.telemetry.log_format)
    try:
        code: int = args.handler(args, settings)
    except (SettingsError, StackError) as exc:
        print(f"docpipe: {exc}", file=sys.stderr)
        return 2
    except ServerUnreachableError as exc:
        print(f"docpipe: {exc.one_line()}", file=sys.stderr)
        return 1
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        print(f"docpipe: {s3_unreachable(settings.s3, exc).one_line()}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
