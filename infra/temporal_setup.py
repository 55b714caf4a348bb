"""Prepare a Temporal namespace for docpipe: register its search attributes.

Safe to repeat: attributes already registered with the right type are left alone.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from pipeline import search_attributes


class SearchAttributeConflictError(RuntimeError):
    """A search attribute exists in the namespace with another type."""


async def register_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register docpipe's search attributes that the namespace lacks.

    Returns:
        The names that were added (empty when all were already there).

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
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    return sorted(missing)
