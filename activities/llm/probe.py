"""What ``daemonflow dev``, health checks and the API show about the model servers.

``await probe_server("openai", "http://127.0.0.1:8080/v1")`` → :class:`~models.llm.ServerProbe`
(reachable, server and version, models, latency, error); it never raises. ``probe_model_servers``
probes the chat server of the settings and, when it is another one, the embedding server;
``describe`` turns a probe into the lines a person reads, with what to do about a missing model.
"""

from __future__ import annotations

from activities.llm.chat_models import chat_provider, embedding_provider
from activities.llm.ollama_provider import OllamaProvider
from activities.llm.openai_provider import OpenAIProvider
from activities.llm.provider import PROBE_TIMEOUT_S, LlmProvider
from config.settings import Settings
from models.agent import LlmProviderName
from models.llm import ServerProbe


async def probe_server(
    kind: LlmProviderName, base_url: str, api_key: str = "", timeout_s: float = PROBE_TIMEOUT_S
) -> ServerProbe:
    provider: LlmProvider = (
        OllamaProvider(base_url, timeout_s=timeout_s)
        if kind == "ollama"
        else OpenAIProvider(base_url, api_key=api_key, timeout_s=timeout_s)
    )
    return await _probe(provider, timeout_s)


async def probe_model_servers(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> dict[str, ServerProbe]:
    """``{"chat": …}``, plus ``"embeddings"`` when embeddings come from another server."""
    chat, embed = chat_provider(settings), embedding_provider(settings)
    probes = {"chat": await _probe(chat, timeout_s)}
    if (embed.kind, embed.base_url) != (chat.kind, chat.base_url):
        probes["embeddings"] = await _probe(embed, timeout_s)
    else:
        await embed.close()
    return probes


async def _probe(provider: LlmProvider, timeout_s: float) -> ServerProbe:
    try:
        return await provider.probe(timeout_s)
    finally:
        await provider.close()


def describe(role: str, probe: ServerProbe, wanted: list[str]) -> list[str]:
    """Lines for a person: what answers where, and for each wanted model whether it is there."""
    if not probe.reachable:
        return [f"{role}: NOT reachable at {probe.base_url} ({probe.error})"]
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
        else:
            lines.append(f"  {model}: not listed (a llama-server answers with whatever it serves; vLLM refuses)")
    return lines
