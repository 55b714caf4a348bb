"""DocumentCheckWorkflow with an OCR queue: the chunks that need OCR are checked there, and
nothing else is; without one, the check issues the commands it always did.

Stand-in activities on the time-skipping server say which chunks need OCR (as the real
ones learn it from the pages) and record the queue each page check ran on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from pipeline.check.workflow import CHECK_DOCUMENT_PATCH
from pipeline.check.workflow import OCR_QUEUE_PATCH
from pipeline.check.workflow import DocumentCheckWorkflow
from pipeline.models import CheckDocumentInput
from pipeline.models import CheckPagesInput
from pipeline.models import CheckPagesResult
from pipeline.models import CheckSummary
from pipeline.models import DocumentOutcome
from pipeline.models import DocumentRef
from pipeline.models import FinalizeInput
from pipeline.models import InspectResult
from pipeline.models import PublishResultInput
from tests.support.checks import start_check
from tests.support.inspections import readable_inspection
from tests.support.settings import one_queue

DOCUMENT = DocumentRef(bucket="documents", key="in/scan.pdf", version_id="v1")
CHUNK_PAGES = 25
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Scan:
    """Stand-ins for a document of ``page_count`` pages whose chunks ``ocr_chunks`` (0-based)
    need OCR. Each page check records (its task queue, whether OCR was left elsewhere)."""

    page_count: int
    ocr_chunks: set[int]
    document_inputs: list[CheckDocumentInput] = field(default_factory=list)
    page_checks: list[tuple[str, bool]] = field(default_factory=list)
    finalized: list[FinalizeInput] = field(default_factory=list)

    def _inspection(self) -> InspectResult:
        return readable_inspection(self.page_count, chunk_pages=CHUNK_PAGES)

    def _summary(self) -> CheckSummary:
        return CheckSummary(
            document_id=DOCUMENT.document_id, verdict="pass", page_count=self.page_count
        )

    def main(self) -> list[Callable[..., Any]]:
        """The activities of the workflow and page queue."""

        @activity.defn(name="check_document")
        async def check_document(input: CheckDocumentInput) -> DocumentOutcome:
            self.document_inputs.append(input)
            inspection = self._inspection()
            if self.page_count > CHUNK_PAGES:
                return DocumentOutcome(inspection=inspection)
            if input.ocr_elsewhere and self.ocr_chunks:
                return DocumentOutcome(inspection=inspection, chunks_for_ocr=1)
            return DocumentOutcome(summary=self._summary(), pages_checked=self.page_count)

        @activity.defn(name="finalize")
        async def finalize(input: FinalizeInput) -> CheckSummary:
            self.finalized.append(input)
            return self._summary()

        @activity.defn(name="publish_result")
        async def publish_result(input: PublishResultInput) -> None:
            return None

        return [check_document, self.check_pages(), finalize, publish_result]

    def check_pages(self) -> Callable[..., Any]:
        @activity.defn(name="check_pages")
        async def check_pages(input: CheckPagesInput) -> CheckPagesResult:
            self.page_checks.append((activity.info().task_queue, input.ocr_elsewhere))
            left = len(self.ocr_chunks) if input.ocr_elsewhere else 0
            return CheckPagesResult(
                pages_checked=self.page_count - left * CHUNK_PAGES,
                chunks=-(-self.page_count // CHUNK_PAGES),
                chunk_pages=CHUNK_PAGES,
                first_page_this_attempt=1,
                attempt=1,
                chunks_for_ocr=left,
            )

        return check_pages


async def _run(env: WorkflowEnvironment, scan: Scan, *, ocr_queue: bool) -> WorkflowHistory:
    """Check the stand-ins' document with one worker on the workflow (and page) queue and,
    when ``ocr_queue``, one on an OCR queue; the check's history."""
    queue = f"workflow-{uuid.uuid4()}"
    ocr = f"ocr-{uuid.uuid4()}" if ocr_queue else ""
    settings = one_queue(queue, ocr_task_queue=ocr)
    handle = await start_check(env.client, settings, DOCUMENT, workflow_id=f"wf-{uuid.uuid4()}")
    async with (
        Worker(
            env.client, task_queue=queue, workflows=[DocumentCheckWorkflow], activities=scan.main()
        ),
        Worker(env.client, task_queue=ocr or f"unused-{queue}", activities=[scan.check_pages()]),
    ):
        await handle.result()
    return await handle.fetch_history()


def _patches(history: WorkflowHistory) -> list[str]:
    """The IDs of the ``workflow.patched`` markers in ``history``."""
    return [
        json.loads(event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)[
            "id"
        ]
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


async def test_a_scans_chunks_that_need_ocr_go_to_the_ocr_queue_after_the_others(
    env: WorkflowEnvironment,
) -> None:
    scan = Scan(page_count=100, ocr_chunks={1, 3})
    history = await _run(env, scan, ocr_queue=True)
    (page_queue, first_leaves_ocr), (ocr_queue, second_leaves_ocr) = scan.page_checks
    assert ocr_queue.startswith("ocr-") and not page_queue.startswith("ocr-")
    assert first_leaves_ocr and not second_leaves_ocr
    # finalize folds what the OCR queue's page check, which read the others back, found.
    (finalized,) = scan.finalized
    assert finalized.pages is not None and finalized.pages.pages_checked == 100
    assert finalized.pages.chunks_for_ocr == 0
    assert _patches(history) == [CHECK_DOCUMENT_PATCH, OCR_QUEUE_PATCH]


async def test_a_text_document_never_reaches_the_ocr_queue(env: WorkflowEnvironment) -> None:
    scan = Scan(page_count=100, ocr_chunks=set())
    await _run(env, scan, ocr_queue=True)
    ((queue, leaves_ocr),) = scan.page_checks
    assert not queue.startswith("ocr-") and leaves_ocr
    assert scan.finalized[0].pages is not None and scan.finalized[0].pages.pages_checked == 100


async def test_a_small_scan_goes_from_check_document_straight_to_the_ocr_queue(
    env: WorkflowEnvironment,
) -> None:
    scan = Scan(page_count=10, ocr_chunks={0})
    await _run(env, scan, ocr_queue=True)
    assert scan.document_inputs[0].ocr_elsewhere
    ((queue, leaves_ocr),) = scan.page_checks
    assert queue.startswith("ocr-") and not leaves_ocr
    assert len(scan.finalized) == 1


async def test_without_an_ocr_queue_a_scan_is_checked_as_ever_and_unmarked(
    env: WorkflowEnvironment,
) -> None:
    scan = Scan(page_count=100, ocr_chunks={0, 1, 2, 3})
    history = await _run(env, scan, ocr_queue=False)
    assert not scan.document_inputs[0].ocr_elsewhere
    ((queue, leaves_ocr),) = scan.page_checks
    assert not queue.startswith(("ocr-", "unused-")) and not leaves_ocr
    assert _patches(history) == [CHECK_DOCUMENT_PATCH]
