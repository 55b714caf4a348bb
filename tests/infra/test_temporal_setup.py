"""How a process that starts checks waits for the namespace's search attributes, and tells
a refused start that they are missing, against a stand-in of the operator service (the
real server: ``tests/integration``)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesResponse
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from infra.backoff import Backoff
from infra.temporal_setup import SearchAttributesMissingError
from infra.temporal_setup import check_search_attributes
from infra.temporal_setup import search_attributes_registered
from pipeline import search_attributes

QUICK = Backoff(initial_s=0.01, max_s=0.01)


def _client(*answers: ListSearchAttributesResponse | RPCError) -> Any:
    """A client whose ``list_search_attributes`` gives ``answers`` in turn (the last
    again and again)."""
    left = list(answers)

    async def list_search_attributes(request: Any) -> ListSearchAttributesResponse:
        answer = left.pop(0) if len(left) > 1 else left[0]
        if isinstance(answer, RPCError):
            raise answer
        return answer

    return SimpleNamespace(
        operator_service=SimpleNamespace(list_search_attributes=list_search_attributes)
    )


def _listing(*names: str) -> ListSearchAttributesResponse:
    types = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in search_attributes.ALL
    }
    return ListSearchAttributesResponse(custom_attributes={n: types[n] for n in names})


EVERY = tuple(key.name for key in search_attributes.ALL)


async def test_it_waits_while_any_is_missing_and_names_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client: Client = _client(_listing(), _listing(*EVERY[1:]), _listing(*EVERY))
    assert await search_attributes_registered(client, "ns", asyncio.Event(), QUICK)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(said) == 2
    assert all(name in said[0] for name in EVERY)
    assert EVERY[0] in said[1] and EVERY[1] not in said[1]


async def test_an_outage_while_listing_is_waited_out() -> None:
    unavailable = RPCError("down", RPCStatusCode.UNAVAILABLE, b"")
    client: Client = _client(unavailable, unavailable, _listing(*EVERY))
    assert await search_attributes_registered(client, "ns", asyncio.Event(), QUICK)


@pytest.mark.parametrize(
    "status",
    [RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.UNIMPLEMENTED],
)
async def test_credentials_that_may_not_list_them_leave_them_unchecked(
    status: RPCStatusCode, caplog: pytest.LogCaptureFixture
) -> None:
    client: Client = _client(RPCError("no", status, b""))
    assert await search_attributes_registered(client, "ns", asyncio.Event(), QUICK)
    assert any("not checked" in r.getMessage() for r in caplog.records)


async def test_a_stop_ends_the_wait() -> None:
    stop = asyncio.Event()
    stop.set()
    assert not await search_attributes_registered(
        client=_client(_listing()), namespace="ns", stop=stop, backoff=QUICK
    )


# --- after a refused start ---------------------------------------------------------------


async def test_a_refused_start_in_a_namespace_that_has_them_is_the_requests() -> None:
    await check_search_attributes(_client(_listing(*EVERY)), "ns")


@pytest.mark.parametrize("status", [RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAVAILABLE])
async def test_a_refused_start_whose_namespace_cannot_be_listed_is_the_requests(
    status: RPCStatusCode,
) -> None:
    await check_search_attributes(_client(RPCError("no", status, b"")), "ns")


async def test_a_refused_start_in_a_namespace_without_them_says_which_are_missing() -> None:
    with pytest.raises(SearchAttributesMissingError) as raised:
        await check_search_attributes(_client(_listing(*EVERY[2:])), "ns")
    assert str(raised.value) == (
        f"namespace ns lacks docpipe's search attributes {', '.join(sorted(EVERY[:2]))}: "
        "run `docpipe temporal setup`"
    )


async def test_a_refused_start_in_a_namespace_with_one_of_another_type_says_which() -> None:
    listing = _listing(*EVERY)
    wanted = listing.custom_attributes[EVERY[0]]
    other = next(t for t in IndexedValueType.values() if t not in (0, wanted))
    listing.custom_attributes[EVERY[0]] = other
    with pytest.raises(SearchAttributesMissingError) as raised:
        await check_search_attributes(_client(listing), "ns")
    assert f"{EVERY[0]} exists in namespace 'ns' with type" in str(raised.value)
    assert str(raised.value).endswith(": remove it, then run `docpipe temporal setup`")
