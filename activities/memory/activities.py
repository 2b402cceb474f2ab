"""The memory activities the conversation calls: recall before a turn, extraction after it, and
the model's memory tools.

Memory makes answers better but is never what a turn depends on: a missing embedding model or a
mismatched collection makes recall return nothing (and say why) instead of failing the turn, and
an extraction that fails is logged and skipped. Only passing trouble is retried: an unreachable
model server (chat or embeddings), as for the chat model, and the embedded store held for a moment
by another process (``daemonflow memory`` opens it itself while the worker has not yet).
"""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm.chat_models import ChatModel, LlmProviders
from activities.llm.errors import LlmError
from activities.memory import (
    EmbeddingError,
    EmbeddingUnavailable,
    MemoryService,
    MemoryStoreError,
)
from activities.memory.admin import administer
from activities.memory.extraction import ExtractionError, extract, looks_secret
from activities.memory.store import StoreLocked
from activities.memory.turn_batches import turn_groups
from activities.memory.turn_recall import recall_for_turn, recall_query
from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.agent import AgentTemplate
from models.memory import (
    ExtractedMemory,
    MemoryAdminRequest,
    MemoryAdminResult,
    MemoryKind,
    MemoryQuery,
    MemoryToolCall,
    NewMemory,
    RecallRequest,
    RecallResult,
    StoredMemories,
    StoreTurnMemories,
    home_scope,
)
from models.tools import ToolResult
from store.transcript import TranscriptStore

MEMORY_TOOL_RECALL_MAX = 20


PASSING = (EmbeddingUnavailable, StoreLocked)
"""Memory failures that a retry may heal."""


def _activity_error(err: EmbeddingError | MemoryStoreError) -> ApplicationError:
    """An unreachable embedding server is retried, as for the chat model, and so is an embedded
    store that another process holds (the CLI, for a second); any other memory failure is
    configuration (missing model, mismatched collection) and retrying would not heal it."""
    if isinstance(err, EmbeddingUnavailable):
        return ApplicationError(str(err), type="EmbeddingUnavailable")
    if isinstance(err, StoreLocked):
        return ApplicationError(str(err), type="MemoryLocked")
    return ApplicationError(str(err), type="MemoryUnavailable", non_retryable=True)


class MemoryActivities:
    def __init__(
        self, memory: MemoryService, store: TranscriptStore, settings: Settings, providers: LlmProviders | None = None
    ) -> None:
        self._memory = memory
        self._store = store
        self._settings = settings
        self._providers = providers or LlmProviders(settings)

    def all(self) -> list:
        return [self.recall, self.store_turn, self.tool, self.admin]

    async def _extraction_model(self, request: StoreTurnMemories) -> ChatModel:
        """The chat model of the conversation's template, on the server the template names (the
        model is the one the conversation resolved at its start)."""
        try:
            template = await asyncio.to_thread(load_template, request.agent, self._settings.agents_dir)
        except (UnknownAgentError, InvalidAgentError):  # gone since the conversation started
            template = AgentTemplate(name=request.agent, system_prompt="")
        return self._providers.chat_model(template, request.model)

    def _query(self, text: str, k: int, agent: str, user_id: str | None, conversation_id: str) -> MemoryQuery:
        return recall_query(self._settings, text, k, agent, user_id, conversation_id)

    @activity.defn(name="memory.recall")
    async def recall(self, request: RecallRequest) -> RecallResult:
        message = await asyncio.to_thread(self._store.get, request.conversation_id, request.seq)
        if message is None:
            return RecallResult()
        try:
            return await recall_for_turn(self._memory, self._settings, message.content, request.agent,
                                         request.user_id, request.conversation_id)
        except PASSING as err:
            raise _activity_error(err) from None

    @activity.defn(name="memory.store")
    async def store_turn(self, request: StoreTurnMemories) -> StoredMemories:
        """Extract what the turn taught and remember it; near-duplicates update existing memories,
        so a retry after a crash updates instead of adding twice."""
        if not self._settings.memory_extraction:
            return StoredMemories(skipped="extraction is off (DAEMONFLOW_MEMORY_EXTRACTION=false)")
        messages = await asyncio.to_thread(
            self._store.list_messages, request.conversation_id, request.from_seq - 1,
            request.upto_seq - request.from_seq + 1,
        )
        found: list[tuple[ExtractedMemory, int]] = []
        skipped: list[str] = []
        try:
            model = await self._extraction_model(request)
            for group, turn in turn_groups(messages, request):  # several turns: as few calls as fit
                try:
                    found += [(m, turn) for m in await extract(model, group)]
                except ExtractionError as err:
                    skipped.append(str(err))
        except LlmError as err:
            raise ApplicationError(
                f"could not extract memories: {err}",
                type=err.type if err.retryable else "ExtractionFailed",
                non_retryable=not err.retryable,
            ) from None
        if not found:
            return StoredMemories(skipped="; ".join(skipped) or None)
        scope, scope_id = home_scope(request.agent, request.user_id)
        memories = [
            NewMemory(
                text=m.text, scope=scope, scope_id=scope_id, kind=m.kind, importance=m.importance,
                agent=request.agent, source_conversation=request.conversation_id, source_turn=turn,
            )
            for m, turn in found
        ]
        try:
            results = await self._memory.remember_many(memories)
        except (EmbeddingError, MemoryStoreError) as err:
            raise _activity_error(err) from None
        added = sum(1 for _, created in results if created)
        return StoredMemories(added=added, updated=len(results) - added, skipped="; ".join(skipped) or None)

    @activity.defn(name="memory.tool")
    async def tool(self, call: MemoryToolCall) -> ToolResult:
        """``memory_store`` and ``memory_recall`` for the model; arguments were checked against the
        tool's schema by the workflow."""
        try:
            if call.tool == "memory_store":
                return await self._store_tool(call)
            if call.tool == "memory_recall":
                return await self._recall_tool(call)
        except PASSING as err:
            raise _activity_error(err) from None
        except (EmbeddingError, MemoryStoreError) as err:
            return ToolResult(success=False, error=f"memory unavailable: {err}")
        raise ApplicationError(f"{call.tool} is not a memory tool", type="InvalidArguments", non_retryable=True)

    async def _store_tool(self, call: MemoryToolCall) -> ToolResult:
        text = str(call.arguments.get("text", "")).strip()
        if looks_secret(text):
            return ToolResult(success=False, error="not stored: it looks like a password, key or token")
        scope, scope_id = home_scope(call.agent, call.user_id)
        record, created = await self._memory.remember(
            text, scope, scope_id,
            kind=call.arguments.get("kind") or MemoryKind.SEMANTIC,
            importance=float(call.arguments.get("importance", 0.5)),
            agent=call.agent, source_conversation=call.conversation_id, source_turn=call.turn,
        )
        verb = "stored" if created else "updated an existing memory"
        return ToolResult(success=True, output=f"{verb} ({record.kind.value}, importance {record.importance:.2f}): {record.text}")

    async def _recall_tool(self, call: MemoryToolCall) -> ToolResult:
        k = min(int(call.arguments.get("k", 5)), MEMORY_TOOL_RECALL_MAX)
        query = self._query(str(call.arguments["query"]), k, call.agent, call.user_id, call.conversation_id)
        found = await self._memory.recall(query)
        if not found:
            return ToolResult(success=True, output="no memory matches")
        lines = [f"- {m.record.text} ({m.record.kind.value}, score {m.score:.2f})" for m in found]
        return ToolResult(success=True, output="\n".join(lines))

    @activity.defn(name="memory.admin")
    async def admin(self, request: MemoryAdminRequest) -> MemoryAdminResult:
        """``daemonflow memory …`` through the worker, for a store only the worker can open."""
        try:
            return await administer(self._memory, request)
        except (EmbeddingError, MemoryStoreError) as err:
            raise _activity_error(err) from None
