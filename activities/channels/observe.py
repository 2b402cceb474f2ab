"""``channel.observe``: a message an agent observes goes to its long-term memory, silently.

The relevance engine's ``observe`` decision means "not mine to answer, but worth knowing": the
message is remembered as an *episodic* memory in the agent's conversation's home scope (the
channel's user, or the agent when the channel names no user — the rule every conversation's
memories follow), tagged with the agent and its conversation, so its later turns may recall it.
Texts that look like passwords, keys or tokens are never kept. A near-duplicate updates the
existing memory, so a retried activity stores nothing twice.
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.memory import EmbeddingError, EmbeddingUnavailable, MemoryService, MemoryStoreError
from activities.memory.extraction import looks_secret
from models.channel import transcript_id
from models.channel_activities import ObserveMessage, Observed
from models.memory import MemoryKind, home_scope
from store.channels import ChannelStore

OBSERVED_CHARS = 1_500
OBSERVED_IMPORTANCE = 0.3


class ChannelMemoryActivities:
    def __init__(self, memory: MemoryService, channels: ChannelStore) -> None:
        self._memory = memory
        self._channels = channels

    def all(self) -> list:
        return [self.observe]

    @activity.defn(name="channel.observe")
    async def observe(self, request: ObserveMessage) -> Observed:
        message = await asyncio.to_thread(self._channels.get, request.channel_id, request.seq)
        if message is None or not message.content.strip():
            return Observed(stored=False, skipped=f"message {transcript_id(request.channel_id)}#{request.seq} is not stored")
        if looks_secret(message.content):
            return Observed(stored=False, skipped="not kept: it looks like a password, key or token")
        text = f"In channel #{request.channel_id} on {message.created_at:%Y-%m-%d}, {message.author} wrote: " + (
            message.content[:OBSERVED_CHARS] + (" […]" if len(message.content) > OBSERVED_CHARS else ""))
        scope, scope_id = home_scope(request.agent, request.user_id)
        try:
            record, _ = await self._memory.remember(
                text, scope, scope_id, kind=MemoryKind.EPISODIC, importance=OBSERVED_IMPORTANCE,
                agent=request.agent, source_conversation=request.conversation_id,
            )  # fmt: skip
        except EmbeddingUnavailable as err:
            raise ApplicationError(str(err), type="OllamaUnreachable") from None
        except (EmbeddingError, MemoryStoreError) as err:
            return Observed(stored=False, skipped=f"memory unavailable: {err}")
        return Observed(stored=True, memory_id=record.id)
