"""The ``progress`` query's contract: its name, and what a document check answers to it.

The workflows answer it and the status views read it (``result_type=CheckProgress``); the
names and the JSON stay as they are, for clients of every version.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The query every docpipe workflow answers with how far it is (``CheckProgress``,
# ``RecheckProgress``).
PROGRESS_QUERY = "progress"


class CheckStep(StrEnum):
    """Where a check is: the step its ``progress`` query names, and the one a failure names.

    The values are the activities' names (``starting`` and ``done`` aside).
    """

    STARTING = "starting"
    CHECK_DOCUMENT = "check_document"
    # Checks begun before check_document inspect first.
    INSPECT = "inspect"
    CHECK_PAGES = "check_pages"
    FINALIZE = "finalize"
    PUBLISH_RESULT = "publish_result"
    # Waiting for a reviewer's decision, then recording and announcing it.
    AWAIT_REVIEW = "await_review"
    DONE = "done"


@dataclass(frozen=True, kw_only=True)
class CheckProgress:
    """What ``DocumentCheckWorkflow`` answers to the ``progress`` query.

    The field names are the query's JSON: clients of every version read them, so they stay.
    """

    step: CheckStep
    page_count: int = 0
    # While pages are checked, this moves with the attempt's ``pages_progress`` signals.
    pages_checked: int = 0
    # The page-checking attempt, and the page it started at (past 1 when it resumed).
    attempt: int = 0
    resumed_from_page: int = 0
