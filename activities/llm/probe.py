"""The one probe of the model servers: what ``daemonflow dev``, the monitoring round
(``health.check``), the API's ``GET /health`` and its model check on ``POST /conversations`` show.

A probe asks a server through its provider (:meth:`LlmProvider.probe`: Ollama's ``/api/version``
and ``/api/tags``, an OpenAI-compatible server's ``/v1/models``), so every caller reads the
addresses the way the model calls do (``OLLAMA_HOST`` through ``ollama_base_url``, the template's
own ``provider`` and ``base_url``). It never raises; what went wrong is in ``ServerProbe.error``.

- ``model_servers(settings)`` — the servers the settings use: the chat server and, when
  embeddings come from another one, the embedding server, each with the models wanted of it and
  its name as a dependency (the provider's: ``ollama``, ``openai``; ``…-embeddings`` for a
  separate embedding server);
- ``probe_server`` / ``probe_model_servers`` / ``probe_template_server`` — probes of one server,
  of the settings' servers, of the server a template's model runs on;
- ``verdict`` — a probe as a dependency's state for health (down, missing a model, fine);
- ``describe`` / ``model_server_lines`` — what a person reads (``daemonflow dev``), with fixes.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Literal, get_args

from activities.llm.chat_models import chat_provider, embedding_provider, make_provider
from activities.llm.ollama_provider import OllamaProvider
from activities.llm.openai_provider import OpenAIProvider
from activities.llm.provider import PROBE_TIMEOUT_S, LlmProvider
from config.settings import Settings
from models.agent import AgentTemplate, LlmProviderName
from models.llm import ServerProbe

Role = Literal["chat", "embeddings"]


@dataclass(frozen=True)
class ModelServer:
    """One server the settings use, for which roles, and the models wanted of it."""

    provider: LlmProvider
    roles: tuple[Role, ...]
    wanted: tuple[str, ...]

    @property
    def name(self) -> str:
        """Its name as a dependency: the provider's, ``-embeddings`` when it serves embeddings only."""
        return self.provider.kind if "chat" in self.roles else f"{self.provider.kind}-embeddings"


def model_servers(settings: Settings) -> list[ModelServer]:
    """The chat server (wanted: ``DAEMONFLOW_MODEL``, and ``DAEMONFLOW_EMBED_MODEL`` when it embeds
    too), then the embedding server when it is another one. Nothing is asked yet."""
    chat, embed = chat_provider(settings), embedding_provider(settings)
    if (embed.kind, embed.base_url) == (chat.kind, chat.base_url):
        return [ModelServer(chat, ("chat", "embeddings"), (settings.model, settings.embed_model))]
    return [ModelServer(chat, ("chat",), (settings.model,)), ModelServer(embed, ("embeddings",), (settings.embed_model,))]


async def probe_server(
    kind: LlmProviderName, base_url: str, api_key: str = "", timeout_s: float = PROBE_TIMEOUT_S
) -> ServerProbe:
    """One server of ``kind`` at ``base_url`` (for Ollama, anything ``OLLAMA_HOST`` may say)."""
    provider: LlmProvider = (
        OllamaProvider(base_url, timeout_s=timeout_s)
        if kind == "ollama"
        else OpenAIProvider(base_url, api_key=api_key, timeout_s=timeout_s)
    )
    return await _probe(provider, timeout_s)


def is_model_server_check(name: str) -> bool:
    """Whether a health check of this name is one of :attr:`ModelServer.name`."""
    return name.removesuffix("-embeddings") in get_args(LlmProviderName)


async def probe_model_server(server: ModelServer, timeout_s: float = PROBE_TIMEOUT_S) -> ServerProbe:
    return await _probe(server.provider, timeout_s)


async def probe_model_servers(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> dict[Role, ServerProbe]:
    """``{"chat": …}``, plus ``"embeddings"`` when embeddings come from another server."""
    return {server.roles[0]: probe for server, probe in await _probe_all(model_servers(settings), timeout_s)}


async def _probe_all(servers: list[ModelServer], timeout_s: float) -> list[tuple[ModelServer, ServerProbe]]:
    probes = await asyncio.gather(*(probe_model_server(s, timeout_s) for s in servers))
    return list(zip(servers, probes, strict=True))


async def probe_template_server(
    settings: Settings, template: AgentTemplate, timeout_s: float = PROBE_TIMEOUT_S
) -> ServerProbe:
    """The server ``template``'s model runs on (its ``provider`` and ``base_url``, else the
    settings'), with the API key its ``api_key_env`` names when this process has it."""
    key = settings.openai_api_key.get_secret_value()
    if template.api_key_env:
        key = os.environ.get(template.api_key_env, "")
    kind = template.provider or settings.llm_provider
    return await _probe(make_provider(settings, kind, template.base_url, key), timeout_s)


async def _probe(provider: LlmProvider, timeout_s: float) -> ServerProbe:
    try:
        return await provider.probe(timeout_s)
    finally:
        await provider.close()


def verdict(probe: ServerProbe, wanted: tuple[str, ...] | list[str]) -> tuple[Literal["ok", "missing", "down"], str]:
    """A probe as a dependency's state, and one line that says it: ``down`` (nothing answers),
    ``missing`` (it answers but surely lacks a wanted model, and how to get it), ``ok``."""
    if not probe.reachable:
        return "down", f"{_what(probe)} at {probe.base_url}: {probe.error}"
    where = f"{_what(probe)}{f' {probe.version}' if probe.version else ''} at {probe.base_url}"
    missing = [m for m in wanted if probe.lacks(m)]
    if missing:
        return "missing", f"{where} answers but has no {', '.join(missing)} ({_get(probe, missing)})"
    return "ok", f"{where}, {len(probe.models)} model(s)"


def _what(probe: ServerProbe) -> str:
    if probe.server:
        return probe.server
    return "Ollama" if probe.provider == "ollama" else "the OpenAI-compatible server"


def _get(probe: ServerProbe, models: list[str]) -> str:
    if probe.provider == "ollama":
        return ", ".join(f"`ollama pull {m}`" for m in models)
    return "start the server with it, or name one it lists"


async def model_server_lines(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> list[str]:
    """What answers for chat and embeddings, their models, and what to do about what is missing."""
    lines: list[str] = []
    for server, probe in await _probe_all(model_servers(settings), timeout_s):
        lines += describe(server.roles[0], probe, list(server.wanted))
    return lines


def describe(role: str, probe: ServerProbe, wanted: list[str]) -> list[str]:
    """Lines for a person: what answers where, and for each wanted model whether it is there."""
    if not probe.reachable:
        return [f"{role}: NOT reachable at {probe.base_url} ({probe.error})", *_fixes(probe, wanted)]
    what = " ".join(p for p in (probe.server or "a server", probe.version and f"version {probe.version}") if p)
    lines = [
        f"{role}: {what} at {probe.base_url} ({probe.latency_ms:g} ms), {len(probe.models)} model(s): "
        f"{', '.join(probe.models) or 'none'}"
    ]
    for model in wanted:
        if probe.has_model(model):
            lines.append(f"  {model}: present")
        elif probe.provider == "ollama":
            lines.append(f"  {model}: MISSING — run `ollama pull {model}`")
        elif probe.serves_only_listed:
            lines.append(f"  {model}: MISSING — {probe.server} serves only the models it lists")
        else:
            lines.append(f"  {model}: not listed (a llama-server answers with whatever it serves; vLLM refuses)")
    return lines


def _fixes(probe: ServerProbe, wanted: list[str]) -> list[str]:
    if probe.provider == "ollama":
        return [
            "  conversations wait and retry until it answers. To fix it: install Ollama "
            "(https://ollama.com/download), start it (`ollama serve`), "
            + ", ".join(f"`ollama pull {m}`" for m in wanted)
            + ", or set OLLAMA_HOST to where it runs; or `make local-model` for a tiny local model",
        ]
    return [
        "  conversations wait and retry until it answers. To fix it: start the server, or set "
        "DAEMONFLOW_OPENAI_BASE_URL (DAEMONFLOW_EMBED_BASE_URL for embeddings) to where it runs",
    ]
