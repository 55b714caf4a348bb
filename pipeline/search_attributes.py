"""docpipe's custom search attributes: what operators filter the Temporal UI by.

They must be registered in a namespace before any workflow sets them (an unregistered one
makes workflow tasks fail): the embedded stack and ``docpipe temporal setup`` do that.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey
from temporalio.common import SearchAttributePair
from temporalio.common import SearchAttributeUpdate
from temporalio.common import TypedSearchAttributes

from pipeline import labels
from pipeline.models import CheckRequest

STATUS = SearchAttributeKey.for_keyword("DocpipeStatus")
BUCKET = SearchAttributeKey.for_keyword("DocpipeBucket")
OBJECT_KEY = SearchAttributeKey.for_keyword("DocpipeObjectKey")
REASONS = SearchAttributeKey.for_keyword_list("DocpipeReasons")
PAGE_COUNT = SearchAttributeKey.for_int("DocpipePageCount")
# Moves while pages are checked (at most ~20 updates per attempt), final when done.
PAGES_CHECKED = SearchAttributeKey.for_int("DocpipePagesChecked")
# While a check waits for a reviewer: since when, until when, and whether that is past.
REVIEW_SINCE = SearchAttributeKey.for_datetime("DocpipeReviewSince")
REVIEW_DEADLINE = SearchAttributeKey.for_datetime("DocpipeReviewDeadline")
REVIEW_OVERDUE = SearchAttributeKey.for_bool("DocpipeReviewOverdue")

ALL: tuple[SearchAttributeKey, ...] = (  # type: ignore[type-arg]
    STATUS,
    BUCKET,
    OBJECT_KEY,
    REASONS,
    PAGE_COUNT,
    PAGES_CHECKED,
    REVIEW_SINCE,
    REVIEW_DEADLINE,
    REVIEW_OVERDUE,
)

# Values of STATUS.
CHECKING, PASSED, REVIEW, REJECTED = "checking", "passed", "review", "rejected"
# The check could not be completed (infrastructure kept failing); see the workflow failure.
FAILED = "failed"
STATUS_BY_VERDICT = {"pass": PASSED, "review": REVIEW, "reject": REJECTED}
# A review verdict that waits for a reviewer's decision; then what was decided, or that a
# newer check of the same document took over.
AWAITING_REVIEW, APPROVED, SUPERSEDED = "awaiting_review", "approved", "superseded"
STATUS_BY_DECISION = {"pass": APPROVED, "reject": REJECTED}


def _starting_pairs(request: CheckRequest) -> list[SearchAttributePair[Any]]:
    document = request.document
    return [
        SearchAttributePair(STATUS, CHECKING),
        SearchAttributePair(BUCKET, document.bucket),
        SearchAttributePair(
            OBJECT_KEY, labels.object_key_value(document.key, request.hash_object_key)
        ),
        SearchAttributePair(PAGES_CHECKED, 0),
    ]


def at_start(request: CheckRequest) -> TypedSearchAttributes:
    """A check's search attributes as it starts: given to the start, so that the workflow
    need not set them (one command fewer per check)."""
    return TypedSearchAttributes(_starting_pairs(request))


def starting(request: CheckRequest) -> list[SearchAttributeUpdate[Any]]:
    """The same, as the workflow sets them when its start did not."""
    return [pair.key.value_set(pair.value) for pair in _starting_pairs(request)]
