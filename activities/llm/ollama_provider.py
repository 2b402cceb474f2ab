"""Ollama's native API (``/api/chat``, ``/api/embed``) through the official ``ollama`` client.

Chat streams NDJSON; the last chunk (``done``) carries the token counts and Ollama's own timings
(nanoseconds). Structured output is Ollama's ``format`` = a JSON schema. The generation cap is
``num_predict``, the context ``num_ctx``.

Its address is ``OLLAMA_HOST`` read as Ollama's own clients read it (:func:`ollama_base_url`, the
one reader of it: the provider, its probe, ``daemonflow dev``, health and the API all go through
it), so ``gpu-box`` or ``:8080`` mean here what they mean to ``ollama run``.

The client's HTTP goes through ``httpx_aiohttp.AiohttpTransport`` (httpx's API, aiohttp's
connections and C parser; the pairing ``openai[aiohttp]`` offers) instead of httpcore: two requests
a turn (the recall's embedding, the streamed chat) were a third of the worker's CPU at 50 busy
conversations, and this transport cut the worker's CPU per turn by 12 % and raised turns/s by 13 %
(``bench.interleaved``, one run, load 2.0→4.4). It reports errors as httpx exceptions; a refused
connection arrives as ``httpx.ConnectTimeout`` caused by aiohttp's connector error (``_unreachable``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

import aiohttp
import httpx
import ollama
from httpx_aiohttp import AiohttpTransport

from activities.llm.errors import ModelConnectionLost, ModelIncomplete, ModelUnreachable, for_status
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

OLLAMA_DEFAULT_PORT = 11434
SCHEME_PORTS = {"http": 80, "https": 443}
TOOL_LISTS_KEPT = 64
"""Converted tool lists kept per provider: one per prompt config in use."""


def ollama_base_url(host: str | None) -> str:
    """``OLLAMA_HOST`` as Ollama's clients read it: scheme, host and port all optional
    (``gpu-box`` → ``http://gpu-box:11434``, ``https://gpu-box`` → ``https://gpu-box:443``,
    ``:8080`` → ``http://127.0.0.1:8080``, empty → ``http://127.0.0.1:11434``); a path is kept, a
    trailing slash is not."""
    text = (host or "").strip()
    scheme, has_scheme, rest = text.partition("://")
    if not has_scheme:
        scheme, rest = "http", text
    parts = urlsplit(f"{scheme}://{rest}")
    default_port = SCHEME_PORTS.get(scheme, OLLAMA_DEFAULT_PORT) if has_scheme else OLLAMA_DEFAULT_PORT
    hostname = parts.hostname or "127.0.0.1"
    if ":" in hostname:  # IPv6 literals keep their brackets
        hostname = f"[{hostname}]"
    return f"{scheme}://{hostname}:{parts.port or default_port}{parts.path.rstrip('/')}"


class OllamaProvider:
    kind = "ollama"

    def __init__(self, base_url: str | None = None, *, timeout_s: float = 600.0) -> None:
        self.base_url = ollama_base_url(base_url)
        self.label = f"Ollama at {self.base_url}"
        self._timeout_s = timeout_s
        self._client: ollama.AsyncClient | None = None
        self._tools: dict[int, tuple[Sequence[dict], list[ollama.Tool]]] = {}

    def _ollama(self) -> ollama.AsyncClient:
        if self._client is None:
            self._client = ollama.AsyncClient(
                host=self.base_url,
                timeout=httpx.Timeout(self._timeout_s, connect=5.0),
                transport=AiohttpTransport(retries=0),
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _ollama_tools(self, tools: Sequence[dict]) -> list[ollama.Tool] | None:
        """The tool definitions as the client's ``Tool`` models, converted once per list: a
        conversation's list is one object per prompt config (``activities/prompt_configs.py``),
        and the client validated every definition's dict again on every call (2 % of a busy
        worker's samples; a ``Tool`` it takes as it is). Keyed by identity, the list kept alive
        beside its conversion so that the key cannot be reused."""
        if not tools:
            return None
        cached = self._tools.get(id(tools))
        if cached is not None and cached[0] is tools:
            return cached[1]
        if len(self._tools) >= TOOL_LISTS_KEPT:
            self._tools.clear()
        converted = [ollama.Tool.model_validate(tool) for tool in tools]
        self._tools[id(tools)] = (tools, converted)
        return converted

    def missing_model_hint(self, model: str) -> str:
        return f"run `ollama pull {model}` or choose another model"

    async def chat(
        self,
        model: str,
        messages: Sequence[PromptMessage],
        options: GenerationOptions,
        tools: Sequence[dict] = (),
        on_delta: OnDelta | None = None,
    ) -> ChatOutcome:
        started = time.monotonic()
        content: list[str] = []
        calls: list[ProposedCall] = []
        final: ollama.ChatResponse | None = None
        with self._errors(model):
            stream = await self._ollama().chat(
                model=model,
                messages=[_to_ollama(m) for m in messages],
                tools=self._ollama_tools(tools),
                stream=True,
                options=_options(options),
            )
            async for chunk in stream:
                text = chunk.message.content or ""
                content.append(text)
                calls.extend(
                    ProposedCall(c.function.name, dict(c.function.arguments)) for c in chunk.message.tool_calls or []
                )
                if on_delta is not None:
                    on_delta(text)
                if chunk.done:
                    final = chunk
        if final is None:
            raise ModelIncomplete(f"{self.label} closed the stream before the answer was done")
        return ChatOutcome(
            content="".join(content),
            tool_calls=calls,
            prompt_tokens=final.prompt_eval_count or 0,
            completion_tokens=final.eval_count or 0,
            done_reason=final.done_reason,
            timings=_timings(final, started),
        )

    async def structured(
        self, model: str, messages: Sequence[PromptMessage], schema: dict, options: GenerationOptions
    ) -> str:
        with self._errors(model):
            response = await self._ollama().chat(
                model=model,
                messages=[_to_ollama(m) for m in messages],
                format=schema,
                stream=False,
                options=_options(options),
            )
        return response.message.content or ""

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        with self._errors(model):
            response = await self._ollama().embed(model=model, input=list(texts))
        return [list(map(float, v)) for v in response.embeddings or []]

    async def probe(self, timeout_s: float = PROBE_TIMEOUT_S) -> ServerProbe:
        """``GET /api/version`` and ``/api/tags``."""
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=timeout_s) as http:
                version = (await http.get("/api/version")).raise_for_status().json().get("version")
                tags = (await http.get("/api/tags")).raise_for_status().json().get("models") or []
        except (httpx.HTTPError, ValueError) as err:
            why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            return ServerProbe(
                provider="ollama", base_url=self.base_url, reachable=False, error=why[:500],
                latency_ms=round((time.monotonic() - started) * 1000, 1),
            )
        return ServerProbe(
            provider="ollama", base_url=self.base_url, reachable=True, server="Ollama", version=version,
            models=sorted(name for m in tags if (name := m.get("model") or m.get("name"))),
            latency_ms=round((time.monotonic() - started) * 1000, 1),
        )

    @contextlib.contextmanager
    def _errors(self, model: str) -> Iterator[None]:
        """Turns the ``ollama`` client's and httpx's exceptions into :mod:`activities.llm.errors`."""
        try:
            yield
        except ollama.ResponseError as err:
            raise for_status(
                err.status_code,
                f"Ollama rejected the request: {err.error}"
                if 400 <= err.status_code < 500
                else f"Ollama error ({err.status_code}): {err.error}",
                not_found=f"Ollama: {err.error} ({self.missing_model_hint(model)})",
            ) from None
        except (httpx.ConnectError, ConnectionError) as err:
            raise ModelUnreachable(f"cannot reach {self.label}: {err or type(err).__name__}") from None
        except httpx.TransportError as err:
            if _unreachable(err):
                raise ModelUnreachable(f"cannot reach {self.label}: {err or type(err).__name__}") from None
            raise ModelConnectionLost(f"connection to {self.label} failed: {err or type(err).__name__}") from None


def _unreachable(err: httpx.TransportError) -> bool:
    """No connection was made (refused, no route, name unknown): aiohttp's connector failed."""
    return isinstance(err, httpx.ConnectError) or isinstance(err.__cause__, aiohttp.ClientConnectorError)


def _options(options: GenerationOptions) -> dict:
    return {"num_ctx": options.context_size, "temperature": options.temperature, "num_predict": options.max_tokens}


def _to_ollama(message: PromptMessage) -> dict:
    out: dict = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [{"function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls]
    return out


def _timings(final: ollama.ChatResponse, started: float) -> CallTimings:
    ms = lambda ns: None if ns is None else ns / 1e6  # noqa: E731 - Ollama reports nanoseconds
    total = ms(final.total_duration)
    return CallTimings(
        total_ms=total if total is not None else (time.monotonic() - started) * 1000,
        load_ms=ms(final.load_duration),
        prompt_ms=ms(final.prompt_eval_duration),
        eval_ms=ms(final.eval_duration),
    )
