"""The ``tools.run`` activity: runs one approved tool call, at most once, and remembers its result.

The result is cached by tool-call id before the activity returns, so a retry after a worker crash
returns the first result instead of running the tool twice. A tool that is not idempotent (a
command, a commit, a restart) is also *at most once* while it runs: a ``started`` row is written
just before its side effect begins, so a retry after its worker died mid-run (or after its
activity timed out) tells the model it was interrupted instead of running it again. Idempotent
tools (reads, a write of the same bytes) are simply run again.

Arguments arrive with payload markers where the model wrote something long (``store/payloads``);
they are resolved here, in the activity, never in history. Outputs leave capped and by reference
(``output.py``). Sandbox tools go through ``SandboxManager``; host tools (read-only Docker status
and logs, restart) through the Docker SDK on the worker; nothing ever runs a host shell.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeat import heartbeating
from activities.sandbox import SandboxManager
from activities.tools import docker_host, workspace
from activities.tools.context import ToolContext
from activities.tools.operands import InvalidArguments
from activities.tools.output import ToolOutputs
from models.payloads import PayloadRef
from models.tools import ToolCallInput, ToolResult, ToolSpec
from store.actions import STARTED, ActionStore
from store.payloads import PayloadMissing, PayloadStore

Tool = Callable[[ToolCallInput, ToolContext], Awaitable[ToolResult]]

INTERRUPTED = (
    "interrupted: this call started but its run was lost (its worker stopped, or it outlived its "
    "activity timeout) and it was not run again, so that it cannot happen twice. Check what it did "
    "(git status, list_directory…) before you call it again."
)


class ToolActivities:
    def __init__(
        self, sandbox: SandboxManager | None, docker_client, actions: ActionStore, payloads: PayloadStore,
        host_queue: str | None = None, worker_tools: dict[str, Tool] | None = None,
    ) -> None:
        """``host_queue``: the queue only this worker's Docker host serves; results carry it so
        the conversation's later calls come back to the host holding its workspace.
        ``worker_tools``: tools run on the worker, not in a sandbox (``create_plan``)."""
        self._sandbox = sandbox
        self._actions = actions
        self._payloads = payloads
        self._outputs = ToolOutputs(payloads)
        self._host_queue = host_queue
        self._tools: dict[str, Tool] = {}
        if sandbox is not None:
            self._tools.update(workspace.tools(sandbox))
        if docker_client is not None:
            self._tools.update(docker_host.tools(docker_client))
        self._tools.update(worker_tools or {})  # tools on the worker itself, e.g. ``create_plan``

    @activity.defn(name="tools.run")
    async def run(self, spec: ToolSpec, call: ToolCallInput) -> ToolResult:
        earlier = await self._earlier_result(spec, call)
        if earlier is not None:
            return earlier
        tool = self._tools.get(spec.name)
        if tool is None:
            raise ApplicationError(
                f"tool {spec.name!r} is not available on this worker (is the Docker engine reachable?)",
                type="ToolUnavailable",
            )
        call = await self._resolved(call)
        context = ToolContext(timeout_s=spec.command_timeout_s(call.arguments),
                              on_start=None if spec.idempotent else self._marker(spec, call))
        started = time.monotonic()
        async with heartbeating():
            result = await tool(call, context)
        result.duration_ms = result.duration_ms or (time.monotonic() - started) * 1000
        return await self._keep(spec, call, result)

    @activity.defn(name="tools.diff")
    async def diff(self, spec: ToolSpec, call: ToolCallInput) -> PayloadRef | None:
        """The first half of ``review_diff``: the workspace's whole diff, stored; None when empty."""
        if self._sandbox is None:
            raise ApplicationError("no sandbox on this worker (is the Docker engine reachable?)",
                                   type="ToolUnavailable")
        async with heartbeating():
            text = await workspace.full_diff(self._sandbox, call.conversation_id, call.arguments.get("staged") is True,
                                             spec.command_timeout_s(call.arguments))
        if not text.strip():
            return None
        return await asyncio.to_thread(self._payloads.put, call.conversation_id, text)

    async def _earlier_result(self, spec: ToolSpec, call: ToolCallInput) -> ToolResult | None:
        """The cached result of an earlier attempt, or the interruption of one that started."""
        state, cached = await asyncio.to_thread(self._actions.run_state, call.conversation_id, call.tool_call_id)
        if state is None or (state == STARTED and spec.idempotent):
            return None
        if state != STARTED:
            activity.logger.info("tool call %s already ran; returning its result", call.tool_call_id)
            result = ToolResult.model_validate(cached)  # keeps the host queue of the host that ran it
            result.host_queue = result.host_queue or self._host_queue
            return result
        activity.logger.warning("tool call %s started before and was lost; not running it again", call.tool_call_id)
        return await self._keep(spec, call, ToolResult(success=False, error=INTERRUPTED))

    async def _resolved(self, call: ToolCallInput) -> ToolCallInput:
        try:
            arguments = await asyncio.to_thread(self._payloads.resolve, call.conversation_id, call.arguments)
        except PayloadMissing as err:
            raise InvalidArguments(f"an argument refers to content that cannot be used: {err}") from None
        return call.model_copy(update={"arguments": arguments})

    def _marker(self, spec: ToolSpec, call: ToolCallInput) -> Callable[[], None]:
        """Records, once, that the call's side effect begins (called from the sandbox's thread)."""
        marked: list[bool] = []

        def mark() -> None:
            if marked:
                return
            if not self._actions.mark_started(call.conversation_id, call.tool_call_id, spec.name):
                raise ApplicationError(f"another attempt of tool call {call.tool_call_id} already started it",
                                       type="AlreadyStarted", non_retryable=True)
            marked.append(True)

        return mark

    async def _keep(self, spec: ToolSpec, call: ToolCallInput, result: ToolResult) -> ToolResult:
        """Cap and store the output, then cache the result under the call's id."""
        result = await asyncio.to_thread(self._outputs.finish, call.conversation_id, result)
        result.host_queue = self._host_queue
        await asyncio.to_thread(
            self._actions.cache_result, call.conversation_id, call.tool_call_id, spec.name, result.model_dump()
        )
        return result
