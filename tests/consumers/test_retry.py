"""The intake's retries: outages waited out (and counted while they last), refusals given
up after their tries, bugs raised at once. No test waits: the waits are recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from botocore.exceptions import ClientError
from botocore.exceptions import EndpointConnectionError
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from consumers.events import Rejected
from consumers.metrics import IntakeCounters
from consumers.metrics import IntakeMetrics
from consumers.retry import TRANSIENT
from consumers.retry import Retries
from consumers.retry import Verdict
from consumers.retry import classify_dead_letter
from consumers.retry import classify_head
from consumers.retry import classify_start
from infra.backoff import Backoff
from infra.temporal_setup import SearchAttributesMissingError


class _Waits:
    """Records every wait instead of sleeping, and what the retries looked like then."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.outages_meanwhile: list[int] = []
        self.retries: Retries | None = None

    async def wait(self, seconds: float) -> bool:
        self.seconds.append(seconds)
        assert self.retries is not None
        self.outages_meanwhile.append(self.retries.outages)
        return True


class _Failing:
    """An action that raises the given errors in turn, then returns "done"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class _Outage(Exception):
    pass


class _Refusal(Exception):
    pass


def _classify(what: str, exc: BaseException) -> Verdict:
    if isinstance(exc, _Outage):
        return TRANSIENT
    if isinstance(exc, _Refusal):
        return Rejected("start_rejected", f"{what}: refused")
    return None


def _retries(waits: _Waits, counters: IntakeCounters, metrics: IntakeMetrics) -> Retries:
    retries = Retries(
        backoff=Backoff(initial_s=1.0, max_s=4.0),
        refusal_limit=3,
        counters=counters,
        metrics=metrics,
        wait=waits.wait,
        jitter=lambda: 1.0,  # the whole nominal delay: 1, 2, 4, 4, ...
    )
    waits.retries = retries
    return retries


def _waited(metrics: IntakeMetrics, step: str) -> tuple[float, float]:
    """(count, sum) of the retry-wait histogram for ``step``."""
    samples = {
        s.name: s.value
        for family in metrics.retry_wait.collect()
        for s in family.samples
        if s.labels.get("step") == step
    }
    return samples.get("docpipe_intake_retry_wait_seconds_count", 0.0), samples.get(
        "docpipe_intake_retry_wait_seconds_sum", 0.0
    )


@pytest.fixture
def waits() -> _Waits:
    return _Waits()


@pytest.fixture
def counters() -> IntakeCounters:
    return IntakeCounters()


@pytest.fixture
def metrics() -> IntakeMetrics:
    return IntakeMetrics()


async def test_a_step_that_works_at_once_is_neither_retried_nor_timed(
    waits: _Waits, counters: IntakeCounters, metrics: IntakeMetrics
) -> None:
    action = _Failing()
    result = await _retries(waits, counters, metrics).run("start", "start x", action, _classify)
    assert result == "done"
    assert action.calls == 1
    assert waits.seconds == []
    assert counters.retries == 0
    assert _waited(metrics, "start") == (0.0, 0.0)


async def test_an_outage_is_waited_out_on_the_backoff_without_limit(
    waits: _Waits, counters: IntakeCounters, metrics: IntakeMetrics
) -> None:
    action = _Failing(*[_Outage() for _ in range(6)])
    retries = _retries(waits, counters, metrics)
    assert await retries.run("head", "HEAD s3://b/k", action, _classify) == "done"
    assert action.calls == 7  # far more tries than the refusal limit
    assert waits.seconds == [1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert counters.retries == 6
    assert _waited(metrics, "head") == (1.0, 19.0)


async def test_a_step_in_an_outage_counts_as_one_while_it_waits_and_no_more_after(
    waits: _Waits, counters: IntakeCounters, metrics: IntakeMetrics
) -> None:
    retries = _retries(waits, counters, metrics)
    await retries.run("start", "start x", _Failing(_Outage(), _Outage()), _classify)
    assert waits.outages_meanwhile == [1, 1]
    assert retries.outages == 0


async def test_a_refusal_is_given_up_after_its_tries_as_the_dead_letter(
    waits: _Waits, counters: IntakeCounters, metrics: IntakeMetrics
) -> None:
    action = _Failing(*[_Refusal() for _ in range(10)])
    retries = _retries(waits, counters, metrics)
    result = await retries.run("start", "start x", action, _classify)
    assert result == Rejected("start_rejected", "start x: refused")
    assert action.calls == 3
    assert waits.seconds == [1.0, 2.0]  # no wait after the last try
    assert counters.retries == 2
    # One message's refusal is nobody else's problem: fetching never pauses for it.
    assert waits.outages_meanwhile == [0, 0]


async def test_a_refusal_after_an_outage_ends_the_outage(
    waits: _Waits, counters: IntakeCounters, metrics: IntakeMetrics
) -> None:
    action = _Failing(_Outage(), _Refusal(), _Outage())
    retries = _retries(waits, counters, metrics)
    assert await retries.run("start", "start x", action, _classify) == "done"
    assert waits.outages_meanwhile == [1, 0, 1]
    assert retries.outages == 0


async def test_a_failure_nobody_classifies_is_raised_at_once(
    waits: _Waits, counters: IntakeCounters, metrics: IntakeMetrics
) -> None:
    action = _Failing(_Outage(), KeyError("a bug"))
    retries = _retries(waits, counters, metrics)
    with pytest.raises(KeyError):
        await retries.run("start", "start x", action, _classify)
    assert action.calls == 2
    assert counters.retries == 1
    assert retries.outages == 0, "a step that raised waits out nothing"
    assert _waited(metrics, "start") == (1.0, 1.0)


async def test_a_step_cancelled_while_it_waits_leaves_the_outage(
    counters: IntakeCounters, metrics: IntakeMetrics
) -> None:
    waiting = asyncio.Event()

    async def wait_for_ever(seconds: float) -> bool:
        waiting.set()
        await asyncio.Event().wait()
        return True

    retries = Retries(
        backoff=Backoff(initial_s=1.0, max_s=4.0),
        refusal_limit=3,
        counters=counters,
        metrics=metrics,
        wait=wait_for_ever,
    )
    step = asyncio.create_task(retries.run("start", "start x", _Failing(_Outage()), _classify))
    await asyncio.wait_for(waiting.wait(), 10)
    assert retries.outages == 1
    step.cancel()
    with pytest.raises(asyncio.CancelledError):
        await step
    assert retries.outages == 0


# --- what each step's failures mean ---------------------------------------------------------


def _s3_error(status: int, code: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "no"}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "HeadObject")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (_s3_error(403, "AccessDenied"), "s3_access_denied"),
        (_s3_error(400, "AuthorizationHeaderMalformed"), "s3_request_rejected"),
    ],
)
def test_a_head_s3_refuses_is_the_dead_letter_it_becomes(error: ClientError, reason: str) -> None:
    verdict = classify_head("HEAD s3://documents/a.pdf", error)
    assert isinstance(verdict, Rejected)
    assert verdict.reason == reason
    assert verdict.message.startswith("HEAD s3://documents/a.pdf: ")
    assert str(error.response["ResponseMetadata"]["HTTPStatusCode"]) in verdict.message


@pytest.mark.parametrize(
    "error",
    [
        _s3_error(503, "SlowDown"),
        _s3_error(500, "InternalError"),
        EndpointConnectionError(endpoint_url="x"),
    ],
)
def test_a_head_s3_cannot_answer_now_is_an_outage(error: Exception) -> None:
    assert classify_head("HEAD", error) == TRANSIENT


def test_a_start_temporal_refuses_for_good_names_the_status() -> None:
    error = RPCError("task queue too long", RPCStatusCode.INVALID_ARGUMENT, b"")
    verdict = classify_start("start docpipe/documents/a.pdf@v1", error)
    assert verdict == Rejected(
        "start_rejected", "start docpipe/documents/a.pdf@v1: INVALID_ARGUMENT: task queue too long"
    )


@pytest.mark.parametrize(
    "status",
    [RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAUTHENTICATED],
)
def test_a_start_temporal_cannot_take_now_is_an_outage(status: RPCStatusCode) -> None:
    assert classify_start("start", RPCError("down", status, b"")) == TRANSIENT


def test_a_namespace_without_docpipes_search_attributes_is_an_outage() -> None:
    missing = SearchAttributesMissingError("namespace default lacks DocpipeStatus")
    assert classify_start("start", missing) == TRANSIENT


def test_a_dead_letter_write_is_retried_on_any_broker_error() -> None:
    assert classify_dead_letter("dead-letter", KafkaConnectionError()) == TRANSIENT


@pytest.mark.parametrize("classify", [classify_head, classify_start, classify_dead_letter])
def test_failures_that_are_not_the_steps_own_are_bugs(
    classify: Callable[[str, BaseException], Verdict],
) -> None:
    assert classify("step", ValueError("a bug")) is None
