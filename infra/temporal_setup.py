"""Prepare a Temporal namespace for docpipe: register its search attributes, and tell
which of them a namespace lacks (before a process starts checks, and when Temporal
refuses a start).

Safe to repeat: attributes already registered with the right type are left alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.service import RPCStatusCode

from infra.backoff import Backoff
from infra.backoff import until_set
from pipeline import search_attributes

log = logging.getLogger(__name__)

# Answers that say the caller may not list search attributes (a namespace-scoped API key,
# a server that does not offer it): nothing to check then.
_NOT_LISTABLE = frozenset(
    {RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED, RPCStatusCode.UNIMPLEMENTED}
)


class SearchAttributeConflictError(RuntimeError):
    """A search attribute exists in the namespace with another type."""


class SearchAttributesMissingError(RuntimeError):
    """The namespace lacks docpipe's search attributes (or holds one with another type),
    say since an operator removed one while the process ran: Temporal refuses every start
    alike until ``docpipe temporal setup`` has run."""


async def missing_search_attributes(
    client: Client, namespace: str
) -> dict[str, IndexedValueType.ValueType]:
    """docpipe's search attributes that the namespace lacks, with the type each needs.

    Raises:
        SearchAttributeConflictError: a name is taken with a different type.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    existing = dict(listed.custom_attributes)
    missing: dict[str, IndexedValueType.ValueType] = {}
    for key in search_attributes.ALL:
        wanted = IndexedValueType.ValueType(int(key.indexed_value_type))
        if key.name not in existing:
            missing[key.name] = wanted
        elif existing[key.name] != wanted:
            raise SearchAttributeConflictError(
                f"search attribute {key.name} exists in namespace {namespace!r} with "
                f"type {IndexedValueType.Name(existing[key.name])}, docpipe needs "
                f"{IndexedValueType.Name(wanted)}"
            )
    return missing


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register docpipe's search attributes that the namespace lacks.

    Returns:
        The names that were added (empty when all were already there).

    Raises:
        SearchAttributeConflictError: a name is taken with a different type.
    """
    missing = await missing_search_attributes(client, namespace)
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    return sorted(missing)


async def search_attributes_registered(
    client: Client, namespace: str, stop: asyncio.Event, backoff: Backoff
) -> bool:
    """Wait until the namespace has docpipe's search attributes, with a log line per try;
    False if ``stop`` is set meanwhile. Without them every start is refused alike: a
    process that starts checks waits for ``docpipe temporal setup`` instead.

    Raises:
        SearchAttributeConflictError: a name is taken with a different type.
    """
    async for attempt in backoff.attempts(wait=until_set(stop)):
        try:
            missing = await missing_search_attributes(client, namespace)
        except RPCError as exc:
            if exc.status in _NOT_LISTABLE:
                log.warning(
                    "cannot list the search attributes of namespace %s (%s): not checked",
                    namespace,
                    exc.status.name,
                )
                return True
            log.warning(
                "listing search attributes failed: %s; retry in %.1f s", exc, attempt.delay_s
            )
            continue
        if not missing:
            return True
        log.error("%s; retry in %.1f s", _lacking(namespace, missing), attempt.delay_s)
    return False


def _lacking(namespace: str, missing: Iterable[str]) -> str:
    """What a namespace without some of docpipe's search attributes lacks, and the cure."""
    return (
        f"namespace {namespace} lacks docpipe's search attributes "
        f"{', '.join(sorted(missing))}: run `docpipe temporal setup`"
    )


async def check_search_attributes(client: Client, namespace: str) -> None:
    """Check, after Temporal refused a start, whether the namespace is what refused it.

    Raises:
        SearchAttributesMissingError: the namespace lacks docpipe's search attributes, or
            holds one with another type. Nothing is raised when it has them, or when they
            cannot be listed (then the refusal is the request's).
    """
    try:
        missing = await missing_search_attributes(client, namespace)
    except SearchAttributeConflictError as exc:
        # `docpipe temporal setup` cannot mend this one: the attribute must go first.
        raise SearchAttributesMissingError(
            f"{exc}: remove it, then run `docpipe temporal setup`"
        ) from None
    except RPCError:
        return
    if missing:
        raise SearchAttributesMissingError(_lacking(namespace, missing))
