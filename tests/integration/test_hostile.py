"""Hostile and broken inputs through the real stack: bounded, classified, no crash loop."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from infra.clients import s3_client
from infra.clients import temporal_client
from infra.processes import parser_pids
from infra.processes import pid_alive
from infra.settings import Settings
from pipeline.check.pool import PagePool
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.pdf.parser_process import ParserLimits
from tests.conftest import StartComponent
from tests.support import damaged
from tests.support import hostile
from tests.support import signing
from tests.support.checks import start_check
from tests.support.settings import with_pipeline

PAGE_TIMEOUT_S = 3.0

# builder, verdict, reasons, problem, page error types
_Case = tuple[Callable[[], bytes], str, list[str], str | None, list[str | None]]


def _signed_then(change: Callable[[bytes], bytes], verdict: str, reason: str) -> _Case:
    """A signed document changed after signing: every page still reads."""
    return (lambda: change(signing.signed()), verdict, [reason], None, [None] * signing.PAGES)


# name -> case
CASES: dict[str, _Case] = {
    # Repaired by qpdf: the pages whose objects survived are checked (counted in the bytes);
    # the last of them lost its content stream to the cut, and is blank.
    "truncated": (
        hostile.truncated,
        "review",
        ["repaired", "blank_pages"],
        None,
        [None] * damaged.complete_pages(hostile.truncated()),
    ),
    **{
        f"damaged-{name}": (build, "review", ["repaired"], None, [None] * damaged.PAGES)
        for name, build in damaged.DAMAGED.items()
    },
    "signature-broken": _signed_then(signing.flipped_from, "reject", "signature_broken"),
    "edited-after-signing": _signed_then(signing.edit_after, "review", "modified_after_signing"),
    # The page tree survives; the pages whose objects were garbled are page errors.
    "garbled-middle": (
        hostile.garbled_middle,
        "reject",
        ["unreadable"],
        None,
        [None] * 3 + ["PdfReadError"] * 5,
    ),
    "not-a-pdf": (hostile.not_a_pdf, "reject", ["not_pdf"], "not_pdf", []),
    "empty": (hostile.empty, "reject", ["not_pdf"], "not_pdf", []),
    "flate-bomb": (hostile.flate_bomb, "reject", ["unreadable"], None, ["limit"]),
    "many-operators": (hostile.many_operators, "reject", ["unreadable"], None, ["timeout"]),
    "nested-arrays": (hostile.nested_arrays, "reject", ["unreadable"], None, ["limit"]),
    "self-referencing-tree": (
        hostile.self_referencing_tree,
        "reject",
        ["unreadable"],
        "unreadable",
        [],
    ),
    "overstated-page-count": (hostile.overstated_page_count, "pass", [], None, [None, None]),
}


@pytest.fixture
def hostile_settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_pipeline(
        settings,
        tmp_path,
        pool_size=2,
        page_timeout_s=PAGE_TIMEOUT_S,
        inspect_timeout_s=20,
        parser_memory_mb=1024,
        max_stream_bytes=20_000_000,
    )


def _put(settings: Settings, key: str, body: bytes) -> DocumentRef:
    bucket = settings.s3.documents_buckets[0]
    put = s3_client(settings.s3).put_object(Bucket=bucket, Key=key, Body=body)
    return DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"])


def _report(settings: Settings, summary: CheckSummary) -> dict[str, Any]:
    body = s3_client(settings.s3).get_object(Bucket=summary.report_bucket, Key=summary.report_key)
    loaded: dict[str, Any] = json.loads(body["Body"].read())
    return loaded


def _page_errors(settings: Settings, report: dict[str, Any]) -> list[str | None]:
    s3 = s3_client(settings.s3)
    kinds: list[str | None] = []
    for key in report["pages"]["chunks"]:
        body = s3.get_object(Bucket=settings.s3.results_bucket, Key=key)["Body"].read()
        kinds.extend(json.loads(line)["error_type"] for line in body.splitlines())
    return kinds


async def _activity_attempts(handle: WorkflowHandle[Any, CheckSummary]) -> set[int]:
    history = await handle.fetch_history()
    return {
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    }


async def test_hostile_documents_are_classified_in_bounded_time(
    hostile_settings: Settings, start_component: StartComponent
) -> None:
    settings = hostile_settings
    worker = start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    handles = {
        name: await start_check(client, settings, _put(settings, f"hostile/{name}.pdf", build()))
        for name, (build, *_) in CASES.items()
    }
    for name, handle in handles.items():
        _, verdict, reasons, problem, page_errors = CASES[name]
        summary = await handle.result()
        report = _report(settings, summary)
        assert (summary.verdict, summary.reasons) == (verdict, reasons), name
        assert report["facts"]["problem"] == problem, name
        assert _page_errors(settings, report) == page_errors, name
    # Bounded: every activity of every check ended in its first attempt, none held past
    # its limits until the server gave it up, none lost with a crashed worker.
    for name, handle in handles.items():
        assert await _activity_attempts(handle) == {1}, name

    # The worker survived and still checks documents.
    good = await start_check(client, settings, _put(settings, "hostile/after.pdf", hostile.good()))
    assert (await good.result()).verdict == "pass"
    assert worker.alive
    # Nothing left behind: no spooled file, no parser process beyond the pool, and the
    # process replaced after the timeout is gone.
    assert os.listdir(settings.pipeline.spool_dir) == []
    warm = re.search(r"parser processes \(pids ([\d, ]+)\)", worker.log_path.read_text())
    assert warm is not None
    first_pids = {int(pid) for pid in warm[1].split(", ")}
    current = parser_pids(worker.pid)
    assert len(current) <= 2
    assert [p for p in first_pids - current if pid_alive(p)] == []
    assert first_pids != current, "the timed-out page's process was replaced"


async def test_memory_limit_turns_a_bomb_into_a_page_error(tmp_path: Path) -> None:
    # pypdf's own stream limit lifted: the process memory limit is what stops it.
    pool = PagePool(1, ParserLimits(memory_mb=400, max_stream_bytes=2_000_000_000))
    path = tmp_path / "bomb.pdf"
    path.write_bytes(hostile.flate_bomb(600))
    try:
        facts = await pool.inspect(path)
        assert facts.problem is None and facts.page_count == 1
        (result,) = await pool.check_range(path, 1, 1)
        assert result["error_type"] == "memory"
        (again,) = await pool.check_range(path, 1, 1)
        assert again["error_type"] == "memory", "the process survives its MemoryError"
    finally:
        pool.shutdown()
