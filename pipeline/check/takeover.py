"""A newer check of a document takes over from its older checks that wait for review (or
still check): they end as superseded by it. Run once the newer check is reported, by the
bulk re-check for its re-checks and by a deliberate re-check (``docpipe reprocess``) for
itself: a newer check that fails, or is cancelled, before its report takes nothing from
the checks that wait."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.workflow import ActivityConfig

from pipeline.check.heartbeat import Heartbeater
from pipeline.check.publish import OUTLAST_OUTAGES
from pipeline.review_visibility import supersede_waiting

# One visibility query and a signal per waiting check of the document: seconds. Once the
# check is reported it waits out outages, as its results event does; it heartbeats, so
# that a killed worker's is retried within 30 s.
TAKE_OVER_AT_REPORT = OUTLAST_OUTAGES | ActivityConfig(heartbeat_timeout=timedelta(seconds=30))


@dataclass(frozen=True)
class SupersedeInput:
    """Input of ``supersede_waiting``: a document's check, and its re-check that takes
    over from the checks of the document that wait for review."""

    check_workflow_id: str
    recheck_workflow_id: str


@dataclass(frozen=True)
class SupersededChecks:
    """What ``supersede_waiting`` told: the checks that end as superseded."""

    workflow_ids: list[str]


class TakeoverActivities:
    """The activity that tells a document's older checks that a newer one took over.

    Args:
        client: the Temporal client that lists and signals them.
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="supersede_waiting")
    async def supersede_waiting(self, request: SupersedeInput) -> SupersededChecks:
        """The document's checks that started before the re-check and wait for review or
        still check (its check, its earlier re-checks) end as superseded by it."""
        async with Heartbeater():
            told = await supersede_waiting(
                self._client, request.check_workflow_id, request.recheck_workflow_id
            )
        return SupersededChecks(workflow_ids=told)
