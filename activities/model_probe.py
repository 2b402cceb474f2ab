"""Is a model server there, which version, which models, how fast: the one probe of a model server.

``daemonflow dev`` (its start banner), the monitoring round (``health.check``), the API's
``GET /health`` and its model check on ``POST /conversations`` all ask here, so ``OLLAMA_HOST`` is
read one way everywhere: as Ollama's own clients read it (``ollama_base_url``). The probe never
raises; what went wrong is in ``error``. Provider-shaped on purpose: a probe of an
OpenAI-compatible server returns the same ``ServerProbe`` from its base URL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

OLLAMA_DEFAULT_PORT = 11434
SCHEME_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ServerProbe:
    base_url: str
    reachable: bool
    version: str | None = None
    models: list[str] = field(default_factory=list)
    """Model names as the server lists them (``llama3.2:latest``)."""
    latency_ms: float | None = None
    error: str | None = None

    def has_model(self, name: str) -> bool:
        """Whether ``name`` is pulled; a name without a tag means ``:latest``, as for Ollama."""
        return canonical_model(name) in {canonical_model(m) for m in self.models}


def canonical_model(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


def ollama_base_url(host: str | None) -> str:
    """``OLLAMA_HOST`` as Ollama's clients read it: scheme, host and port all optional
    (``gpu-box`` → ``http://gpu-box:11434``, ``https://gpu-box`` → ``https://gpu-box:443``,
    ``:8080`` → ``http://127.0.0.1:8080``); a path is kept, a trailing slash is not."""
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


async def probe_ollama(base_url: str, timeout_s: float) -> ServerProbe:
    """``GET /api/version`` and ``/api/tags`` at ``base_url`` (from ``ollama_base_url``)."""
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s) as http:
            version = (await http.get("/api/version")).raise_for_status().json().get("version")
            listed = (await http.get("/api/tags")).raise_for_status().json().get("models", [])
    except (httpx.HTTPError, ValueError) as err:
        why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        return ServerProbe(base_url, reachable=False, latency_ms=_since(started), error=why[:500])
    models = sorted(name for m in listed if (name := m.get("name") or m.get("model")))
    return ServerProbe(base_url, reachable=True, version=version, models=models, latency_ms=_since(started))


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
