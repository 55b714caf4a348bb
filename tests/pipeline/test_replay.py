"""Recorded histories replay against the current workflow code: a change that breaks
determinism fails here, not in production on the workflows running when it is deployed.

The histories are real runs on the embedded stack (``make histories`` re-records them;
docs/ARCHITECTURE.md says when, and how to version a workflow change instead). Those of
code that has changed since stay in a folder named after the change, and replay too:
checks begun before a deploy must finish after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from infra.codec import data_converter
from infra.settings import CodecSettings
from pipeline.check.review_wait import SUPERSEDED_EARLY_PATCH
from pipeline.check.review_wait import TAKEOVER_AT_REPORT_PATCH
from pipeline.check.review_wait import TELL_PARENT_PATCH
from pipeline.check.workflow import DocumentCheckWorkflow
from pipeline.models import WORKFLOW_NAME
from pipeline.models import CheckRequest
from pipeline.recheck.workflow import RECHECK_REVIEW_PATCH
from pipeline.recheck.workflow import SUPERSEDE_AT_REPORT_PATCH
from pipeline.recheck.workflow import RecheckWorkflow
from tests.support.histories import HISTORIES
from tests.support.histories import SCENARIOS
from tests.support.histories import TEST_KEYRING

CURRENT = sorted(HISTORIES.glob("*.json"))
RECORDED = sorted(HISTORIES.rglob("*.json"))
# Histories of the workflow before check_document (workflow.patched("check-document")).
BEFORE_CHECK_DOCUMENT = HISTORIES / "before-check-document"
# The bulk re-check that superseded a waiting check at its re-check's start.
BEFORE_SUPERSEDE_AT_REPORT = HISTORIES / "before-supersede-at-report"
# The deliberate re-check that its command let take over at its start.
BEFORE_TAKEOVER_AT_REPORT = HISTORIES / "before-takeover-at-report"
ENCRYPTED = HISTORIES / "encrypted_small_document.json"
# Histories in clear pass through the codec: one replayer reads both kinds.
_WITH_TEST_KEYRING = data_converter(CodecSettings(keyring_file=str(TEST_KEYRING)))


def _history(path: Path) -> WorkflowHistory:
    """The history at ``path``, replayed under its workflow's own ID, as a worker replays
    it (the workflow may read its ID); histories that do not record it, under the file's
    name."""
    recorded = json.loads(path.read_text())
    started = recorded["events"][0].get("workflowExecutionStartedEventAttributes", {})
    return WorkflowHistory.from_json(started.get("workflowId") or path.stem, recorded)


def test_every_scenario_has_a_recorded_history() -> None:
    assert {path.stem for path in CURRENT} == set(SCENARIOS)


def _patches(path: Path) -> set[str]:
    """The patch IDs a history's markers record."""
    found = set()
    for event in _history(path).events:
        if event.HasField("marker_recorded_event_attributes"):
            details = event.marker_recorded_event_attributes.details
            if "patch-data" in details:
                found.add(json.loads(details["patch-data"].payloads[0].data)["id"])
    return found


@pytest.mark.parametrize(
    ("name", "patch"),
    [("bulk_recheck_review", RECHECK_REVIEW_PATCH), ("recheck_review_child", TELL_PARENT_PATCH)],
)
def test_the_histories_of_rechecks_that_wait_for_review_took_their_new_branch(
    name: str, patch: str
) -> None:
    assert patch in _patches(HISTORIES / f"{name}.json")
    # The bulk re-check recorded before them took the old one.
    assert RECHECK_REVIEW_PATCH not in _patches(HISTORIES / "bulk_recheck.json")


def test_the_check_superseded_while_checking_took_its_new_branch() -> None:
    assert SUPERSEDED_EARLY_PATCH in _patches(HISTORIES / "review_superseded_early.json")
    assert SUPERSEDED_EARLY_PATCH not in _patches(HISTORIES / "review_approved.json")


def test_the_bulk_recheck_supersedes_at_the_report_since_its_patch() -> None:
    assert SUPERSEDE_AT_REPORT_PATCH in _patches(HISTORIES / "bulk_recheck_review.json")
    before = _patches(BEFORE_SUPERSEDE_AT_REPORT / "bulk_recheck_review.json")
    assert RECHECK_REVIEW_PATCH in before and SUPERSEDE_AT_REPORT_PATCH not in before


def test_a_deliberate_recheck_takes_over_at_its_report_since_its_patch() -> None:
    assert TAKEOVER_AT_REPORT_PATCH in _patches(HISTORIES / "recheck.json")
    assert TAKEOVER_AT_REPORT_PATCH not in _patches(BEFORE_TAKEOVER_AT_REPORT / "recheck.json")


def test_the_histories_before_check_document_are_kept() -> None:
    assert len(list(BEFORE_CHECK_DOCUMENT.glob("*.json"))) == 6


@pytest.mark.parametrize(
    "path", RECORDED, ids=lambda path: str(path.relative_to(HISTORIES).with_suffix(""))
)
async def test_a_recorded_history_replays(path: Path) -> None:
    replayer = Replayer(
        workflows=[DocumentCheckWorkflow, RecheckWorkflow], data_converter=_WITH_TEST_KEYRING
    )
    result = await replayer.replay_workflow(_history(path))
    assert result.replay_failure is None


def test_the_encrypted_history_is_sealed_with_the_test_key() -> None:
    started = _history(ENCRYPTED).events[0].workflow_execution_started_event_attributes
    (payload,) = started.input.payloads
    assert payload.metadata["encoding"] == b"binary/encrypted"
    assert payload.metadata["encryption-key-id"] == b"test-only-not-secret"
    assert b"small_document" not in payload.data


async def test_the_encrypted_history_does_not_replay_without_its_key() -> None:
    replayer = Replayer(workflows=[DocumentCheckWorkflow])
    result = await replayer.replay_workflow(_history(ENCRYPTED), raise_on_replay_failure=False)
    assert result.replay_failure is not None


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class _Reordered:
    """A deploy that changed the order of things: it sleeps where the history inspected."""

    @workflow.run
    async def run(self, request: CheckRequest) -> None:
        await workflow.sleep(1)


async def test_a_change_that_breaks_determinism_fails_the_replay() -> None:
    replayer = Replayer(workflows=[_Reordered])
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(_history(HISTORIES / "plain_pass.json"))
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(_history(BEFORE_CHECK_DOCUMENT / "plain_pass.json"))
