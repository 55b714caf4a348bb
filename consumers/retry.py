"""The intake's retries of one step of one message: outages waited out, refusals given up.

Every step that talks to S3, Temporal or the broker (the HEAD of an object, the workflow
start, the dead-letter write) runs through ``Retries.run``. What a failure means is
decided first, by the step's classifier (``pipeline.failures`` sorts the kinds):

- an outage (``TRANSIENT``): retried without limit, on the project's one backoff
  (``infra.backoff``); while any message waits one out, ``Retries.outages`` is non-zero
  and the intake pauses fetching, so that a failing Temporal is not fed more work;
- a refusal (a ``Rejected``): this message's problem, not everyone's; tried
  ``DOCPIPE_KAFKA_PERMANENT_FAILURE_ATTEMPTS`` times without pausing anything, then
  returned as the message's dead letter;
- anything else (``None``): a bug, raised.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Final
from typing import Literal
from typing import TypeVar

from aiokafka.errors import KafkaError
from temporalio.service import RPCError

from consumers.events import Rejected
from consumers.metrics import IntakeCounters
from consumers.metrics import IntakeMetrics
from infra.backoff import Backoff
from infra.backoff import Wait
from infra.backoff import sleep
from infra.temporal_setup import SearchAttributesMissingError
from pipeline.failures import S3Failure
from pipeline.failures import classify_s3
from pipeline.failures import describe_s3
from pipeline.failures import temporal_refused
from pipeline.reasons import Reason

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT: Final = "transient"
# What a step's failure is: worth waiting out, refused for good (the dead letter it
# becomes), or none of ours (None: a bug, raised).
Verdict = Literal["transient"] | Rejected | None
# Classifies a failure of the step described by the first argument.
Classifier = Callable[[str, BaseException], Verdict]
# Retries logged as warnings: the first, then every tenth (the counters have them all).
_LOG_EVERY = 10


@dataclass(kw_only=True)
class _StepState:
    """Where the retries of one step of one message stand."""

    refusals: int = 0
    # Counted in ``Retries.outages`` right now.
    in_outage: bool = False


@dataclass(kw_only=True)
class Retries:
    """Runs the intake's steps until they succeed or are refused for good.

    Attributes:
        backoff: the delays between tries.
        refusal_limit: tries of a refused step before it is given up.
        counters: where retries are counted.
        metrics: where the time a step waited on retries is observed.
        wait: how to wait between tries (tests record instead of sleeping).
        jitter: draws a number in [0, 1) per try.
    """

    backoff: Backoff
    refusal_limit: int
    counters: IntakeCounters
    metrics: IntakeMetrics
    wait: Wait = sleep
    jitter: Callable[[], float] = random.random
    _outages: int = field(default=0, init=False)

    @property
    def outages(self) -> int:
        """Steps waiting out an outage right now (fetching pauses while there are any)."""
        return self._outages

    async def run(
        self, step: str, what: str, action: Callable[[], Awaitable[T]], classify: Classifier
    ) -> T | Rejected:
        """Run ``action`` until it succeeds (its result) or is refused for good (the
        ``Rejected`` its classifier made of the last refusal).

        Args:
            step: the step's name, for the retry-wait metric (``head``, ``start``, ...).
            what: the step of this message, for logs and dead-letter messages.

        Raises:
            Exception: whatever ``action`` raised that ``classify`` does not know.
        """
        state = _StepState()
        attempts = self.backoff.attempts(wait=self.wait, jitter=self.jitter)
        try:
            async for attempt in attempts:
                try:
                    result = await action()
                except Exception as exc:
                    verdict = classify(what, exc)
                    if verdict is None:
                        raise
                    if isinstance(verdict, Rejected):
                        self._leave_outage(state)
                        state.refusals += 1
                        if state.refusals >= self.refusal_limit:
                            log.warning(
                                "%s refused %d times: %s", what, state.refusals, verdict.message
                            )
                            return verdict
                    else:
                        self._enter_outage(state)
                    self.counters.retries += 1
                    level = logging.WARNING if attempt.number % _LOG_EVERY == 1 else logging.DEBUG
                    log.log(
                        level,
                        "%s failed (%d), retry in %.1f s: %r",
                        what,
                        attempt.number,
                        attempt.delay_s,
                        exc,
                    )
                    continue
                if attempt.number > 1:
                    log.info("%s succeeded after %d retries", what, attempt.number - 1)
                return result
        finally:
            self._leave_outage(state)
            if attempts.waited_s:
                self.metrics.retry_wait.labels(step).observe(attempts.waited_s)
        # The intake stops a step by cancelling it: its waits never end the loop.
        raise AssertionError(f"{what}: the retries ended without a result")

    def _enter_outage(self, state: _StepState) -> None:
        if not state.in_outage:
            state.in_outage = True
            self._outages += 1

    def _leave_outage(self, state: _StepState) -> None:
        if state.in_outage:
            state.in_outage = False
            self._outages -= 1


def classify_head(what: str, exc: BaseException) -> Verdict:
    """An S3 HEAD's failure: a 403 or another 4xx refuses the object, the rest waits."""
    kind = classify_s3(exc)
    if kind is S3Failure.ACCESS_DENIED:
        return Rejected(Reason.S3_ACCESS_DENIED, f"{what}: {describe_s3(exc)}")
    if kind is S3Failure.REJECTED:
        return Rejected(Reason.S3_REQUEST_REJECTED, f"{what}: {describe_s3(exc)}")
    return TRANSIENT if kind is not None else None


def classify_start(what: str, exc: BaseException) -> Verdict:
    """A workflow start's failure: Temporal refusing it for good, or an outage (a namespace
    without docpipe's search attributes is one: every start would be refused alike)."""
    if isinstance(exc, SearchAttributesMissingError):
        return TRANSIENT
    refused = temporal_refused(exc)
    if refused and isinstance(exc, RPCError):
        return Rejected(Reason.START_REJECTED, f"{what}: {exc.status.name}: {exc.message}"[:500])
    return TRANSIENT if refused is not None else None


def classify_dead_letter(what: str, exc: BaseException) -> Verdict:
    """A dead-letter write's failure: written until it works, losing the message is no
    option."""
    return TRANSIENT if isinstance(exc, KafkaError) else None
