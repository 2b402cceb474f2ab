"""Any OpenAI-compatible server — llama.cpp's ``llama-server``, vLLM, LM Studio, Ollama's ``/v1`` —
through the official ``openai`` client, with its retries off (Temporal retries).

Chat streams Server-Sent Events with ``stream_options.include_usage`` so the last event carries
the token counts; tool calls arrive in pieces (name first, arguments as string fragments) and are
joined by index. Timings are measured at the client: time to first token, then generation.

Structured output asks for ``response_format = {"type": "json_schema", …}`` (llama.cpp turns the
schema into a grammar, vLLM into guided decoding). A server that refuses it (HTTP 400) is asked
again with the schema written into the instructions and no ``response_format``, and the JSON object
is cut out of the answer; once that worked, this provider asks that server so from then on (a
warning in the log says so once).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Sequence

import httpx
import httpx2
import openai

from activities.llm.errors import (
    ModelBadRequest,
    ModelConnectionLost,
    ModelIncomplete,
    ModelServerError,
    ModelUnreachable,
    for_status,
)
from activities.llm.openai_messages import parse_call, to_openai_messages
from activities.llm.provider import (
    PROBE_TIMEOUT_S,
    CallTimings,
    ChatOutcome,
    GenerationOptions,
    OnDelta,
    PromptMessage,
    ProposedCall,
)
from models.llm import ServerProbe

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://localhost:8080/v1"
NO_KEY = "no-key"
"""Sent when no key is configured: the client insists on one, and keyless servers ignore it."""
SERVER_NAMES = {"llamacpp": "llama.cpp", "vllm": "vLLM", "library": "Ollama", "organization_owner": "LM Studio"}
"""``owned_by`` of ``/v1/models`` entries, as each server writes it."""
FRESH_CONNECTIONS = httpx2.Limits(max_connections=100, max_keepalive_connections=0)
"""A connection per request, none kept alive. llama-server sometimes closes a connection right
after a streamed answer without saying so, and the next request sent on it fails with "Server
disconnected without sending a response": 1 in 25 and 1 in 60 back-to-back streamed calls here, 0
in 60 without keep-alive. A new loopback or LAN connection costs well under a millisecond; a model
call, hundreds."""
SCHEMA_INSTRUCTIONS = (
    "Answer with one JSON object and nothing else (no prose, no code fence). "
    "It must match this JSON schema:\n{schema}"
)


class OpenAIProvider:
    kind = "openai"

    def __init__(self, base_url: str | None = None, *, api_key: str = "", timeout_s: float = 600.0) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.label = f"the OpenAI-compatible server at {self.base_url}"
        self._api_key = api_key
        self._timeout_s = timeout_s
        self._client: openai.AsyncOpenAI | None = None
        self._schema_refused = False

    def __repr__(self) -> str:  # never the key
        return f"OpenAIProvider({self.base_url!r})"

    def _openai(self) -> openai.AsyncOpenAI:
        if self._client is None:
            self._client = openai.AsyncOpenAI(
                base_url=self.base_url,
                api_key=self._api_key or NO_KEY,
                max_retries=0,
                timeout=openai.Timeout(self._timeout_s, connect=5.0),
                http_client=openai.DefaultAsyncHttpxClient(limits=FRESH_CONNECTIONS),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def missing_model_hint(self, model: str) -> str:
        return (
            f"the server lists its models at {self.base_url}/models; name one of them in the template's "
            "`model:` or DAEMONFLOW_MODEL, or start the server with this model"
        )

    async def chat(
        self,
        model: str,
        messages: Sequence[PromptMessage],
        options: GenerationOptions,
        tools: Sequence[dict] = (),
        on_delta: OnDelta | None = None,
    ) -> ChatOutcome:
        started = time.monotonic()
        answer = _StreamedAnswer()
        with self._errors(model):
            stream = await self._openai().chat.completions.create(
                model=model,
                messages=to_openai_messages(messages),
                tools=list(tools) or openai.omit,
                stream=True,
                stream_options={"include_usage": True},
                max_tokens=options.max_tokens,
                temperature=options.temperature,
            )
            async for chunk in stream:
                text = answer.add(chunk, time.monotonic())
                if on_delta is not None:
                    on_delta(text)
        if answer.finish_reason is None:
            raise ModelIncomplete(f"{self.label} closed the stream before the answer was done")
        return answer.outcome(started, time.monotonic())

    async def structured(
        self, model: str, messages: Sequence[PromptMessage], schema: dict, options: GenerationOptions
    ) -> str:
        refusal: ModelBadRequest | None = None
        if not self._schema_refused:
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": schema.get("title") or "answer", "schema": schema},
            }
            try:
                return await self._complete(model, messages, options, response_format=response_format)
            except ModelBadRequest as err:
                refusal = err
        instructions = SCHEMA_INSTRUCTIONS.format(schema=json.dumps(schema))
        answer = json_object_in(await self._complete(model, with_instructions(messages, instructions), options))
        if refusal is not None:  # only now: the refusal was about the format, not the request
            self._schema_refused = True
            log.warning(
                "%s refused a JSON-schema response_format (%s); structured output is asked for in the "
                "instructions from now on", self.label, refusal,
            )
        return answer

    async def _complete(
        self, model: str, messages: Sequence[PromptMessage], options: GenerationOptions, **extra: object
    ) -> str:
        with self._errors(model):
            response = await self._openai().chat.completions.create(
                model=model,
                messages=to_openai_messages(messages),
                stream=False,
                max_tokens=options.max_tokens,
                temperature=options.temperature,
                **extra,  # type: ignore[arg-type]
            )
        if not response.choices:
            raise ModelIncomplete(f"{self.label} answered without a choice")
        return response.choices[0].message.content or ""

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        with self._errors(model):
            response = await self._openai().embeddings.create(model=model, input=list(texts), encoding_format="float")
        return [list(map(float, item.embedding)) for item in sorted(response.data, key=lambda d: d.index)]

    async def probe(self, timeout_s: float = PROBE_TIMEOUT_S) -> ServerProbe:
        started = time.monotonic()
        try:
            with self._errors(""):
                listing = await self._openai().with_options(timeout=timeout_s).models.list()
        except (ModelUnreachable, ModelConnectionLost, ModelServerError, ModelBadRequest, ModelIncomplete) as err:
            return ServerProbe(provider="openai", base_url=self.base_url, reachable=False, error=str(err))
        latency = round((time.monotonic() - started) * 1000, 1)
        owners = {getattr(m, "owned_by", None) or "" for m in listing.data}
        server = next((SERVER_NAMES[o] for o in sorted(owners) if o in SERVER_NAMES), None)
        return ServerProbe(
            provider="openai", base_url=self.base_url, reachable=True, server=server,
            version=await self._version(timeout_s), models=sorted(m.id for m in listing.data), latency_ms=latency,
        )

    async def _version(self, timeout_s: float) -> str | None:
        """Best effort: llama.cpp's ``/props`` (``build_info``), vLLM's ``/version``."""
        root = self.base_url.removesuffix("/v1")
        async with httpx.AsyncClient(base_url=root, timeout=timeout_s) as http:
            for path, key in (("/props", "build_info"), ("/version", "version")):
                with contextlib.suppress(httpx.HTTPError, ValueError, AttributeError):
                    answer = await http.get(path)
                    if answer.status_code == 200 and answer.json().get(key):
                        return str(answer.json()[key])
        return None

    @contextlib.contextmanager
    def _errors(self, model: str) -> Iterator[None]:
        """Turns the ``openai`` client's exceptions into :mod:`activities.llm.errors`."""
        try:
            yield
        except openai.APIStatusError as err:
            detail = server_message(err)
            if err.status_code in (401, 403):
                detail += " (check DAEMONFLOW_OPENAI_API_KEY, or the variable the template's api_key_env names)"
            raise for_status(
                err.status_code,
                f"{self.label} rejected the request (HTTP {err.status_code}): {detail}"
                if 400 <= err.status_code < 500
                else f"{self.label} error (HTTP {err.status_code}): {detail}",
                not_found=f"{self.label} has no model {model!r}: {detail} ({self.missing_model_hint(model)})",
            ) from None
        except openai.APIConnectionError as err:
            if _refused(err):
                raise ModelUnreachable(f"cannot reach {self.label}: {_cause(err)}") from None
            kind = "timed out" if isinstance(err, openai.APITimeoutError) else f"failed: {_cause(err)}"
            raise ModelConnectionLost(f"connection to {self.label} {kind}") from None
        except openai.APIError as err:  # an error event inside a stream that had started with 200
            raise ModelServerError(f"{self.label} failed while answering: {server_message(err)}") from None


class _StreamedAnswer:
    """The pieces of one streamed answer, put together."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.calls: dict[int, list[str]] = {}
        """Index → [name, argument pieces…]."""
        self.finish_reason: str | None = None
        self.usage: openai.types.CompletionUsage | None = None
        self.first_token_at: float | None = None

    def add(self, chunk: openai.types.chat.ChatCompletionChunk, now: float) -> str:
        """Takes one chunk in; returns the text it adds."""
        if chunk.usage is not None:
            self.usage = chunk.usage
        text = ""
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                text += delta.content
            for piece in delta.tool_calls or []:
                call = self.calls.setdefault(piece.index, [""])
                if piece.function is not None:
                    call[0] += piece.function.name or ""
                    call.append(piece.function.arguments or "")
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        if (text or self.calls) and self.first_token_at is None:
            self.first_token_at = now
        self.content.append(text)
        return text

    def outcome(self, started: float, ended: float) -> ChatOutcome:
        calls: list[ProposedCall] = [
            parse_call(pieces[0], "".join(pieces[1:])) for _, pieces in sorted(self.calls.items())
        ]
        first = self.first_token_at or ended
        return ChatOutcome(
            content="".join(self.content),
            tool_calls=calls,
            prompt_tokens=self.usage.prompt_tokens if self.usage else 0,
            completion_tokens=self.usage.completion_tokens if self.usage else 0,
            cached_prompt_tokens=cached_tokens(self.usage),
            done_reason=self.finish_reason,
            timings=CallTimings(
                total_ms=(ended - started) * 1000, prompt_ms=(first - started) * 1000, eval_ms=(ended - first) * 1000
            ),
        )


def cached_tokens(usage: openai.types.CompletionUsage | None) -> int | None:
    """``usage.prompt_tokens_details.cached_tokens``: ``None`` when the server does not report it
    (the prompt-cache part of the health score then leaves the call out)."""
    details = usage.prompt_tokens_details if usage else None
    return details.cached_tokens if details else None


def server_message(err: openai.APIError) -> str:
    """The server's own words: ``{"error": {"message": …}}`` (OpenAI, vLLM, llama.cpp) or a bare body."""
    body = err.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or body.get("detail")
        if message:
            return str(message)
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return err.message


def with_instructions(messages: Sequence[PromptMessage], instructions: str) -> list[PromptMessage]:
    """``instructions`` added to the system message, which stays first (some chat templates refuse
    a system message anywhere else)."""
    if messages and messages[0].role == "system":
        first = messages[0]
        return [PromptMessage("system", f"{first.content}\n\n{instructions}"), *messages[1:]]
    return [PromptMessage("system", instructions), *messages]


def json_object_in(text: str) -> str:
    """The JSON object in an answer that may wrap it in prose or a code fence (else the text as is,
    for the caller's validation to reject with its own words)."""
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def _refused(err: BaseException) -> bool:
    """Whether the connection was never made (nothing listens), as opposed to lost or timed out."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, (httpx2.ConnectError, ConnectionRefusedError)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _cause(err: BaseException) -> str:
    cause = err.__cause__ or err.__context__
    return f"{type(cause).__name__}: {cause}" if cause is not None else str(err)
