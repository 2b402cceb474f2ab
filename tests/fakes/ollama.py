"""A fake Ollama server: real HTTP on a real port, scripted replies.

Tests drive the *real* ``ollama.Client`` / ``ollama.AsyncClient`` (and worker
subprocesses) against this server, so everything between our code and the
socket -- httpx, NDJSON streaming, error mapping, connection refusal -- is the
genuine article.  Only the model is fake: each ``/api/chat`` call takes the next
scripted :class:`Reply`, or asks :attr:`FakeOllama.responder` when the script is
empty.  Structured-output calls (a ``format`` in the request, e.g. memory
extraction) have a script of their own (:meth:`FakeOllama.script_structured`)
and answer ``{}`` by default, so they never take a conversation's scripted reply.

Wire shapes follow Ollama's REST API (``/api/chat``, ``/api/embed``,
``/api/embeddings``, ``/api/tags``, ``/api/show``, ``/api/ps``, ``/api/pull``,
``/api/version`` and ``/``), including its error bodies and wording, e.g.
``404 {"error": "model \\"x\\" not found, try pulling it first"}`` for chat.

Stdlib only (the HTTP plumbing is ``tests/fakes/http.py``); one instance owns one
listening socket and its threads, nothing is global.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator

from tests.fakes.http import Cut, FakeHTTPServer, Handler, RecordedRequest
from tests.fakes.script import (
    DEFAULT_EMBED_DIM,
    Reply,
    Responder,
    ToolCall,
    by_system_prompt,
    content_word_embedding,
    echo_responder,
    hashed_embedding,
    normalise,
    system_prompt_of,
)
from tests.fakes.script import chunks as _chunks
from tests.fakes.script import words as _words

__all__ = [
    "DEFAULT_MODELS",
    "DEFAULT_EMBED_DIM",
    "FakeOllama",
    "by_system_prompt",
    "system_prompt_of",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "content_word_embedding",
    "echo_responder",
    "hashed_embedding",
]

DEFAULT_MODELS: tuple[str, ...] = ("llama3.2", "all-minilm")
OLLAMA_VERSION = "0.12.6"
RUNNER_CRASHED = "llama runner process has terminated: exit status 2"
INFERENCE_PATHS: tuple[str, ...] = ("/api/chat", "/api/embed", "/api/embeddings")
"""Endpoints that run the model: ``delay_s`` and ``fail_next`` apply to these, so a
health probe (``/``, ``/api/tags``, ``/api/version``) stays fast and honest."""

_EMBEDDING_NAME = re.compile(r"embed|minilm|bge|gte|arctic|e5-")
_NS_PER_MS = 1_000_000


# --------------------------------------------------------------------------- helpers


def _now() -> str:
    """Ollama's ``created_at``: RFC 3339 UTC."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _canonical(model: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest``, case-folded, as Ollama resolves names."""
    name = model.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _tool_call_json(index: int, call: ToolCall) -> dict[str, Any]:
    return {
        "id": "call_" + hashlib.sha1(f"{index}:{call.name}".encode()).hexdigest()[:8],
        "function": {"index": index, "name": call.name, "arguments": call.arguments},
    }


# --------------------------------------------------------------------------- the fake


class FakeOllama(FakeHTTPServer):
    """An Ollama look-alike on ``127.0.0.1``; see the module docstring.

    Knobs are plain attributes, read per request, so a test may change them at
    any time: ``models``, ``embed_dims``, ``capabilities``, ``responder``,
    ``embedder``, ``delay_s``, ``chunk_delay_s``, ``simulated_timings``, ``min_duration_s``, ``version``.
    """

    thread_name = "fake-ollama"
    server_header = "FakeOllama"
    inference_paths = INFERENCE_PATHS

    def __init__(
        self,
        models: Iterable[str] | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        embed_dims: dict[str, int] | None = None,
        default_embed_dim: int = DEFAULT_EMBED_DIM,
    ) -> None:
        super().__init__(port=port, host=host)
        self.models: list[str] = list(DEFAULT_MODELS if models is None else models)
        """Installed models; a name without a tag means ``:latest``."""
        self.embed_dims: dict[str, int] = dict(embed_dims or {})
        """Embedding dimension per model (by name as given); others get ``default_embed_dim``."""
        self.default_embed_dim = default_embed_dim
        self.capabilities: dict[str, list[str]] = {}
        """Overrides of what a model can do; by default names that look like embedding
        models (``all-minilm``, ``nomic-embed-text``...) get ``["embedding"]`` and the
        rest ``["completion", "tools"]``."""
        self.responder: Responder = echo_responder
        """Answers chat calls once the script is empty; may return a ``Reply`` or a ``str``."""
        self.embedder: Callable[[str, int], list[float]] = hashed_embedding
        self.chunk_delay_s = 0.0
        """Seconds between streamed chunks."""
        self.simulated_timings = True
        """Chat timings as a model would report them for the tokens (1 ms a prompt token, 20 ms a
        reply token, at least the time really taken); False: only the time really taken, as for a
        model that takes no time (the benchmarks')."""
        self.min_duration_s = 0.0
        """Chat timings report at least this long, without waiting: a slow model's figures (a
        conversation runs the next step of a model it saw answer in under a second locally)."""
        self.version = OLLAMA_VERSION

        self._script: deque[Reply | Responder] = deque()
        self._structured: deque[Reply | Responder] = deque()
        self.structured_responder: Responder | None = None
        """Answers structured calls once their script is empty (default: ``{}``); a responder can
        tell the calls apart by their ``format`` (a private message's accept/refuse asks for
        ``accept`` and ``reason``, memory extraction for ``memories``)."""
        self._loaded: dict[str, float] = {}

    @property
    def url(self) -> str:
        """Base URL for ``ollama.Client(host=...)`` or ``OLLAMA_HOST``."""
        return f"http://{self._host}:{self._port}"

    # -- scripting

    def script(self, *replies: Reply | str | Responder) -> None:
        """Queue replies for the next ``/api/chat`` calls, in order.

        A ``str`` is shorthand for ``Reply(content=...)``; a callable is called
        with the request body when its turn comes.
        """
        with self._lock:
            self._script.extend(Reply(content=r) if isinstance(r, str) else r for r in replies)

    def script_structured(self, *replies: Reply | str | Responder) -> None:
        """Queue replies for the next ``/api/chat`` calls that carry a ``format`` (structured
        outputs); once these run out such calls get ``{}``."""
        with self._lock:
            self._structured.extend(Reply(content=r) if isinstance(r, str) else r for r in replies)

    @property
    def pending(self) -> int:
        """Scripted replies not yet consumed."""
        with self._lock:
            return len(self._script)

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        error: str = RUNNER_CRASHED,
        paths: Iterable[str] = INFERENCE_PATHS,
    ) -> None:
        """Make the next ``n`` requests to ``paths`` fail with ``status``/``error``.

        A failed chat call does not consume a scripted reply, so a retry gets it.
        """
        super().fail_next(n, status, error, paths)

    def add_model(self, name: str, *, embed_dim: int | None = None, capabilities: list[str] | None = None) -> None:
        """Install a model (idempotent), optionally with its embedding size and capabilities."""
        if not self.has_model(name):
            self.models.append(name)
        if embed_dim is not None:
            self.embed_dims[name] = embed_dim
        if capabilities is not None:
            self.capabilities[name] = capabilities

    def reset(self) -> None:
        """Forget the script, pending failures and the request log."""
        with self._lock:
            self._script.clear()
            self._structured.clear()
        self.structured_responder = None
        self._clear_log()

    # -- request log

    def chat_requests(self) -> list[dict[str, Any]]:
        """``/api/chat`` bodies without a ``format``: the conversation's own model calls."""
        return [b for b in self.requests_to("/api/chat") if not b.get("format")]

    def structured_requests(self) -> list[dict[str, Any]]:
        """``/api/chat`` bodies with a ``format`` (structured outputs, e.g. memory extraction)."""
        return [b for b in self.requests_to("/api/chat") if b.get("format")]

    def embed_requests(self) -> list[dict[str, Any]]:
        return self.requests_to("/api/embed")

    # -- model facts

    def has_model(self, name: str) -> bool:
        wanted = _canonical(name)
        return any(_canonical(m) == wanted for m in list(self.models))

    def capabilities_of(self, name: str) -> list[str]:
        for key, caps in self.capabilities.items():
            if _canonical(key) == _canonical(name):
                return list(caps)
        return ["embedding"] if _EMBEDDING_NAME.search(name.lower()) else ["completion", "tools"]

    def embed_dim_of(self, name: str) -> int:
        for key, dim in self.embed_dims.items():
            if _canonical(key) == _canonical(name):
                return dim
        return self.default_embed_dim

    def _family(self, name: str) -> str:
        if "embedding" in self.capabilities_of(name):
            return "bert"
        match = re.match(r"[a-z]+", name.lower().rsplit("/", 1)[-1])
        return match.group(0) if match else "llama"

    def _model_entry(self, name: str) -> dict[str, Any]:
        canonical = _canonical(name)
        family = self._family(name)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return {
            "name": canonical,
            "model": canonical,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": 45_000_000 if family == "bert" else 2_019_393_189,
            "digest": digest,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": family,
                "families": [family],
                "parameter_size": "23M" if family == "bert" else "3.2B",
                "quantization_level": "F16" if family == "bert" else "Q4_K_M",
            },
        }

    # -- request handling (runs on connection threads)

    def send_error(self, h: Handler, status: int, error: str) -> None:
        """Ollama's error body: ``{"error": "…"}``."""
        h.send_json(status, {"error": error})

    def _handle(self, h: Handler, method: str, path: str, body: Any) -> None:
        route = self._routes().get((method, path))
        if route is None:
            h.send_bytes(404, b"404 page not found", "text/plain")
            return
        if method == "POST" and not isinstance(body, dict):
            self.send_error(h, 400, "missing request body" if body is None else "invalid request body")
            return
        route(h, body)

    def _routes(self) -> dict[tuple[str, str], Callable[[Handler, Any], None]]:
        return {
            ("GET", "/"): self._root,
            ("HEAD", "/"): self._root,
            ("GET", "/api/version"): lambda h, _: h.send_json(200, {"version": self.version}),
            ("GET", "/api/tags"): lambda h, _: h.send_json(200, {"models": [self._model_entry(m) for m in list(self.models)]}),
            ("GET", "/api/ps"): self._ps,
            ("POST", "/api/show"): self._show,
            ("POST", "/api/pull"): self._pull,
            ("POST", "/api/chat"): self._chat,
            ("POST", "/api/embed"): self._embed,
            ("POST", "/api/embeddings"): self._embeddings,
        }

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if body.get("format"):
                item: Reply | Responder = (
                    self._structured.popleft() if self._structured else self.structured_responder or Reply(content="{}")
                )
            else:
                item = self._script.popleft() if self._script else self.responder
        reply = item if isinstance(item, Reply) else item(body)
        return Reply(content=reply) if isinstance(reply, str) else reply

    def _root(self, h: Handler, _: Any) -> None:
        h.send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _ps(self, h: Handler, _: Any) -> None:
        with self._lock:
            loaded = dict(self._loaded)
        models = []
        for name, at in loaded.items():
            entry = self._model_entry(name)
            expires = datetime.fromtimestamp(at, timezone.utc) + timedelta(minutes=5)
            entry.update(expires_at=expires.isoformat().replace("+00:00", "Z"), size_vram=entry["size"], context_length=4096)
            entry.pop("modified_at")
            models.append(entry)
        h.send_json(200, {"models": models})

    def _mark_loaded(self, name: str) -> None:
        with self._lock:
            self._loaded[_canonical(name)] = time.time()

    def _show(self, h: Handler, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        if not name:
            self.send_error(h, 400, "model is required")
            return
        if not self.has_model(name):
            self.send_error(h, 404, f"model '{name}' not found")
            return
        entry = self._model_entry(name)
        family = entry["details"]["family"]
        h.send_json(
            200,
            {
                "license": "",
                "modelfile": f'# Modelfile generated by "ollama show"\nFROM {entry["name"]}\n',
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": entry["details"],
                "model_info": {
                    "general.architecture": family,
                    f"{family}.context_length": 512 if family == "bert" else 131072,
                    f"{family}.embedding_length": self.embed_dim_of(name),
                },
                "capabilities": self.capabilities_of(name),
                "modified_at": entry["modified_at"],
            },
        )

    def _pull(self, h: Handler, body: dict[str, Any]) -> None:
        """Pulling always succeeds and installs the model (use ``fail_next(paths=["/api/pull"])`` to refuse)."""
        name = body.get("model") or body.get("name") or ""
        if not name:
            self.send_error(h, 400, "invalid model name")
            return
        self.add_model(name)
        if body.get("stream", True):
            _send_ndjson(h, ({"status": s} for s in ("pulling manifest", "verifying sha256 digest", "writing manifest", "success")))
        else:
            h.send_json(200, {"status": "success"})

    def _chat(self, h: Handler, body: dict[str, Any]) -> None:
        started = time.monotonic()
        name = body.get("model") or ""
        if not name:
            self.send_error(h, 400, "model is required")
            return
        if not self.has_model(name):
            self.send_error(h, 404, f'model "{name}" not found, try pulling it first')
            return
        caps = self.capabilities_of(name)
        if "completion" not in caps:
            self.send_error(h, 400, f'"{name}" does not support chat')
            return
        if body.get("tools") and "tools" not in caps:
            self.send_error(h, 400, f"registry.ollama.ai/library/{_canonical(name)} does not support tools")
            return
        self._mark_loaded(name)
        messages = body.get("messages") or []
        if not messages:  # Ollama's "load the model" request
            h.send_json(200, {"model": name, "created_at": _now(), "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "load"})
            return

        reply = self._next_reply(body)
        h.wait(reply.delay_s)
        if reply.error is not None:
            self.send_error(h, reply.status or 500, reply.error)
            return

        tools = body.get("tools") or []
        prompt_tokens = sum(_words(m.get("content")) for m in messages) + (_words(json.dumps(tools)) if tools else 0)
        tool_calls = [_tool_call_json(i, c) for i, c in enumerate(reply.tool_calls)]
        reply_text = " ".join([reply.content, reply.thinking, *(json.dumps(c.arguments) for c in reply.tool_calls)])
        eval_tokens = max(1, _words(reply_text))

        def final(message: dict[str, Any]) -> dict[str, Any]:
            elapsed = int((time.monotonic() - started) * 1e9)
            if self.simulated_timings:
                load, prompt_ns, eval_ns = 5 * _NS_PER_MS, prompt_tokens * _NS_PER_MS, eval_tokens * 20 * _NS_PER_MS
            else:
                load, prompt_ns, eval_ns = 0, 0, elapsed
            total = max(elapsed, load + prompt_ns + eval_ns, int(self.min_duration_s * 1e9))
            return {
                "model": name,
                "created_at": _now(),
                "message": message,
                "done": True,
                "done_reason": reply.done_reason,
                "total_duration": total,
                "load_duration": load,
                "prompt_eval_count": prompt_tokens,
                "prompt_eval_duration": prompt_ns,
                "eval_count": eval_tokens,
                "eval_duration": eval_ns,
            }

        if not body.get("stream", True):
            if reply.stream_error is not None:
                self.send_error(h, reply.status or 500, reply.stream_error)
                return
            message: dict[str, Any] = {"role": "assistant", "content": reply.content}
            if reply.thinking:
                message["thinking"] = reply.thinking
            if tool_calls:
                message["tool_calls"] = tool_calls
            h.send_json(200, final(message))
            return

        _send_ndjson(h, self._stream(h, name, reply, tool_calls, final))

    def _stream(
        self,
        h: Handler,
        name: str,
        reply: Reply,
        tool_calls: list[dict[str, Any]],
        final: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> Iterator[dict[str, Any]]:
        """Chunks in Ollama's order: thinking, content, tool calls, then the ``done`` chunk."""
        messages = [{"role": "assistant", "content": "", "thinking": t} for t in _chunks(reply.thinking)]
        messages += [{"role": "assistant", "content": c} for c in _chunks(reply.content)]
        if tool_calls:
            messages.append({"role": "assistant", "content": "", "tool_calls": tool_calls})
        for sent, message in enumerate(messages):
            if reply.hang_up_after is not None and sent >= reply.hang_up_after:
                raise Cut
            if sent:
                h.wait(self.chunk_delay_s)
            yield {"model": name, "created_at": _now(), "message": message, "done": False}
        if reply.hang_up_after is not None:
            raise Cut
        if reply.stream_error is not None:
            yield {"error": reply.stream_error}
            return
        if messages:
            h.wait(self.chunk_delay_s)
        yield final({"role": "assistant", "content": ""})

    def _embed(self, h: Handler, body: dict[str, Any]) -> None:
        name = body.get("model") or ""
        if not name:
            self.send_error(h, 400, "model is required")
            return
        raw = body.get("input")
        if isinstance(raw, str):
            texts = [raw] if raw else []
        elif isinstance(raw, list) and all(isinstance(t, str) for t in raw):
            texts = raw
        elif raw is None:
            texts = []
        else:
            self.send_error(h, 400, "invalid input type")
            return
        if not self.has_model(name):
            self.send_error(h, 404, f"model '{name}' not found")
            return
        self._mark_loaded(name)
        dim = self.embed_dim_of(name)
        wanted = body.get("dimensions") or 0
        vectors = [self.embedder(t, dim) for t in texts]
        if 0 < wanted < dim:
            vectors = [normalise(v[:wanted]) for v in vectors]
        tokens = sum(_words(t) for t in texts)
        h.send_json(
            200,
            {
                "model": name,
                "embeddings": vectors,
                "total_duration": (5 + tokens) * _NS_PER_MS,
                "load_duration": 5 * _NS_PER_MS,
                "prompt_eval_count": tokens,
            },
        )

    def _embeddings(self, h: Handler, body: dict[str, Any]) -> None:
        """The legacy single-prompt endpoint."""
        name = body.get("model") or ""
        if not self.has_model(name):
            self.send_error(h, 404, f'model "{name}" not found, try pulling it first')
            return
        self._mark_loaded(name)
        prompt = body.get("prompt") or ""
        h.send_json(200, {"embedding": self.embedder(prompt, self.embed_dim_of(name)) if prompt else []})


def _send_ndjson(h: Handler, lines: Iterable[dict[str, Any]]) -> None:
    """Stream one JSON object per line, each in its own HTTP chunk, flushed as it goes."""
    h.send_chunked("application/x-ndjson", (json.dumps(line).encode() + b"\n" for line in lines))
