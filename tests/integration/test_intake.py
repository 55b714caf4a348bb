"""The Kafka intake on the real stack: ``docpipe consume`` processes, started and killed.

Every valid upload must become exactly one workflow, every invalid message a dead letter
with its reason, and no offset may be committed for work that was not made durable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import EndpointConnectionError
from temporalio.client import Client
from temporalio.client import WorkflowExecutionStatus

from consumers.dead_letters import DeadLetter
from consumers.intake import UploadIntake
from infra.clients import s3_client
from infra.processes import pid_alive
from infra.settings import Settings
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support.commands import run_docpipe
from tests.support.commands import settings_env
from tests.support.intake import Message
from tests.support.intake import Sent
from tests.support.intake import committed
from tests.support.intake import dead_letters
from tests.support.intake import final_counters
from tests.support.intake import native_event
from tests.support.intake import publish
from tests.support.intake import running
from tests.support.intake import s3_event
from tests.support.intake import s3_record
from tests.support.intake import unique_prefix
from tests.support.intake import upload
from tests.support.intake import wait_committed
from tests.support.intake import wait_runs
from tests.support.intake import wait_started_once
from tests.support.intake import with_kafka
from tests.support.intake import workflow_runs
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.polling import wait_for


def _docpipe(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_docpipe(args, settings_env(settings))


# -- duplicates ---------------------------------------------------------------------------


async def test_same_upload_five_times_in_both_shapes_is_one_workflow(
    settings: Settings, start_component: StartComponent, client: Client
) -> None:
    prefix = unique_prefix("dupes")
    # Spaces in keys: S3 notifications encode them as "+" (or "%20").
    twice = upload(settings, f"{prefix}/quarterly report.pdf")
    others = [upload(settings, f"{prefix}/other {n}.pdf") for n in range(3)]
    gone = upload(settings, f"{prefix}/removed.pdf")
    messages = [
        Message(native_event(twice)),
        Message(native_event(others[0])),
        Message(s3_event(s3_record(twice))),  # "+" for spaces
        Message(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}).encode()),
        Message(native_event(twice, etag=False)),
        Message(s3_event(s3_record(others[1]), s3_record(twice, plus=False))),
        Message(s3_event(s3_record(gone, event_name="ObjectRemoved:Delete"))),
        Message(native_event(others[2])),
        # No version and no ETag: the intake learns the version with a HEAD.
        Message(native_event(twice, version=False, etag=False)),
        Message(native_event(others[0])),
    ]
    consumer = start_component(["consume"], settings)
    sent = await publish(settings, messages)

    await wait_committed(settings, sent, 30)
    await wait_started_once(client, settings.temporal.task_queue, [twice, *others], 20)
    assert await dead_letters(settings) == []

    # SIGTERM is a graceful stop: exit 0, with the counters in the log.
    assert consumer.stop(timeout=15) == 0
    counters = final_counters(consumer)
    assert counters["consumed"] == len(messages)
    assert counters["started"] == 4
    assert counters["deduped"] == 4 + 1  # 4 of the 5 for `twice`, 1 of the 2 for others[0]
    assert counters["skipped"] == 2  # the test event and the removal
    assert counters["dead_lettered"] == 0


async def test_upload_redelivered_after_its_check_completed_is_not_run_again(
    settings: Settings, start_component: StartComponent, client: Client
) -> None:
    start_component(["worker"], settings)
    consumer = start_component(["consume"], settings)
    document = upload(
        settings, f"{unique_prefix('redelivered')}/done.pdf", make_pdf(["text", "text"])
    )
    sent = await publish(settings, [Message(native_event(document), key=b"doc")])
    await wait_runs(client, settings.temporal.task_queue, {document.workflow_id}, 30)
    handle = client.get_workflow_handle(document.workflow_id, result_type=CheckSummary)
    summary = await asyncio.wait_for(handle.result(), 60)
    assert summary.page_count == 2
    first_run = (await handle.describe()).run_id

    # Redelivered in both shapes, and read again by a second group from the beginning.
    again = await publish(
        settings,
        [Message(native_event(document), key=b"doc"), Message(s3_event(s3_record(document)))],
    )
    second_group = with_kafka(settings, group_id=f"{settings.kafka.group_id}-again")
    rereader = start_component(["consume"], second_group)
    await wait_committed(settings, sent + again, 30)
    await wait_committed(second_group, sent + again, 30)

    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.COMPLETED
    assert description.run_id == first_run
    runs = await workflow_runs(client, settings.temporal.task_queue)
    assert runs == {document.workflow_id: 1}
    assert consumer.stop(timeout=15) == 0
    assert rereader.stop(timeout=15) == 0
    assert final_counters(consumer)["started"] == 1
    assert final_counters(consumer)["deduped"] == 2
    assert final_counters(rereader)["started"] == 0
    assert final_counters(rereader)["deduped"] == 3


# -- crashes ------------------------------------------------------------------------------


async def test_consumer_killed_after_starting_before_committing_loses_and_doubles_nothing(
    settings: Settings, start_component: StartComponent, client: Client
) -> None:
    prefix = unique_prefix("sigkill")
    documents = [upload(settings, f"{prefix}/doc-{n}.pdf") for n in range(24)]
    sent = await publish(
        settings, [Message(native_event(d), partition=n % 3) for n, d in enumerate(documents)]
    )
    # Commits are due only after 60 s: the kill surely comes between starts and commit.
    first = start_component(["consume"], with_kafka(settings, commit_interval_s=60.0))
    started = await async_wait_for(
        lambda: _some_runs(client, settings.temporal.task_queue, 8), 30, "8 workflows"
    )
    os.kill(first.pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(first.pid), 10, "the killed consumer to be gone")
    assert await committed(settings) == {}, "nothing may be committed before the kill"

    second = start_component(["consume"], settings)
    await wait_committed(settings, sent, 30)
    await wait_started_once(client, settings.temporal.task_queue, documents, 20)
    assert second.stop(timeout=15) == 0
    counters = final_counters(second)
    # Everything was delivered again; what the first one had started was deduped.
    assert counters["consumed"] == len(documents)
    assert counters["deduped"] >= len(started)
    assert counters["started"] + counters["deduped"] == len(documents)


async def _some_runs(client: Client, task_queue: str, at_least: int) -> set[str] | None:
    runs = await workflow_runs(client, task_queue)
    return set(runs) if len(runs) >= at_least else None


# -- bad input ----------------------------------------------------------------------------


def _native(**fields: Any) -> bytes:
    event: dict[str, Any] = {"bucket": "documents", "key": "bad/input.pdf", "version_id": "v1"}
    event.update(fields)
    return json.dumps({k: v for k, v in event.items() if v is not None}).encode()


# (name, value, reason): every reason code, plus junk that is easy to get wrong.
BAD_MESSAGES: list[tuple[str, bytes | None, str]] = [
    ("binary_junk", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd", "not_utf8"),
    ("lone_surrogate_in_key", b'{"bucket": "documents", "key": "\\ud800.pdf"}', "not_utf8"),
    ("empty_value", b"", "not_json"),
    ("null_value", None, "not_json"),
    ("truncated_json", b'{"bucket": "documents", "key": ', "not_json"),
    ("json_array", b'[{"bucket": "documents", "key": "a.pdf"}]', "wrong_shape"),
    ("json_number", b"42", "wrong_shape"),
    (
        "s3_record_without_object",
        b'{"Records": [{"eventName": "ObjectCreated:Put", '
        b'"s3": {"bucket": {"name": "documents"}}}]}',
        "wrong_shape",
    ),
    ("missing_bucket", _native(bucket=None), "missing_bucket"),
    ("empty_bucket", _native(bucket=""), "missing_bucket"),
    ("missing_key", _native(key=None), "missing_key"),
    ("size_as_string", _native(size="12"), "wrong_type"),
    ("huge_message", b'{"bucket": "documents", "key": "' + b"k" * (3 << 19) + b'"}', "too_large"),
    ("bucket_not_allowed", _native(bucket="payroll"), "bucket_not_allowed"),
    ("key_with_nul_byte", _native(key="bad/a\u0000b.pdf"), "bad_key"),
    ("key_over_1024_bytes", _native(key="k" * 1025), "bad_key"),
]


async def test_malformed_messages_are_dead_lettered_with_their_reason(
    settings: Settings, start_component: StartComponent, client: Client
) -> None:
    prefix = unique_prefix("bad")
    good = [upload(settings, f"{prefix}/good-{n}.pdf") for n in range(3)]
    missing = DocumentRef(bucket="documents", key=f"{prefix}/never uploaded.pdf", etag="x")
    cases = [
        *BAD_MESSAGES,
        ("object_missing", native_event(missing, version=False, etag=False), "object_missing"),
    ]
    messages = [Message(native_event(good[0]))]
    for name, value, _ in cases:
        # A header without a value too: Kafka allows it, and the letter keeps it.
        headers = (("trace-id", name.encode()), ("x-empty", None))
        messages.append(Message(value, key=name.encode(), partition=0, headers=headers))
        if name == "json_array":
            messages.append(Message(native_event(good[1]), partition=0))
    messages.append(Message(native_event(good[2]), partition=0))

    consumer = start_component(["consume"], settings)
    sent = await publish(settings, messages)
    await wait_committed(settings, sent, 40)

    letters = {letter.key: letter for letter in await dead_letters(settings)}
    source = {s.message.key: s for s in sent}
    wrong = {}
    for name, value, reason in cases:
        letter: DeadLetter | None = letters.get(name.encode())
        if letter is None or letter.reason != reason:
            wrong[name] = letter.reason if letter else "not dead-lettered"
            continue
        # The original bytes, unchanged, with where they came from.
        assert letter.value == value, name
        assert letter.headers == (("trace-id", name.encode()), ("x-empty", None)), name
        assert letter.message, name
        assert letter.source_topic == settings.kafka.uploads_topic
        assert (letter.source_partition, letter.source_offset) == (
            source[name.encode()].partition,
            source[name.encode()].offset,
        )
    assert wrong == {}
    assert len(letters) == len(cases)

    # The consumer kept going: the good uploads around the bad ones are started.
    await wait_started_once(client, settings.temporal.task_queue, good, 20)

    listing = _docpipe(settings, "dlq", "list", "--examples", "3")
    assert listing.returncode == 0, listing.stderr
    assert f"{len(cases)} dead letter(s) in {settings.kafka.dlq_topic}" in listing.stdout
    for reason in {reason for _, _, reason in cases}:
        count = sum(1 for _, _, r in cases if r == reason)
        assert any(line.split() == [reason, str(count)] for line in listing.stdout.splitlines())
    assert f"from {settings.kafka.uploads_topic}[0]@" in listing.stdout
    assert "kkkkkkkk" not in listing.stdout  # no contents, not even of the huge one
    # Ctrl-C is as graceful as SIGTERM.
    consumer.process.send_signal(signal.SIGINT)
    assert consumer.process.wait(timeout=15) == 0
    assert final_counters(consumer)["dead_lettered"] == len(cases)


async def test_replayed_dead_letter_leads_to_its_check(
    settings: Settings, start_component: StartComponent, client: Client
) -> None:
    start_component(["consume"], settings)
    key = f"{unique_prefix('replay')}/arrived late.pdf"
    # The event comes before the object exists (an upstream bug): object_missing.
    early = DocumentRef(bucket="documents", key=key, etag="unknown")
    await publish(settings, [Message(native_event(early, version=False, etag=False))])
    letters = await async_wait_for(
        lambda: _letters_with(settings, "object_missing"), 30, "the dead letter"
    )
    assert len(letters) == 1
    listing = _docpipe(settings, "dlq", "list")
    assert any(line.split() == ["object_missing", "1"] for line in listing.stdout.splitlines())

    document = upload(settings, key)
    replay = _docpipe(settings, "dlq", "replay", "--reason", "object_missing", "--limit", "5")
    assert replay.returncode == 0, replay.stderr
    assert f"replayed 1 dead letter(s) to {settings.kafka.uploads_topic}" in replay.stdout
    await wait_started_once(client, settings.temporal.task_queue, [document], 30)
    # Replaying again is harmless: the start is deduped.
    again = _docpipe(settings, "dlq", "replay", "--reason", "object_missing")
    assert "replayed 1 dead letter(s)" in again.stdout, again.stderr

    async def all_three_consumed() -> bool:
        # The original and two replays: committed offsets add up to three messages.
        return sum((await committed(settings)).values()) == 3

    await async_wait_for(all_three_consumed, 30, "the replays to be consumed")
    assert await workflow_runs(client, settings.temporal.task_queue) == {document.workflow_id: 1}
    assert len(await _letters_with(settings, "object_missing") or []) == 1


async def _letters_with(settings: Settings, reason: str) -> list[DeadLetter] | None:
    letters = [letter for letter in await dead_letters(settings) if letter.reason == reason]
    return letters or None


# -- a group of consumers -----------------------------------------------------------------


def _assigned_lines(process: Any) -> list[str]:
    text: str = process.log_path.read_text(errors="replace")
    return [line for line in text.splitlines() if "partitions assigned:" in line]


async def test_two_consumers_share_partitions_and_hand_them_over(
    settings: Settings, start_component: StartComponent, client: Client
) -> None:
    prefix = unique_prefix("group")
    documents = [upload(settings, f"{prefix}/doc-{n}.pdf") for n in range(36)]
    batches = [documents[:12], documents[12:24], documents[24:]]

    async def publish_batch(batch: list[DocumentRef]) -> list[Sent]:
        return await publish(
            settings, [Message(native_event(d), partition=n % 3) for n, d in enumerate(batch)]
        )

    first = start_component(["consume"], settings)
    await wait_committed(settings, await publish_batch(batches[0]), 30)

    second = start_component(["consume"], settings)
    topic = settings.kafka.uploads_topic

    def shared() -> bool:
        # Each one's latest assignment holds some partitions, and together all three.
        lines = [_assigned_lines(p) for p in (first, second)]
        if not all(lines):
            return False
        latest = [line[-1].split("partitions assigned: ", 1)[1] for line in lines]
        return "none" not in latest and all(f"{topic}[{n}]" in " ".join(latest) for n in range(3))

    wait_for(shared, 30, "both consumers to own partitions")
    await wait_committed(settings, await publish_batch(batches[1]), 30)

    assert first.stop(timeout=15) == 0  # leaves the group: the other takes over at once
    wait_for(
        lambda: any(
            all(f"{topic}[{n}]" in line for n in range(3)) for line in _assigned_lines(second)
        ),
        30,
        "the remaining consumer to own every partition",
    )
    await wait_committed(settings, await publish_batch(batches[2]), 30)

    await wait_started_once(client, settings.temporal.task_queue, documents, 20)
    assert second.stop(timeout=15) == 0
    counts = [final_counters(p) for p in (first, second)]
    assert all(c["started"] > 0 for c in counts), counts
    assert sum(c["started"] for c in counts) == len(documents)


# -- infrastructure failures in process ---------------------------------------------------


class _EmptyBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


async def test_s3_outage_during_head_is_retried_not_dead_lettered(
    settings: Settings, client: Client
) -> None:
    settings = with_kafka(settings, retry_initial_s=0.05, retry_max_s=0.2)
    # One attempt per S3 call: every injected failure reaches the intake.
    settings = dataclasses.replace(settings, s3=dataclasses.replace(settings.s3, max_attempts=1))
    document = upload(settings, f"{unique_prefix('s3down')}/doc.pdf")
    s3 = s3_client(settings.s3)
    failures = {"left": 6}

    def outage(request: Any, **_: Any) -> AWSResponse | None:
        # Alternately unreachable and answering 503, as S3 does when it is in trouble.
        if failures["left"] <= 0:
            return None
        failures["left"] -= 1
        if failures["left"] % 2:
            raise EndpointConnectionError(endpoint_url=request.url)
        return AWSResponse(request.url, 503, HTTPHeaders(), _EmptyBody())

    # A before-send handler may answer instead of S3; the stubs only know "-> None".
    s3.meta.events.register("before-send.s3.HeadObject", outage)  # type: ignore[arg-type]
    intake = UploadIntake(settings, client, s3)
    async with running(intake):
        sent = await publish(settings, [Message(native_event(document, version=False, etag=False))])
        await wait_committed(settings, sent, 30)
    assert failures["left"] == 0
    assert intake.counters.retries == 6
    assert intake.counters.dead_lettered == 0
    assert intake.counters.started == 1
    assert await dead_letters(settings) == []
    await wait_started_once(client, settings.temporal.task_queue, [document], 20)
