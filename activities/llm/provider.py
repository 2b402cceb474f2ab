"""What a model server does for Daemonflow, whatever API it speaks.

A provider is one client for one server (an Ollama, a ``llama-server``, a vLLM…). It takes
messages in a neutral shape (:class:`PromptMessage`) and turns them into its API's; it streams a
chat answer and calls ``on_delta`` for every chunk (the activity heartbeats there, and the
streaming of tokens to clients can hook in there later); it asks for JSON that fits a schema; it
embeds texts; it says whether its server answers (:meth:`LlmProvider.probe`). It raises only
:mod:`activities.llm.errors`, so the activities classify failures the same way for every server.

Its HTTP client never retries: Temporal's retry policy is the only retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from models.llm import ServerProbe, ToolCallRequest

OnDelta = Callable[[str], None]
"""Called for every streamed chunk with the text it adds (``""`` for chunks without text)."""

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class PromptMessage:
    """One message as the model is shown it."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: tuple[ToolCallRequest, ...] = ()
    """The calls an assistant message asked for."""
    tool_call_id: str | None = None
    """For ``tool`` messages: which call this is the result of."""


@dataclass(frozen=True)
class GenerationOptions:
    context_size: int
    """Tokens of context (Ollama loads the model with it; an OpenAI-compatible server fixes it at
    start, so there it only bounds the transcript window)."""
    temperature: float
    max_tokens: int
    """Most tokens one call may generate."""


@dataclass(frozen=True)
class ProposedCall:
    """A tool call as the model proposed it, before the activity gives it its stable id."""

    name: str
    arguments: dict


@dataclass(frozen=True)
class CallTimings:
    """Milliseconds, as far as the server or the client can tell (``None``: unknown)."""

    total_ms: float
    load_ms: float | None = None
    prompt_ms: float | None = None
    """Time to first token: reading the prompt (plus queueing, measured at the client)."""
    eval_ms: float | None = None
    """Generating the answer."""


@dataclass
class ChatOutcome:
    content: str
    tool_calls: list[ProposedCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int | None = None
    """Prompt tokens the server took from its prompt cache, when it says (OpenAI-compatible servers:
    ``usage.prompt_tokens_details.cached_tokens``; Ollama's API has no such count: ``None``)."""
    done_reason: str | None = None
    """``stop``, ``length`` (the token cap was hit), ``tool_calls``…, as the server says it."""
    timings: CallTimings = field(default_factory=lambda: CallTimings(total_ms=0.0))


class LlmProvider(Protocol):
    kind: Literal["ollama", "openai"]
    base_url: str
    label: str
    """How messages name the server: ``Ollama at http://…``."""

    async def chat(
        self,
        model: str,
        messages: Sequence[PromptMessage],
        options: GenerationOptions,
        tools: Sequence[dict] = (),
        on_delta: OnDelta | None = None,
    ) -> ChatOutcome:
        """One streamed chat call; ``tools`` are function definitions (``{"type": "function", …}``)."""
        ...

    async def structured(
        self, model: str, messages: Sequence[PromptMessage], schema: dict, options: GenerationOptions
    ) -> str:
        """The model's answer as JSON text meant to fit ``schema`` (the caller validates it)."""
        ...

    async def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, in one request."""
        ...

    async def probe(self, timeout_s: float = PROBE_TIMEOUT_S) -> ServerProbe:
        """Whether the server answers, what it is and which models it has; never raises."""
        ...

    def missing_model_hint(self, model: str) -> str:
        """What to do when the server has no ``model`` (``ollama pull …``, check the server's models)."""
        ...

    async def close(self) -> None: ...
