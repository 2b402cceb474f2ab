"""The model activity: one chat call to Ollama for one step of a turn.

It reads the transcript window itself and writes the assistant message itself, so only a small
result crosses workflow history. Writing is keyed on (conversation, reply_seq): a retry after the
message was stored returns the stored answer instead of asking the model twice. Temporal's retry
policy is the only retry: the HTTP client never retries on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx
import ollama
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.memory import MemoryService
from activities.prompt import build_system_prompt, window_budget_chars
from activities.prompt_configs import PromptConfigs
from activities.tool_calls import tool_call_requests
from activities.turn_prelude import TurnPrelude
from config.settings import Settings
from models.conversation import Usage
from models.llm import MAX_REPLY_CHARS_IN_HISTORY, ChatRequest, ChatResult, ToolCallRequest
from store.payloads import PayloadStore
from store.tables import Message
from store.transcript import TranscriptStore
from store.turn_writes import TurnWriter

HEARTBEAT_EVERY_S = 2.0


log = logging.getLogger(__name__)

MEMORY_TOOLS = frozenset({"memory_store", "memory_recall"})


def make_ollama_client(settings: Settings) -> ollama.AsyncClient:
    """The Ollama client every activity uses: Temporal's retry policy is the only retry."""
    return ollama.AsyncClient(
        host=settings.ollama_host,
        timeout=httpx.Timeout(settings.ollama_timeout_s, connect=5.0),
        transport=httpx.AsyncHTTPTransport(retries=0),
    )


class LlmActivities:
    def __init__(self, store: TranscriptStore, settings: Settings, memory: MemoryService | None = None,
                 writer: TurnWriter | None = None) -> None:
        self._store = store
        self._payloads = PayloadStore(store.engine)
        self._settings = settings
        self._memory = memory
        self._client: ollama.AsyncClient | None = None
        self._writer = writer or TurnWriter(store.engine)
        self._prelude = TurnPrelude(store, self._writer, PromptConfigs(self._payloads), memory, settings)

    def _ollama(self) -> ollama.AsyncClient:
        if self._client is None:
            self._client = make_ollama_client(self._settings)
        return self._client

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
            result = await self._chat(prepared.request)
            result.recalled = prepared.recalled
            return result
        finally:
            heartbeats.cancel()

    async def _chat(self, request: ChatRequest) -> ChatResult:
        template = request.template
        offered = {t.get("function", {}).get("name") for t in request.tools}
        system = build_system_prompt(
            template, request.now, await self._memories(request.memory_ids), memory_tools=bool(offered & MEMORY_TOOLS)
        )
        budget = window_budget_chars(template, system, request.tools)
        window = await asyncio.to_thread(self._store.window, request.conversation_id, budget, request.upto_seq)
        messages = [{"role": "system", "content": system}, *(_to_ollama(m) for m in window)]
        started = time.monotonic()
        content: list[str] = []
        calls: list[ollama.Message.ToolCall] = []
        final: ollama.ChatResponse | None = None
        try:
            stream = await self._ollama().chat(
                model=template.model or self._settings.model,
                messages=messages,
                tools=request.tools or None,
                stream=True,
                options={"num_ctx": template.context_size, "temperature": template.temperature},
            )
            async for chunk in stream:  # _heartbeat_forever beats every 2 s meanwhile
                content.append(chunk.message.content or "")
                calls.extend(chunk.message.tool_calls or [])
                if chunk.done:
                    final = chunk
        except ollama.ResponseError as err:
            raise _classify_response_error(err, template.model or "") from None
        except (httpx.ConnectError, ConnectionError) as err:
            raise ApplicationError(
                f"cannot reach Ollama at {self._settings.ollama_host}: {err or type(err).__name__}",
                type="OllamaUnreachable",
            ) from None
        except httpx.TransportError as err:
            raise ApplicationError(
                f"connection to Ollama at {self._settings.ollama_host} failed: {err or type(err).__name__}",
                type="OllamaConnectionLost",
            ) from None
        if final is None:
            raise ApplicationError("Ollama closed the stream before the answer was done", type="OllamaIncomplete")

        reply = "".join(content)
        tool_calls = await asyncio.to_thread(tool_call_requests, self._payloads, request.conversation_id,
                                             request.reply_seq, [(c.function.name, c.function.arguments) for c in calls]
                                             ) if calls else []
        usage = Usage(
            prompt_tokens=final.prompt_eval_count or 0,
            completion_tokens=final.eval_count or 0,
            model_calls=1,
            duration_ms=(time.monotonic() - started) * 1000,
        )
        await asyncio.to_thread(self._store_reply, request, reply, tool_calls, usage, final)
        return ChatResult(
            reply=reply[:MAX_REPLY_CHARS_IN_HISTORY],
            reply_truncated=len(reply) > MAX_REPLY_CHARS_IN_HISTORY,
            tool_calls=tool_calls,
            usage=usage,
            done_reason=final.done_reason,
        )

    def _store_reply(
        self,
        request: ChatRequest,
        reply: str,
        tool_calls: list[ToolCallRequest],
        usage: Usage,
        final: ollama.ChatResponse,
    ) -> None:
        ms = lambda ns: (ns or 0) / 1e6  # noqa: E731 - Ollama reports nanoseconds
        self._writer.write_reply(
            request.conversation_id, request.reply_seq, request.turn, reply, [c.model_dump() for c in tool_calls] or None,
            dict(model=request.template.model or self._settings.model, prompt_tokens=usage.prompt_tokens,
                 completion_tokens=usage.completion_tokens, total_duration_ms=ms(final.total_duration),
                 load_duration_ms=ms(final.load_duration), prompt_eval_duration_ms=ms(final.prompt_eval_duration),
                 eval_duration_ms=ms(final.eval_duration)),
        )  # one transaction (store/turn_writes.py)


async def _heartbeat_forever() -> None:
    """Heartbeats every 2 s while the model loads, thinks and streams. The first after 2 s, not at
    once: the SDK sends a first heartbeat to the server right away (a write of the activity's state),
    and most calls are over before it would tell anyone anything; the 10 s heartbeat timeout runs
    from the start all the same."""
    while True:
        await asyncio.sleep(HEARTBEAT_EVERY_S)
        activity.heartbeat()


def _to_ollama(message: Message) -> dict:
    out: dict = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": c["name"], "arguments": c.get("arguments", {})}} for c in message.tool_calls
        ]
    return out


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


def _classify_response_error(err: ollama.ResponseError, model: str) -> ApplicationError:
    """Client mistakes will not heal by retrying; server trouble may."""
    if err.status_code == 404:
        return ApplicationError(
            f"Ollama: {err.error} (run `ollama pull {model}` or choose another model)",
            type="ModelNotFound",
            non_retryable=True,
        )
    if 400 <= err.status_code < 500:
        return ApplicationError(f"Ollama rejected the request: {err.error}", type="ModelBadRequest", non_retryable=True)
    return ApplicationError(f"Ollama error ({err.status_code}): {err.error}", type="OllamaServerError")
