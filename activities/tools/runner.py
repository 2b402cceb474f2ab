"""The ``tools.run`` activity: runs one approved tool call and remembers its result.

The result is cached by tool-call id before the activity returns, so a retry after a worker crash
returns the first result instead of running the tool twice (a commit, a write). Sandbox tools go
through ``SandboxManager``; host tools (read-only Docker status and logs, restart) through the
Docker SDK on the worker; nothing ever runs a host shell.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.tools import docker_host, workspace
from activities.sandbox import SandboxManager
from models.tools import ToolCallInput, ToolResult, ToolSpec
from store.actions import ActionStore

Tool = Callable[[ToolCallInput], Awaitable[ToolResult]]


class ToolActivities:
    def __init__(
        self, sandbox: SandboxManager | None, docker_client, actions: ActionStore, host_queue: str | None = None
    ) -> None:
        """``host_queue``: the queue only this worker's Docker host serves; results carry it so
        the conversation's later calls come back to the host holding its workspace."""
        self._actions = actions
        self._host_queue = host_queue
        self._tools: dict[str, Tool] = {}
        if sandbox is not None:
            self._tools.update(workspace.tools(sandbox))
        if docker_client is not None:
            self._tools.update(docker_host.tools(docker_client))

    @activity.defn(name="tools.run")
    async def run(self, spec: ToolSpec, call: ToolCallInput) -> ToolResult:
        cached = await asyncio.to_thread(self._actions.cached_result, call.conversation_id, call.tool_call_id)
        if cached is not None:
            activity.logger.info("tool call %s already ran; returning its result", call.tool_call_id)
            result = ToolResult.model_validate(cached)  # keeps the host queue of the host that ran it
            result.host_queue = result.host_queue or self._host_queue
            return result
        tool = self._tools.get(spec.name)
        if tool is None:
            raise ApplicationError(
                f"tool {spec.name!r} is not available on this worker (is the Docker engine reachable?)",
                type="ToolUnavailable",
            )
        started = time.monotonic()
        result = await tool(call)
        result.duration_ms = result.duration_ms or (time.monotonic() - started) * 1000
        result.host_queue = self._host_queue
        await asyncio.to_thread(
            self._actions.cache_result, call.conversation_id, call.tool_call_id, spec.name, result.model_dump()
        )
        return result
