"""The chat model of a template, and the embedding server, whichever servers they are.

:class:`LlmProviders` is what an activity holds: ``providers.chat_model(template)`` is "the chat
model of this template" — a provider (one client per server, shared by every activity of the
worker) bound to the model name and the generation options — so any activity (the conversation's
``llm.chat``, memory extraction, a code-generation tool) asks the model the same way:

    model = providers.chat_model(template)
    outcome = await model.chat(messages, tools)          # streamed; ChatOutcome
    text = await model.structured(messages, MySchema)    # JSON meant to fit MySchema

Which server: the template's ``provider`` / ``base_url`` / ``api_key_env`` when it sets them, else
the worker's settings (``DAEMONFLOW_LLM_PROVIDER``, ``OLLAMA_HOST``, ``DAEMONFLOW_OPENAI_BASE_URL``,
``DAEMONFLOW_OPENAI_API_KEY``). Resolved here, on the worker that makes the call, so a URL or a key
is a worker's configuration and never workflow state. The generation cap is the template's
``max_tokens`` else ``DAEMONFLOW_MAX_TOKENS``, always set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pydantic import BaseModel

from activities.llm.errors import ModelBadRequest
from activities.llm.ollama_provider import OllamaProvider
from activities.llm.openai_provider import OpenAIProvider
from activities.llm.provider import ChatOutcome, GenerationOptions, LlmProvider, OnDelta, PromptMessage
from config.settings import Settings
from models.agent import AgentTemplate, LlmProviderName


@dataclass(frozen=True)
class ChatModel:
    """A provider bound to one model and its generation options."""

    provider: LlmProvider
    name: str
    options: GenerationOptions

    async def chat(
        self, messages: Sequence[PromptMessage], tools: Sequence[dict] = (), on_delta: OnDelta | None = None
    ) -> ChatOutcome:
        return await self.provider.chat(self.name, messages, self.options, tools, on_delta)

    def with_max_tokens(self, max_tokens: int) -> ChatModel:
        """The same model with another generation cap (a structured answer whose size its schema
        bounds needs its own, whatever the agent's replies may take)."""
        return replace(self, options=replace(self.options, max_tokens=max_tokens))

    async def structured(self, messages: Sequence[PromptMessage], schema: dict | type[BaseModel]) -> str:
        """JSON text meant to fit ``schema`` (a JSON schema, or a pydantic model's), at
        temperature 0; the caller validates it."""
        options = replace(self.options, temperature=0.0)
        json_schema = schema if isinstance(schema, dict) else schema.model_json_schema()
        return await self.provider.structured(self.name, messages, json_schema, options)


class LlmProviders:
    """One provider per server, made on first use from the settings, closed together."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._providers: dict[tuple[str, str, str | None], LlmProvider] = {}

    def chat_model(self, template: AgentTemplate, model: str | None = None) -> ChatModel:
        """The chat model of ``template`` (``model`` overrides the template's, e.g. the one the
        conversation resolved at its start). Raises :class:`ModelBadRequest` when the template
        names an API key variable this worker does not have."""
        settings = self._settings
        provider = self.provider(template.provider or settings.llm_provider, template.base_url, template.api_key_env)
        options = GenerationOptions(
            context_size=template.context_size,
            temperature=template.temperature,
            max_tokens=template.max_tokens or settings.max_tokens,
        )
        return ChatModel(provider, model or template.model or settings.model, options)

    def provider(self, kind: LlmProviderName, base_url: str | None = None, api_key_env: str | None = None) -> LlmProvider:
        key = (kind, base_url or "", api_key_env)
        if key not in self._providers:
            api_key = self._settings.openai_api_key.get_secret_value()
            if api_key_env is not None:
                api_key = os.environ.get(api_key_env, "")
                if not api_key:
                    raise ModelBadRequest(
                        f"the agent template reads its server's API key from ${api_key_env}, "
                        "which is not set on this worker"
                    )
            self._providers[key] = make_provider(self._settings, kind, base_url, api_key)
        return self._providers[key]

    async def close(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.close()


def make_provider(settings: Settings, kind: LlmProviderName, base_url: str | None = None, api_key: str = "") -> LlmProvider:
    """A provider for ``kind`` at ``base_url`` (default: the settings' URL for that kind)."""
    if kind == "ollama":
        return OllamaProvider(base_url or settings.ollama_host, timeout_s=settings.llm_timeout_s)
    return OpenAIProvider(base_url or settings.openai_base_url, api_key=api_key, timeout_s=settings.llm_timeout_s)


def chat_provider(settings: Settings) -> LlmProvider:
    """The default chat server of the settings (what ``daemonflow dev`` and health probe)."""
    return make_provider(settings, settings.llm_provider, api_key=settings.openai_api_key.get_secret_value())


EMBED_TIMEOUT_S = 120.0


def embedding_provider(settings: Settings) -> LlmProvider:
    """The embedding server: ``DAEMONFLOW_EMBED_PROVIDER`` / ``_EMBED_BASE_URL`` / ``_EMBED_API_KEY``,
    each defaulting to the chat server's (llama.cpp needs a second ``llama-server --embeddings``
    process, so there the URL differs)."""
    kind = settings.embed_provider or settings.llm_provider
    key = settings.embed_api_key.get_secret_value() or settings.openai_api_key.get_secret_value()
    bounded = settings.model_copy(update={"llm_timeout_s": min(settings.llm_timeout_s, EMBED_TIMEOUT_S)})
    return make_provider(bounded, kind, settings.embed_base_url or None, key)
