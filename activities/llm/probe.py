"""What ``daemonflow dev``, health checks and the API show about the model servers.

``await probe_server("openai", "http://127.0.0.1:8080/v1")`` → :class:`~models.llm.ServerProbe`
(reachable, server and version, models, latency, error); it never raises. ``probe_model_servers``
probes the chat server of the settings and, when it is another one, the embedding server;
``describe`` turns a probe into the lines a person reads, with what to do about a missing model;
``model_server_lines`` is all of it for the settings (what ``daemonflow dev`` prints).
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


async def model_server_lines(settings: Settings, timeout_s: float = PROBE_TIMEOUT_S) -> list[str]:
    """What answers for chat and embeddings, their models, and what to do about what is missing."""
    probes = await probe_model_servers(settings, timeout_s)
    lines: list[str] = []
    for role, probe in probes.items():
        wanted = [settings.model] if role == "chat" else []
        if role == "embeddings" or "embeddings" not in probes:
            wanted.append(settings.embed_model)
        lines += describe(role, probe, wanted)
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
