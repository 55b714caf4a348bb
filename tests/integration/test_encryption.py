"""Encryption on the real stack: what Temporal stores is sealed, and readable again only
through the keyring (workers, the CLI's codec endpoint), also across a rotation."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from infra.binaries import temporal_binary
from infra.clients import s3_client
from infra.clients import temporal_client
from infra.codec import KEY_ID_KEY
from infra.keyring import write_keyring_file
from infra.settings import CodecSettings
from infra.settings import Settings
from infra.stack import EmbeddedStack
from pipeline.labels import object_key_value
from pipeline.models import CheckSummary
from pipeline.models import DocumentRef
from tests.conftest import StartComponent
from tests.support.checks import start_check
from tests.support.pdfs import make_large_pdf
from tests.support.pdfs import make_pdf
from tests.support.polling import async_wait_for
from tests.support.settings import hashing_by_default

_CLEAR = CodecSettings(mode="none")
_K_OLD, _K_NEW = (base64.b64encode(os.urandom(32)).decode() for _ in range(2))


def _upload(settings: Settings, body: bytes) -> DocumentRef:
    bucket = settings.s3.documents_buckets[0]
    key = f"acme-confidential/{uuid.uuid4().hex}.pdf"
    put = s3_client(settings.s3).put_object(Bucket=bucket, Key=key, Body=body)
    return DocumentRef(bucket=bucket, key=key, version_id=put["VersionId"])


def _worker_with_keyring(
    settings: Settings,
    start_component: StartComponent,
    path: Path,
    keys: dict[str, str],
    active: str,
) -> Settings:
    """Write a keyring file, start a worker that reads it, and return the worker's settings."""
    write_keyring_file(path, keys, active)
    with_keyring = dataclasses.replace(settings, codec=CodecSettings(keyring_file=str(path)))
    start_component(["worker"], with_keyring)
    return with_keyring


def _payloads_only(event: HistoryEvent) -> bytes:
    """An event's bytes, less what stays in clear by design (docs/OPERATIONS.md,
    "Encryption"): the search attributes (the server indexes them) and the workflow ID,
    which name the bucket and the reasons."""
    copy = HistoryEvent()
    copy.CopyFrom(event)
    copy.workflow_execution_started_event_attributes.ClearField("search_attributes")
    copy.workflow_execution_started_event_attributes.ClearField("workflow_id")
    copy.upsert_workflow_search_attributes_event_attributes.ClearField("search_attributes")
    return copy.SerializeToString()


async def _raw_events(settings: Settings, workflow_id: str) -> list[HistoryEvent]:
    clear = await temporal_client(settings.temporal, _CLEAR)
    return list((await clear.get_workflow_handle(workflow_id).fetch_history()).events)


def _key_ids(events: list[HistoryEvent]) -> set[bytes]:
    """The key IDs named by the payloads of the workflow's input."""
    started = events[0].workflow_execution_started_event_attributes
    return {payload.metadata[KEY_ID_KEY] for payload in started.input.payloads}


@dataclass(frozen=True)
class Checked:
    """A finished check and the ID it ran under."""

    document: DocumentRef
    summary: CheckSummary
    workflow_id: str


@pytest.fixture
async def checked(settings: Settings, start_component: StartComponent) -> Checked:
    """A check with a finding (a blank page), run with encryption on and the settings'
    defaults otherwise: its key hashed."""
    settings = hashing_by_default(settings)
    assert settings.object_keys_hashed
    start_component(["worker"], settings)
    client = await temporal_client(settings.temporal, settings.codec)
    document = _upload(settings, make_pdf(["text", "blank"]))
    handle = await start_check(client, settings, document)
    summary = await handle.result()
    assert summary.reasons == ["blank_pages"]
    return Checked(document=document, summary=summary, workflow_id=handle.id)


async def test_the_payloads_in_the_raw_history_hold_neither_bucket_nor_key_nor_reasons(
    settings: Settings, checked: Checked
) -> None:
    document = checked.document
    events = await _raw_events(settings, checked.workflow_id)
    raw = b"".join(_payloads_only(event) for event in events)
    assert b"binary/encrypted" in raw
    for clear_text in (document.bucket, document.key, checked.summary.report_key, "blank_pages"):
        assert clear_text.encode() not in raw, f"{clear_text!r} is in the history in clear"


async def test_the_object_key_is_nowhere_in_what_temporal_holds(
    settings: Settings, checked: Checked
) -> None:
    document = checked.document
    clear = await temporal_client(settings.temporal, _CLEAR)
    events = await _raw_events(settings, checked.workflow_id)
    description = await clear.get_workflow_handle(checked.workflow_id).describe()
    # Every event whole, the workflow as the server describes it (ID, search attributes,
    # summary) and the workflow ID itself, also where this SDK's protos may not carry it.
    raw = b"".join(event.SerializeToString() for event in events)
    raw += description.raw_description.SerializeToString() + checked.workflow_id.encode()
    assert b"DocpipeObjectKey" in raw and document.bucket.encode() in raw
    assert object_key_value(document.key, True).encode() in raw
    for part in (document.key, document.key.rsplit("/", 1)[-1], document.key.split("/")[0]):
        assert part.encode() not in raw, f"{part!r} is in Temporal in clear"


def _temporal_cli(stack: EmbeddedStack, settings: Settings, *args: str) -> str:
    argv = [str(temporal_binary()), "workflow", "show", *args, "--output", "json"]
    argv += ["--address", settings.temporal.address, "--namespace", settings.temporal.namespace]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_the_temporal_cli_reads_the_input_through_the_codec_endpoint(
    stack: EmbeddedStack, settings: Settings, checked: Checked
) -> None:
    document = checked.document
    workflow = ["--workflow-id", checked.workflow_id]
    sealed = _input_payload(_temporal_cli(stack, settings, *workflow))
    assert sealed["metadata"]["encoding"] == b"binary/encrypted"
    endpoint = f"{stack.codec_url}/{{namespace}}"
    opened = _input_payload(_temporal_cli(stack, settings, *workflow, "--codec-endpoint", endpoint))
    assert opened["metadata"]["encoding"] == b"json/plain"
    assert json.loads(opened["data"])["document"]["key"] == document.key


def _input_payload(shown: str) -> dict[str, Any]:
    """The workflow's input as ``temporal workflow show --output json`` shows it, unbased."""
    started = json.loads(shown)["events"][0]["workflowExecutionStartedEventAttributes"]
    (payload,) = started["input"]["payloads"]
    return {
        "metadata": {k: base64.b64decode(v) for k, v in payload["metadata"].items()},
        "data": base64.b64decode(payload["data"]),
    }


async def _workflow_task_failure(client: Client, workflow_id: str) -> str | None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            return str(event.workflow_task_failed_event_attributes.failure.message)
    return None


@pytest.mark.slow
async def test_an_unknown_key_fails_the_workflow_task_until_the_key_is_added(
    settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    keyring = tmp_path / "worker-keyring.json"
    _worker_with_keyring(settings, start_component, keyring, {"k-new": _K_NEW}, "k-new")
    old = dataclasses.replace(
        settings, codec=CodecSettings(keys=(f"k-old:{_K_OLD}",), active_key="k-old")
    )
    client = await temporal_client(old.temporal, old.codec)
    document = _upload(settings, make_pdf(["text"]))
    await start_check(client, old, document)

    clear = await temporal_client(settings.temporal, _CLEAR)
    failure = await async_wait_for(
        lambda: _workflow_task_failure(clear, document.workflow_id), 60, "a failed workflow task"
    )
    assert "'k-old'" in failure

    write_keyring_file(keyring, {"k-old": _K_OLD, "k-new": _K_NEW}, "k-new")
    reader = await temporal_client(settings.temporal, CodecSettings(keyring_file=str(keyring)))
    handle = reader.get_workflow_handle(document.workflow_id, result_type=CheckSummary)
    summary = await handle.result()
    assert summary.verdict == "pass"


@pytest.mark.slow
async def test_a_rotation_while_checks_run_keeps_them_running_and_seals_new_ones_with_the_new_key(
    settings: Settings, start_component: StartComponent, tmp_path: Path
) -> None:
    keyring = tmp_path / "keyring.json"
    rotating = _worker_with_keyring(settings, start_component, keyring, {"k1": _K_OLD}, "k1")
    before = await temporal_client(rotating.temporal, rotating.codec)
    in_flight = await start_check(before, rotating, _upload(settings, make_large_pdf(40)))

    write_keyring_file(keyring, {"k1": _K_OLD, "k2": _K_NEW}, "k2")
    after = await temporal_client(rotating.temporal, rotating.codec)
    started_after = await start_check(after, rotating, _upload(settings, make_pdf(["text"])))

    assert (await in_flight.result()).page_count == 40
    assert (await started_after.result()).page_count == 1
    assert _key_ids(await _raw_events(settings, in_flight.id)) == {b"k1"}
    assert _key_ids(await _raw_events(settings, started_after.id)) == {b"k2"}
