"""The model activity ``llm.chat``: one chat call for one step of a turn, to whichever server
serves the template's model (Ollama or an OpenAI-compatible server, see ``chat_models.py``).

It reads the transcript window itself and writes the assistant message itself, so only a small
result crosses workflow history. Writing is keyed on (conversation, reply_seq): a retry after the
message was stored returns the stored answer instead of asking the model twice. Temporal's retry
policy is the only retry: the HTTP clients never retry on their own.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.llm.chat_models import ChatModel, LlmProviders
from activities.llm.errors import LlmError
from activities.llm.provider import ChatOutcome, PromptMessage
from activities.llm.token_stream import TokenPublisher
from activities.prompt import build_system_prompt, window_budget_chars
from activities.tool_calls import tool_call_requests
from config.settings import Settings
from models.conversation import Usage
from models.llm import MAX_REPLY_CHARS_IN_HISTORY, ChatRequest, ChatResult, ToolCallRequest
from models.streaming import INTERRUPTED
from store.payloads import PayloadStore
from store.tables import Message
from store.transcript import TranscriptStore
from store.turn_writes import TurnWriter
from store.window import WindowMessage

if TYPE_CHECKING:  # activities.memory imports this package: no import at run time
    from activities.memory import MemoryService

HEARTBEAT_EVERY_S = 2.0


log = logging.getLogger(__name__)

MEMORY_TOOLS = frozenset({"memory_store", "memory_recall"})


class LlmActivities:
    def __init__(
        self,
        store: TranscriptStore,
        settings: Settings,
        memory: MemoryService | None = None,
        providers: LlmProviders | None = None,
        writer: TurnWriter | None = None,
    ) -> None:
        from activities.prompt_configs import PromptConfigs  # noqa: PLC0415 - they import activities.memory,
        from activities.turn_prelude import TurnPrelude  # noqa: PLC0415 - which imports this package

        self._store = store
        self._payloads = PayloadStore(store.engine)
        self._settings = settings
        self._memory = memory
        self._providers = providers or LlmProviders(settings)
        self._writer = writer or TurnWriter(store.engine)
        self._prelude = TurnPrelude(store, self._writer, PromptConfigs(self._payloads), memory, settings)

    async def _memories(self, ids: list[str]) -> list[str]:
        """The recalled memories' texts, best first; a memory store in trouble costs the prompt
        its memories, never the turn."""
        if not ids or self._memory is None:
            return []
        try:
            records = {r.id: r for r in await self._memory.get_many(ids)}
        except Exception as err:  # noqa: BLE001 - any store failure degrades the same way
            log.warning("recalled memories could not be loaded (%s); answering without them", err)
            return []
        return [records[i].text for i in ids if i in records]

    @activity.defn(name="llm.chat")
    async def chat(self, request: ChatRequest) -> ChatResult:
        heartbeats = asyncio.create_task(_heartbeat_forever())
        try:
            prepared = await self._prelude.prepare(request)  # a reply already stored; the turn's writes, recall
            if prepared.stored is not None:
                return _result_from_message(prepared.stored)
            result = await self._chat(prepared.request, prepared.memory_texts)
            result.recalled = prepared.recalled
            return result
        except LlmError as err:
            raise err.application_error() from None
        finally:
            heartbeats.cancel()

    async def _chat(self, request: ChatRequest, memory_texts: list[str] | None = None) -> ChatResult:
        model = self._providers.chat_model(request.template)
        messages = await self._prompt(request, memory_texts)
        outcome = await _streamed(model, messages, request)  # _heartbeat_forever beats every 2 s meanwhile
        tool_calls = await asyncio.to_thread(
            tool_call_requests, self._payloads, request.conversation_id, request.reply_seq,
            [(c.name, c.arguments) for c in outcome.tool_calls],
        ) if outcome.tool_calls else []
        usage = Usage(
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            model_calls=1,
            duration_ms=outcome.timings.total_ms,
        )
        await asyncio.to_thread(self._store_reply, request, model.name, outcome, tool_calls)
        return ChatResult(
            reply=outcome.content[:MAX_REPLY_CHARS_IN_HISTORY],
            reply_truncated=len(outcome.content) > MAX_REPLY_CHARS_IN_HISTORY,
            tool_calls=tool_calls,
            usage=usage,
            done_reason=outcome.done_reason,
        )

    async def _prompt(self, request: ChatRequest, memory_texts: list[str] | None) -> list[PromptMessage]:
        """The system prompt, then the newest messages that fit the template's context.
        ``memory_texts``: what this attempt's recall found (else ``memory_ids`` are loaded)."""
        template = request.template
        offered = {t.get("function", {}).get("name") for t in request.tools}
        memories = memory_texts if memory_texts is not None else await self._memories(request.memory_ids)
        system = build_system_prompt(template, request.now, memories, memory_tools=bool(offered & MEMORY_TOOLS))
        budget = window_budget_chars(template, system, request.tools)
        window = await asyncio.to_thread(self._store.window, request.conversation_id, budget, request.upto_seq)
        return [PromptMessage("system", system), *(_prompt_message(m) for m in window)]

    def _store_reply(
        self, request: ChatRequest, model: str, outcome: ChatOutcome, tool_calls: list[ToolCallRequest]
    ) -> None:
        timings = outcome.timings
        self._writer.write_reply(
            request.conversation_id, request.reply_seq, request.turn, outcome.content,
            [c.model_dump() for c in tool_calls] or None,
            dict(model=model, prompt_tokens=outcome.prompt_tokens, completion_tokens=outcome.completion_tokens,
                 cached_prompt_tokens=outcome.cached_prompt_tokens, total_duration_ms=timings.total_ms, load_duration_ms=timings.load_ms,
                 prompt_eval_duration_ms=timings.prompt_ms, eval_duration_ms=timings.eval_ms),
        )  # one transaction (store/turn_writes.py)


async def _streamed(model: ChatModel, messages: list[PromptMessage], request: ChatRequest) -> ChatOutcome:
    """The model's answer; with ``stream_tokens``, published as it comes (``token_stream.py``). A
    step cancelled because a newer message interrupts it (double-texting ``interrupt``) fails with
    ``Interrupted`` carrying what the model wrote so far: the workflow keeps it, marked."""
    if not request.stream_tokens:
        return await model.chat(messages, request.tools)
    async with TokenPublisher(request.reply_seq, request.watched) as tokens:
        try:
            return await model.chat(messages, request.tools, tokens.on_delta)
        except asyncio.CancelledError:
            if not activity.is_cancelled():
                raise
            partial = tokens.text
    raise ApplicationError("the model's answer was interrupted by a newer message", partial[:MAX_REPLY_CHARS_IN_HISTORY],
                           type=INTERRUPTED, non_retryable=True)  # fmt: skip


async def _heartbeat_forever() -> None:
    """Heartbeats every 2 s while the model loads, thinks and streams. The first after 2 s, not at
    once: the SDK sends a first heartbeat to the server right away (a write of the activity's state),
    and most calls are over before it would tell anyone anything; the 10 s heartbeat timeout runs
    from the start all the same. A local step has no heartbeat: its workflow task stands for it."""
    if activity.info().is_local:
        return
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_S)
        activity.heartbeat()


def _prompt_message(message: WindowMessage) -> PromptMessage:
    return PromptMessage(
        role=message.role,  # type: ignore[arg-type] - the store holds only the four roles
        content=message.content,
        tool_calls=tuple(ToolCallRequest.model_validate(c) for c in message.tool_calls or []),
        tool_call_id=message.tool_call_id,
    )


def _result_from_message(message: Message) -> ChatResult:
    reply = message.content
    return ChatResult(
        reply=reply[:MAX_REPLY_CHARS_IN_HISTORY],
        reply_truncated=len(reply) > MAX_REPLY_CHARS_IN_HISTORY,
        tool_calls=[ToolCallRequest.model_validate(c) for c in message.tool_calls or []],
        usage=Usage(
            prompt_tokens=message.prompt_tokens or 0,
            completion_tokens=message.completion_tokens or 0,
        ),
    )
