"""Record the workflow histories that ``tests/pipeline/test_replay.py`` replays.

Each scenario runs for real on an embedded stack of its own (Temporal dev server, broker,
moto S3) with real worker processes, and its history is saved as JSON under
``tests/histories/``. Replaying them against the current workflow code proves that a change
to it can still run the workflows that were running when it is deployed.

Re-record (``make histories``) only when a scenario's shape changes on purpose, and then
only after making the change replay-safe for the old histories too (``workflow.patched``,
see docs/ARCHITECTURE.md): a new recording alone would hide the very break the replay test
exists to catch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.client import WorkflowHandle

from app.recheck import RecheckOptions
from app.recheck import recheck_request
from app.recheck import start_bulk_recheck
from app.reprocess import resolve
from app.reprocess import start_recheck
from app.review_queue import decide
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.processes import ManagedProcess
from infra.processes import docpipe_process
from infra.processes import stop_all
from infra.settings import CodecSettings
from infra.settings import PipelineSettings
from infra.settings import Settings
from infra.settings_env import to_env
from infra.stack import EmbeddedStack
from infra.stack import StackConfig
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from pipeline.models import recheck_workflow_id
from pipeline.recheck.models import RecheckResult
from pipeline.recheck.models import RecheckSelection
from pipeline.review import SUPERSEDED_SIGNAL
from pipeline.review import ReviewAction
from pipeline.review import ReviewDecision
from pipeline.review import Superseded
from tests.support.checks import start_check
from tests.support.pdfs import make_large_pdf
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.review_checks import awaiting

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
# A key for recordings only, committed on purpose: histories are recorded encrypted, as
# production runs, and replayed with it. Never use it anywhere else.
TEST_KEYRING = HISTORIES / "TEST-ONLY-codec-keyring"
Scenario = Callable[["Recorder"], Awaitable[WorkflowHandle[Any, CheckSummary]]]


class Recorder:
    """One scenario's world: the stack's settings, its workers, a Temporal client."""

    def __init__(self, stack: EmbeddedStack, work: Path, name: str) -> None:
        base = stack.settings()
        self.settings = dataclasses.replace(
            base,
            temporal=dataclasses.replace(base.temporal, task_queue=f"record-{name}"),
            s3=dataclasses.replace(base.s3, results_prefix=f"record-{name}"),
            # Crashes are noticed in 2 s instead of 30: the history's shape is the same.
            pipeline=PipelineSettings(heartbeat_timeout_s=2.0, heartbeat_throttle_s=1.0),
        )
        self.work = work
        self.name = name
        self.started: list[ManagedProcess] = []
        self.client: Client | None = None

    def worker(self, *args: str, settings: Settings | None = None) -> ManagedProcess:
        process = docpipe_process(
            ["worker", *args],
            settings_env=to_env(settings or self.settings),
            log_path=self.work / f"{self.name}-worker-{len(self.started)}.log",
            base_env=os.environ,
        )
        self.started.append(process)
        return process

    def upload(self, pages: int) -> DocumentRef:
        path = self.work / f"{self.name}-{pages}.pdf"
        make_large_pdf(pages, path=path)
        return self.upload_bytes(path.name, path.read_bytes())

    def upload_bytes(self, name: str, body: bytes) -> DocumentRef:
        bucket = self.settings.s3.documents_buckets[0]
        key = f"{self.name}/{name}"
        put = s3_client(self.settings.s3).put_object(Bucket=bucket, Key=key, Body=body)
        return DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"])

    async def start(self, document: DocumentRef, **fields: Any) -> WorkflowHandle[Any, Any]:
        assert self.client is not None
        return await start_check(self.client, self.settings, document, **fields)

    def chunks(self, document: DocumentRef) -> int:
        prefix = document.results_prefix(self.settings.s3.results_prefix)
        listed = s3_client(self.settings.s3).list_objects_v2(
            Bucket=self.settings.s3.results_bucket, Prefix=f"{prefix}/pages/"
        )
        return int(listed.get("KeyCount", 0))


def _wait(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {seconds:.0f} s")
        time.sleep(0.05)


async def small_document(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """A document of one chunk: check_document reports it, then publish."""
    rec.worker()
    handle = await rec.start(rec.upload(3))
    await handle.result()
    return handle


async def plain_pass(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """A check that runs through: check_document (inspects), check pages, finalize,
    publish."""
    rec.worker()
    handle = await rec.start(rec.upload(60))
    await handle.result()
    return handle


async def crash_and_resume(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """The page check's worker SIGKILLed twice; the third attempt finishes."""
    document = rec.upload(6000)
    handle = await rec.start(document)
    for _ in range(2):
        worker = rec.worker()
        target = rec.chunks(document) + 3
        _wait(lambda: rec.chunks(document) >= target, 120, "new chunks")  # noqa: B023
        os.kill(worker.pid, signal.SIGKILL)
        worker.process.wait(timeout=30)
    rec.worker()
    await handle.result()
    return handle


async def object_missing(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """The object version is deleted after its inspection (check_document) and before its
    page check, which finds it gone; the check ends with a report saying so."""
    document = rec.upload(200)
    rec.worker("--role", "workflows")
    handle = await rec.start(document)

    async def inspected() -> bool:
        history = await handle.fetch_history()
        return any(e.HasField("activity_task_completed_event_attributes") for e in history.events)

    await async_wait_for(inspected, 120, "the inspection")
    assert document.version_id is not None
    s3_client(rec.settings.s3).delete_object(
        Bucket=document.bucket, Key=document.key, VersionId=document.version_id
    )
    rec.worker("--role", "pages")
    await handle.result()
    return handle


async def _ended_in_failure(
    handle: WorkflowHandle[Any, CheckSummary], meant_to: str
) -> WorkflowHandle[Any, CheckSummary]:
    """Wait for a check meant not to return a summary; its handle once it has ended so."""
    try:
        await handle.result()
    except Exception:
        return handle
    raise AssertionError(f"the check was meant to {meant_to}")


async def retries_exhausted(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """S3 cannot be reached by the worker: inspect fails twice and the check fails."""
    closed = dataclasses.replace(
        rec.settings, s3=dataclasses.replace(rec.settings.s3, endpoint_url="http://127.0.0.1:9")
    )
    rec.worker(settings=closed)
    handle = await rec.start(rec.upload(10), max_attempts=2)
    return await _ended_in_failure(handle, "fail")


async def cancelled(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """A check cancelled while its pages are checked."""
    document = rec.upload(6000)
    rec.worker()
    handle = await rec.start(document)
    _wait(lambda: rec.chunks(document) > 2, 120, "chunks")
    await handle.cancel()
    return await _ended_in_failure(handle, "be cancelled")


async def recheck(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """A finished check checked again on purpose (``docpipe reprocess``)."""
    assert rec.client is not None
    rec.worker()
    first = await rec.start(rec.upload(30))
    await first.result()
    s3 = s3_client(rec.settings.s3)
    original = await resolve(rec.settings, rec.client, s3, first.id)
    again = await start_recheck(rec.settings, rec.client, s3, original)
    handle = rec.client.get_workflow_handle(again.workflow_id, result_type=CheckSummary)
    await handle.result()
    return handle


async def bulk_recheck(rec: Recorder) -> WorkflowHandle[Any, Any]:
    """A bulk re-check (``docpipe recheck --prefix``) of three documents, one of them
    checked before: list, three re-checks as children, compare, the diff."""
    assert rec.client is not None
    rec.worker()
    documents = [rec.upload(pages) for pages in (3, 4, 5)]
    await (await rec.start(documents[0])).result()
    options = RecheckOptions(
        recheck_id="rc-history",
        selection=RecheckSelection(bucket=documents[0].bucket, prefix=f"{rec.name}/"),
        priority_key=rec.settings.temporal.recheck_priority,
        rate_per_s=2.0,
        max_concurrent=2,
    )
    request = recheck_request(rec.settings, options)
    handle, _ = await start_bulk_recheck(rec.settings, rec.client, request)
    await handle.result()
    return handle


async def _approve(rec: Recorder, handle: WorkflowHandle[Any, CheckSummary]) -> None:
    """A reviewer's approval of the waiting check, once it is taken and the check ends."""
    assert rec.client is not None
    decision = ReviewDecision(
        decision_id="history-approval",
        action=ReviewAction.APPROVE,
        reviewer="recorder",
        note="the blank page separates two letters",
        pages_viewed=[2],
    )
    await decide(rec.client, handle.id, decision)
    await handle.result()


async def review_approved(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """A small document with a blank page: reported ``review``, it waits for a reviewer's
    decision, which approves it (decision.json, the review event)."""
    rec.worker()
    handle = await rec.start(rec.upload_bytes("separator.pdf", make_pdf(["text", "blank"])))
    await awaiting(handle, 120)
    await _approve(rec, handle)
    return handle


async def review_superseded_early(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """A check told it is superseded before it has checked anything (no worker runs yet):
    reported ``review``, it ends superseded instead of waiting
    (``workflow.patched("review-superseded-early")``)."""
    handle = await rec.start(rec.upload_bytes("separator.pdf", make_pdf(["text", "blank"])))
    await handle.signal(SUPERSEDED_SIGNAL, Superseded(workflow_id=f"{handle.id}-newer"))
    rec.worker()
    await handle.result()
    return handle


async def _recheck_of_a_waiting_check(
    rec: Recorder,
) -> tuple[WorkflowHandle[Any, RecheckResult], WorkflowHandle[Any, CheckSummary]]:
    """A check that waits for review, then a bulk re-check of its document under the same
    policy: the bulk re-check's handle once it has ended, and its re-check's (waiting)."""
    assert rec.client is not None
    rec.worker()
    original = await rec.start(rec.upload_bytes("separator.pdf", make_pdf(["text", "blank"])))
    await awaiting(original, 120)
    options = RecheckOptions(
        recheck_id="rc-history-review",
        selection=RecheckSelection(
            bucket=rec.settings.s3.documents_buckets[0], prefix=f"{rec.name}/"
        ),
        priority_key=rec.settings.temporal.recheck_priority,
        rate_per_s=2.0,
        max_concurrent=2,
    )
    bulk, _ = await start_bulk_recheck(
        rec.settings, rec.client, recheck_request(rec.settings, options)
    )
    await bulk.result()
    # Superseded by the re-check, it ends.
    await original.result()
    recheck = rec.client.get_workflow_handle(
        recheck_workflow_id(original.id, options.recheck_id), result_type=CheckSummary
    )
    await awaiting(recheck, 120)
    return bulk, recheck


async def bulk_recheck_review(rec: Recorder) -> WorkflowHandle[Any, Any]:
    """A bulk re-check of a document whose check waits for review: its re-check
    supersedes that check, waits for review in turn and says so, and the bulk re-check
    ends without waiting for the decision (``workflow.patched("recheck-review")``)."""
    bulk, recheck = await _recheck_of_a_waiting_check(rec)
    await _approve(rec, recheck)
    return bulk


async def recheck_review_child(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """The re-check of ``bulk_recheck_review``: reported ``review``, it tells its parent
    that it waits (``workflow.patched("review-wait-tells-parent")``), and a reviewer
    approves it after the parent has ended."""
    _, recheck = await _recheck_of_a_waiting_check(rec)
    await _approve(rec, recheck)
    return recheck


async def ocr_queue(rec: Recorder) -> WorkflowHandle[Any, CheckSummary]:
    """A check started with an OCR queue, of a document whose last chunk has a scanned
    page: the page queue stores the first chunk and leaves the last to a ``--role ocr``
    worker's page check (``workflow.patched("ocr-queue")``)."""
    temporal = dataclasses.replace(rec.settings.temporal, ocr_task_queue=f"record-{rec.name}-ocr")
    rec.settings = dataclasses.replace(rec.settings, temporal=temporal)
    rec.worker()
    rec.worker("--role", "ocr")
    pages = ["text"] * PipelineSettings().chunk_pages + ["text", "image", "text"]
    handle = await rec.start(rec.upload_bytes("partly-scanned.pdf", make_pdf(pages)))
    await handle.result()
    return handle


SCENARIOS: dict[str, Scenario] = {
    "small_document": small_document,
    "plain_pass": plain_pass,
    "crash_and_resume": crash_and_resume,
    "object_missing": object_missing,
    "retries_exhausted": retries_exhausted,
    "cancelled": cancelled,
    "recheck": recheck,
    "bulk_recheck": bulk_recheck,
    # The first recorded with encryption on (the others were recorded in clear, before it
    # existed, and replay as they are).
    "encrypted_small_document": small_document,
    "review_approved": review_approved,
    "ocr_queue": ocr_queue,
    "bulk_recheck_review": bulk_recheck_review,
    "recheck_review_child": recheck_review_child,
    "review_superseded_early": review_superseded_early,
}


_RECORDING = Settings(codec=CodecSettings(keyring_file=str(TEST_KEYRING)))


async def record(names: list[str], out: Path) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="docpipe-histories-") as work,
        EmbeddedStack(StackConfig.on_free_ports(Path(work) / "stack"), _RECORDING) as stack,
    ):
        for name in names:
            rec = Recorder(stack, Path(work), name)
            rec.client = await temporal_client(rec.settings.temporal, rec.settings.codec)
            try:
                handle = await SCENARIOS[name](rec)
                history = await handle.fetch_history()
            finally:
                stop_all(rec.started, timeout=15)
            (out / f"{name}.json").write_text(history.to_json() + "\n")
            print(f"{name}: {len(history.events)} events", flush=True)


def main() -> None:
    names = sys.argv[1:] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios {sorted(unknown)}; known: {list(SCENARIOS)}")
    HISTORIES.mkdir(parents=True, exist_ok=True)
    asyncio.run(record(names, HISTORIES))


if __name__ == "__main__":
    main()
