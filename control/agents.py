"""Per-agent control (seed 003's admin API): one agent across all its conversations at once.

An agent's conversations — its own and its seats in channels (``<channel>--<agent>``) — all carry
``DaemonflowAgent``; visibility (``control.visibility``) lists the running ones and each gets the
signal, ``QUERY_CONCURRENCY`` at a time. The pause is also stored (``store/agent_pauses.py``), so a
conversation of the agent that starts or is revived later starts paused. A resume lifts only the
pauses that came from the agent's pause (a conversation an operator paused by itself, or a paused
channel's seat, stays paused). A channel whose agent is paused goes on without holding: the
agent's turn waits for the resume (the channel shows the seat ``paused``), like any paused seat.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from control.conversation import Conversation
from control.conversations import QUERY_CONCURRENCY, Conversations
from control.errors import ControlError
from control.visibility import ConversationFilter, ConversationItem
from models.agent_control import (
    AgentControlResult,
    AgentTaskRequest,
    AgentTaskResult,
    ConversationDebug,
    Reached,
    agent_pause_reason,
    is_agent_pause,
)
from models.conversation import ConversationInput, ConversationState, Inject
from store.agent_pauses import AgentPauseStore

LISTED = 1000
"""Running conversations of one agent reached by one call (visibility pages beyond are not)."""


class AgentControl:
    def __init__(self, conversations: Conversations, pauses: AgentPauseStore) -> None:
        self._conversations = conversations
        self._pauses = pauses

    async def running(self, agent: str, limit: int = LISTED) -> list[ConversationItem]:
        return await self._conversations.matching(ConversationFilter(running=True, agent=agent), limit)

    async def pause(self, agent: str, reason: str = "", by: str | None = None) -> AgentControlResult:
        await asyncio.to_thread(self._pauses.pause, agent, reason, by)
        why = agent_pause_reason(agent, reason)
        reached = await self._each(await self.running(agent), lambda c: c.pause(why))
        return _result(agent, "pause", True, reached)

    async def resume(self, agent: str) -> AgentControlResult:
        await asyncio.to_thread(self._pauses.resume, agent)

        async def lift(conversation: Conversation) -> None:
            status = await conversation.status()
            if status.paused and is_agent_pause(agent, status.pause_reason):
                await conversation.resume()

        reached = await self._each(await self.running(agent), lift)
        return _result(agent, "resume", False, reached)

    async def _each(self, items: list[ConversationItem], act: Callable[[Conversation], Awaitable[None]]) -> list[Reached]:
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def one(item: ConversationItem) -> Reached:
            async with gate:
                try:
                    await act(self._conversations.of_workflow(item.workflow_id))
                except ControlError as err:  # closed since it was listed, or no worker answered
                    return Reached(conversation_id=item.conversation_id, channel=item.channel, error=str(err))
            return Reached(conversation_id=item.conversation_id, channel=item.channel)

        return list(await asyncio.gather(*(one(item) for item in items)))

    # --- a priority task ----------------------------------------------------------------------

    async def task(self, agent: str, request: AgentTaskRequest) -> AgentTaskResult:
        """Into the named conversation, or the agent's latest running one outside channels: a
        ``next`` note while a turn runs (the model reads it at its next step), a turn of its own
        first in line when it is idle (a note alone would wait for the next message). Without one,
        a new conversation whose first message is the task."""
        target = await self._target(agent, request.conversation_id)
        if target is None:
            conversation_id = request.conversation_id or f"{agent}-task-{uuid.uuid4().hex[:8]}"
            start = ConversationInput(conversation_id=conversation_id, agent=agent, user_id=request.user_id,
                                      initial_message=request.content)  # fmt: skip
            await self._conversations.start(start, f"priority task for {agent}")
            return AgentTaskResult(agent=agent, conversation_id=conversation_id, delivered="started", priority="queue")
        revived = await target.revive_if_archived()
        status = await target.status()
        busy = status.state != ConversationState.IDLE or status.queued > 0
        priority = "next" if busy else "queue"
        await target.inject(Inject(content=request.content, role="user", priority=priority))
        return AgentTaskResult(agent=agent, conversation_id=target.id, delivered="revived" if revived else "injected",
                               priority=priority)  # fmt: skip

    async def _target(self, agent: str, conversation_id: str | None) -> Conversation | None:
        if conversation_id is not None:
            try:
                found = await self._conversations.find(conversation_id)
            except ControlError:
                return None  # a new conversation under that id
            if found.execution is not None and not (found.execution.running or found.execution.archived):
                found.ensure_running()  # ended: say so
            return found
        own = [item for item in await self.running(agent, 50) if item.channel is None]
        return self._conversations.of_workflow(own[0].workflow_id) if own else None

    # --- debugging ----------------------------------------------------------------------------

    async def states(self, agent: str, limit: int = 50) -> list[ConversationDebug]:
        """Each running conversation of the agent, as it answers ``status`` (or why it did not)."""
        items = await self.running(agent, limit)
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def one(item: ConversationItem) -> ConversationDebug:
            seen = ConversationDebug(conversation_id=item.conversation_id, channel=item.channel,
                                     execution=item.execution, state=item.state)  # fmt: skip
            async with gate:
                try:
                    status = await self._conversations.of_workflow(item.workflow_id).status()
                except ControlError as err:
                    return seen.model_copy(update={"error": str(err)})
            current = "; ".join(f"awaiting approval: {p.tool}" for p in status.pending_approvals) or status.state.value
            return seen.model_copy(update={
                "state": status.state.value, "turn": status.turn, "queued": status.queued, "paused": status.paused,
                "pause_reason": status.pause_reason, "current": current, "last_error": status.last_error,
                "pending_approvals": [p.model_dump(mode="json", include={"tool_call_id", "tool", "arguments", "args_hash",
                                                                         "requested_at"}) for p in status.pending_approvals],
            })  # fmt: skip

        return list(await asyncio.gather(*(one(item) for item in items)))


def _result(agent: str, action: str, paused: bool, reached: list[Reached]) -> AgentControlResult:
    ok = [r for r in reached if r.error is None]
    return AgentControlResult(agent=agent, action=action, paused=paused, reached=len(ok),
                              in_channels=sum(1 for r in ok if r.channel), conversations=reached)  # fmt: skip
