"""Host Docker tools, run by the worker through the Docker SDK (the sandbox never gets the socket).

Read-only status and logs, and a restart that the catalogue marks as always needing a person.
"""

from __future__ import annotations

import asyncio

import docker.errors
from temporalio.exceptions import ApplicationError

from models.tools import ToolCallInput, ToolResult

MAX_LOG_CHARS = 30_000


def tools(client) -> dict:
    async def docker_status(call: ToolCallInput) -> ToolResult:
        containers = await asyncio.to_thread(client.containers.list, all=True)
        lines = [f"{c.name}\t{c.status}\t{', '.join(c.image.tags) or c.image.short_id}" for c in containers]
        return ToolResult(success=True, output="\n".join(lines) or "(no containers)")

    async def docker_logs(call: ToolCallInput) -> ToolResult:
        container = await _container(client, call.arguments["container"])
        tail = call.arguments.get("tail", 200)
        logs = (await asyncio.to_thread(container.logs, tail=tail)).decode(errors="replace")
        return ToolResult(success=True, output=logs[-MAX_LOG_CHARS:], truncated=len(logs) > MAX_LOG_CHARS)

    async def docker_restart(call: ToolCallInput) -> ToolResult:
        container = await _container(client, call.arguments["container"])
        await asyncio.to_thread(container.restart, timeout=30)
        await asyncio.to_thread(container.reload)
        return ToolResult(success=True, output=f"{container.name} restarted; status {container.status}")

    return {"docker_status": docker_status, "docker_logs": docker_logs, "docker_restart": docker_restart}


async def _container(client, name: str):
    try:
        return await asyncio.to_thread(client.containers.get, name)
    except docker.errors.NotFound:
        raise ApplicationError(f"no container named {name!r} on this host", type="InvalidArguments") from None
