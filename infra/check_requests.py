"""What the settings make of a check: the request that starts it (where its results go,
which queues check its pages) and the lane it waits in (its priority and fair share).

The intake, re-checks and reprocessing build their checks here, so one setting changes
them all alike.
"""

from __future__ import annotations

from temporalio.common import Priority

from infra.settings import Settings
from pipeline.lanes import fairness_key
from pipeline.lanes import lane
from pipeline.models import CheckRequest
from pipeline.models import DocumentRef


def check_request(
    settings: Settings,
    document: DocumentRef,
    *,
    results_bucket: str | None = None,
    results_prefix: str | None = None,
    uploaded_at: float | None = None,
) -> CheckRequest:
    """What these settings make of a check of ``document``: where its results go, which
    queue checks its pages, whether its key is hashed where operators look.

    Args:
        results_bucket: default: the settings' (a re-check keeps its original's).
        results_prefix: default: the document's own prefix under the results root (a
            re-check keeps its original's).
        uploaded_at: when its upload event was published (epoch seconds), if it was.
    """
    return CheckRequest(
        document=document,
        results_bucket=results_bucket or settings.s3.results_bucket,
        results_prefix=results_prefix or document.results_prefix(settings.s3.results_prefix),
        page_task_queue=settings.temporal.page_task_queue,
        ocr_task_queue=settings.temporal.ocr_task_queue,
        hash_object_key=settings.object_keys_hashed,
        uploaded_at=uploaded_at,
    )


def intake_lane(settings: Settings, document: DocumentRef, tenant: str | None = None) -> Priority:
    """The lane of a check the intake starts: high priority, the document's fair share.

    Args:
        tenant: the upload event's fairness field (``DOCPIPE_TEMPORAL_FAIRNESS_KEY``
            ``field:<name>``), if it had one.
    """
    temporal = settings.temporal
    return lane(
        temporal.intake_priority,
        fairness_key(
            document, temporal.fairness_key, tenant=tenant, hashed=settings.object_keys_hashed
        ),
    )


def recheck_lane(
    settings: Settings, document: DocumentRef, priority: int | None = None
) -> Priority:
    """The lane of a re-check: low priority (or ``priority``), the document's fair share."""
    temporal = settings.temporal
    return lane(
        priority or temporal.recheck_priority,
        fairness_key(document, temporal.fairness_key, hashed=settings.object_keys_hashed),
    )
