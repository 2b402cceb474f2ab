"""Connecting to Temporal the one way Daemonflow does: pydantic converter, registered attributes."""

from __future__ import annotations

import logging

from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from config.settings import Settings
from workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

log = logging.getLogger(__name__)


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client with the tracing interceptor: spans made around its calls (an API request's, say)
    travel in Temporal headers into the workflow and its activities. Workers built on this client
    inherit the interceptor. ``runtime`` carries the worker's Temporal metrics endpoint."""
    from workers.interceptors import tracing_interceptor  # imports the sandbox-safe OTel context

    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        interceptors=[tracing_interceptor()],
        runtime=runtime,
    )


async def ensure_search_attributes(client: Client, keys: tuple[SearchAttributeKey, ...] = SEARCH_ATTRIBUTES) -> None:
    """Register our search attributes if the namespace lacks them.

    A workflow that upserts an unregistered attribute is stuck on a failing task, so the worker
    checks at start. Clusters that forbid it (Temporal Cloud) need them created by an operator.
    """
    operator = client.operator_service
    existing = await operator.list_search_attributes(ListSearchAttributesRequest(namespace=client.namespace))
    known = set(existing.custom_attributes) | set(existing.system_attributes)
    missing = {k.name: int(k.indexed_value_type) for k in keys if k.name not in known}
    if not missing:
        return
    try:
        await operator.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
        log.info("registered search attributes %s", ", ".join(sorted(missing)))
    except Exception as err:  # noqa: BLE001 - any refusal gets the same advice
        raise RuntimeError(
            f"search attributes {', '.join(sorted(missing))} are not registered on namespace "
            f"{client.namespace!r} and could not be added ({err}); add them with "
            "`temporal operator search-attribute create`"
        ) from err
