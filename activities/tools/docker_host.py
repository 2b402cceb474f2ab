"""Host Docker tools, run by the worker through the Docker SDK (the sandbox never gets the socket).

Read-only status and logs, and a restart that the catalogue marks as always needing a person.
Container names are checked against Docker's own naming rule before they reach the SDK: the SDK
puts them in the engine's URL paths and leaves ``/`` unquoted.
"""

from __future__ import annotations

import asyncio

import docker.errors

from activities.tools.context import ToolContext
from activities.tools.operands import InvalidArguments, bounded_int, container_operand
from models.tools import ToolCallInput, ToolResult

MAX_LOG_CHARS = 30_000


def tools(client) -> dict:
    async def docker_status(call: ToolCallInput, context: ToolContext) -> ToolResult:
        containers = await asyncio.to_thread(client.containers.list, all=True)
        lines = [f"{c.name}\t{c.status}\t{', '.join(c.image.tags) or c.image.short_id}" for c in containers]
        return ToolResult(success=True, output="\n".join(lines) or "(no containers)")

    async def docker_logs(call: ToolCallInput, context: ToolContext) -> ToolResult:
        tail = bounded_int(call.arguments, "tail", 200, 1, 5000)
        container = await _container(client, call.arguments.get("container"))
        logs = (await asyncio.to_thread(container.logs, tail=tail)).decode(errors="replace")
        return ToolResult(success=True, output=logs[-MAX_LOG_CHARS:], truncated=len(logs) > MAX_LOG_CHARS)

    async def docker_restart(call: ToolCallInput, context: ToolContext) -> ToolResult:
        container = await _container(client, call.arguments.get("container"))
        await asyncio.to_thread(context.starting)
        await asyncio.to_thread(container.restart, timeout=30)
        await asyncio.to_thread(container.reload)
        return ToolResult(success=True, output=f"{container.name} restarted; status {container.status}")

    return {"docker_status": docker_status, "docker_logs": docker_logs, "docker_restart": docker_restart}


async def _container(client, name: object):
    name = container_operand(name)
    try:
        return await asyncio.to_thread(client.containers.get, name)
    except docker.errors.NotFound:
        raise InvalidArguments(f"no container named {name!r} on this host") from None
