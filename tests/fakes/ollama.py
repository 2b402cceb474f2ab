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

Stdlib only; one instance owns one listening socket and its threads, nothing
is global.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import math
import re
import socket
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator

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
DEFAULT_EMBED_DIM = 384
OLLAMA_VERSION = "0.12.6"
RUNNER_CRASHED = "llama runner process has terminated: exit status 2"
INFERENCE_PATHS: tuple[str, ...] = ("/api/chat", "/api/embed", "/api/embeddings")
"""Endpoints that run the model: ``delay_s`` and ``fail_next`` apply to these, so a
health probe (``/``, ``/api/tags``, ``/api/version``) stays fast and honest."""

_EMBEDDING_NAME = re.compile(r"embed|minilm|bge|gte|arctic|e5-")
_WORD = re.compile(r"\w+")
_CHUNK = re.compile(r"\s*\S{1,8}|\s+")
_NS_PER_MS = 1_000_000


# --------------------------------------------------------------------------- script


@dataclass(frozen=True)
class ToolCall:
    """One function call the fake model asks for (``message.tool_calls[i].function``)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    """What the fake model answers to one ``/api/chat`` call.

    ``error`` makes the whole call fail before any byte of output, with HTTP
    ``status`` (default 500) and Ollama's ``{"error": ...}`` body.  ``stream_error``
    instead fails *after* the content has streamed, as Ollama does when a runner
    dies mid-generation (an NDJSON ``{"error": ...}`` line; a 500 when not
    streaming).  ``hang_up_after`` drops the connection after that many streamed
    chunks, without the final ``done`` chunk.  ``delay_s`` adds to the server's
    ``delay_s`` for this reply only.
    """

    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    thinking: str = ""
    done_reason: str = "stop"
    error: str | None = None
    status: int | None = None
    stream_error: str | None = None
    hang_up_after: int | None = None
    delay_s: float = 0.0


Responder = Callable[[dict[str, Any]], "Reply | str"]
"""Builds a reply from the parsed ``/api/chat`` request body."""


def echo_responder(request: dict[str, Any]) -> Reply:
    """Default responder: ``"echo: "`` + the last user message, so unscripted calls are traceable."""
    last_user = next(
        (m.get("content") or "" for m in reversed(request.get("messages") or []) if m.get("role") == "user"),
        "",
    )
    return Reply(content=f"echo: {last_user}")


def system_prompt_of(request: dict[str, Any]) -> str:
    """The system message of a ``/api/chat`` request body ("" when there is none)."""
    return next((m.get("content") or "" for m in request.get("messages") or [] if m.get("role") == "system"), "")


def by_system_prompt(routes: dict[str, Responder | Reply | str], default: Responder = echo_responder) -> Responder:
    """A responder that answers each chat call as the agent it is for: the first route whose key
    appears in the call's system prompt answers (a responder, a fixed ``Reply`` or text), else
    ``default``. Agents in one test then answer deterministically whatever order their calls come
    in (a channel's agents, say, keyed on ``"You are developer"``)."""

    def respond(request: dict[str, Any]) -> Reply | str:
        system = system_prompt_of(request)
        route = next((answer for key, answer in routes.items() if key in system), default)
        return route(request) if callable(route) else route

    return respond


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; ``body`` is the parsed JSON (``None`` if empty)."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    time: float


@dataclass
class _Failure:
    status: int
    error: str
    paths: tuple[str, ...]


# --------------------------------------------------------------------------- embeddings


def hashed_embedding(text: str, dim: int = DEFAULT_EMBED_DIM) -> list[float]:
    """A deterministic, L2-normalised bag of words (plus character trigrams).

    Signed feature hashing makes texts that share words point the same way and
    unrelated texts land near-orthogonal, which is all a retrieval test needs.
    Empty text gives the zero vector.
    """
    vec = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        _add_feature(vec, "w:" + word, 1.0)
        padded = f"#{word}#"
        for i in range(len(padded) - 2):
            _add_feature(vec, "t:" + padded[i : i + 3], 0.25)
    return _normalise(vec)


_FUNCTION_WORDS = frozenset(
    "a an and are as at be but by can do does for from has have how i in is it its my of on or our so"
    " than that the their them then there these they this those to was we were what when where which who"
    " why will with would you your".split()
)


def content_word_embedding(text: str, dim: int = DEFAULT_EMBED_DIM) -> list[float]:
    """A sharper deterministic embedding for routing tests: content words only.

    Like :func:`hashed_embedding` but without character trigrams and without English function
    words, and with a plural ``s`` folded (``tests`` is ``test``): two texts are close only when
    they share content words, and a pasta recipe is near-orthogonal to "pytest tests", as a
    sentence model would have it (hashed_embedding puts them at 0.2 through shared trigrams and
    words like "this"). Set ``fake.embedder = content_word_embedding`` to use it.
    """
    vec = [0.0] * dim
    for word in _WORD.findall(text.lower()):
        if len(word) < 2 or word in _FUNCTION_WORDS:
            continue
        stem = word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
        _add_feature(vec, "w:" + stem, 1.0)
    return _normalise(vec)


def _add_feature(vec: list[float], feature: str, weight: float) -> None:
    h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
    vec[h % len(vec)] += weight if h >> 63 else -weight


def _normalise(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vec))
    return [round(v / norm, 7) for v in vec] if norm else vec


# --------------------------------------------------------------------------- helpers


def _now() -> str:
    """Ollama's ``created_at``: RFC 3339 UTC."""
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _canonical(model: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest``, case-folded, as Ollama resolves names."""
    name = model.strip().lower()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def _words(text: str | None) -> int:
    return len((text or "").split())


def _chunks(text: str) -> list[str]:
    """Split text into word-sized pieces (at most 8 non-space chars) that join back exactly."""
    return _CHUNK.findall(text)


def _tool_call_json(index: int, call: ToolCall) -> dict[str, Any]:
    return {
        "id": "call_" + hashlib.sha1(f"{index}:{call.name}".encode()).hexdigest()[:8],
        "function": {"index": index, "name": call.name, "arguments": call.arguments},
    }


# --------------------------------------------------------------------------- HTTP plumbing


class _Server(http.server.ThreadingHTTPServer):
    """One listening socket plus the connection threads it spawned.

    Connections are tracked so :meth:`close` can cut them (idle keep-alive ones
    too, else a pooled client would keep talking to a "down" server) and join
    their threads: no leaked threads, no hang on slow streams.
    """

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeOllama) -> None:
        self.fake = fake
        self.closing = threading.Event()
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: Any) -> None:  # type: ignore[override]
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"fake-ollama-conn:{self.server_address[1]}",
            daemon=True,
        )
        with self._conns_lock:
            self._conns[request] = thread
        thread.start()

    def _serve_connection(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._conns_lock:  # last, so close() still joins a thread that is just finishing
                self._conns.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Cut connections are expected (``down()``, ``hang_up_after``); anything else is a fake bug."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def close(self, timeout: float = 1.0) -> None:
        """Refuse new connections, cut live ones, and join their threads."""
        self.closing.set()
        self.shutdown()  # serve_forever returns: no more accepts
        self.server_close()  # listening socket gone: connects are refused
        with self._conns_lock:
            conns = dict(self._conns)
        for sock in conns:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for thread in conns.values():
            thread.join(max(0.0, deadline - time.monotonic()))


class _Cut(Exception):
    """The server is closing (or a reply hangs up): drop the connection without a response."""


class _Handler(http.server.BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 with keep-alive and chunked NDJSON, like Ollama's Go server."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls
    server_version = "FakeOllama"
    sys_version = ""
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def _dispatch(self) -> None:
        self.responded = False
        try:
            self.server.fake._handle(self, self.command, self.path.split("?", 1)[0], self._read_body())
        except _Cut:
            self._hang_up()
        except OSError:
            self.close_connection = True
        except Exception as exc:
            # A bug in a test's responder: say so to the client rather than just hanging up.
            traceback.print_exc()
            if self.responded:
                self._hang_up()
            else:
                self.send_error_json(500, f"FakeOllama: {type(exc).__name__}: {exc}")

    def _hang_up(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.responded = True
        super().send_response(code, message)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- responses

    def wait(self, seconds: float) -> None:
        """Sleep, but give up at once when the server closes."""
        if seconds > 0 and self.server.closing.wait(seconds):
            raise _Cut

    def send_json(self, status: int, payload: Any) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

    def send_error_json(self, status: int, error: str) -> None:
        self.send_json(status, {"error": error})

    def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def send_ndjson(self, lines: Iterable[dict[str, Any]]) -> None:
        """Stream one JSON object per line, each in its own HTTP chunk, flushed as it goes."""
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        for line in lines:
            data = json.dumps(line).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------- the fake


class FakeOllama:
    """An Ollama look-alike on ``127.0.0.1``; see the module docstring.

    Knobs are plain attributes, read per request, so a test may change them at
    any time: ``models``, ``embed_dims``, ``capabilities``, ``responder``,
    ``embedder``, ``delay_s``, ``chunk_delay_s``, ``version``.
    """

    def __init__(
        self,
        models: Iterable[str] | None = None,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        embed_dims: dict[str, int] | None = None,
        default_embed_dim: int = DEFAULT_EMBED_DIM,
    ) -> None:
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
        self.delay_s = 0.0
        """Seconds before the first byte of every chat/embed response (a slow or loading model)."""
        self.chunk_delay_s = 0.0
        """Seconds between streamed chunks."""
        self.version = OLLAMA_VERSION

        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._script: deque[Reply | Responder] = deque()
        self._structured: deque[Reply | Responder] = deque()
        self._failures: deque[_Failure] = deque()
        self._requests: list[RecordedRequest] = []
        self._loaded: dict[str, float] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeOllama:
        """Bind (an ephemeral port unless one was given) and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("FakeOllama already started")
        self._bind()
        return self

    def stop(self) -> None:
        """Close the socket, cut in-flight requests and join every thread (~1 s at worst). Idempotent."""
        self._unbind()

    def down(self) -> None:
        """Simulate Ollama being stopped: connections are refused (not hung) until :meth:`up`."""
        if self._server is None:
            raise RuntimeError("FakeOllama is not up")
        self._unbind()

    def up(self) -> None:
        """Listen again on the same port after :meth:`down`."""
        if self._server is not None:
            raise RuntimeError("FakeOllama is already up")
        if not self._port:
            raise RuntimeError("FakeOllama was never started")
        self._bind()

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bind(self) -> None:
        server = _Server((self._host, self._port), self)
        self._port = server.server_address[1]
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how long stop()/down() wait for the accept loop
            name=f"fake-ollama:{self._port}",
            daemon=True,
        )
        thread.start()
        self._server, self._thread = server, thread

    def _unbind(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.close()
        if thread is not None:
            thread.join(1.0)

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """Base URL for ``ollama.Client(host=...)`` or ``OLLAMA_HOST``."""
        return f"http://{self._host}:{self._port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

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
        with self._lock:
            self._failures.extend(_Failure(status, error, tuple(paths)) for _ in range(n))

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
            self._failures.clear()
            self._requests.clear()

    # -- request log

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        """Bodies of the requests to ``path``."""
        return [r.body for r in self.requests if r.path == path]

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

    def _handle(self, h: _Handler, method: str, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            self._record(method, path, raw.decode(errors="replace"), h)
            h.send_error_json(400, f"invalid JSON: {exc}")
            return
        self._record(method, path, body, h)

        if path in INFERENCE_PATHS:
            h.wait(self.delay_s)
        failure = self._take_failure(path)
        if failure is not None:
            h.send_error_json(failure.status, failure.error)
            return

        route = self._routes().get((method, path))
        if route is None:
            h.send_bytes(404, b"404 page not found", "text/plain")
            return
        if method == "POST" and not isinstance(body, dict):
            h.send_error_json(400, "missing request body" if body is None else "invalid request body")
            return
        route(h, body)

    def _routes(self) -> dict[tuple[str, str], Callable[[_Handler, Any], None]]:
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

    def _record(self, method: str, path: str, body: Any, h: _Handler) -> None:
        entry = RecordedRequest(method, path, body, {k.lower(): v for k, v in h.headers.items()}, time.time())
        with self._lock:
            self._requests.append(entry)

    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if path in failure.paths:
                    self._failures.remove(failure)
                    return failure
        return None

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if body.get("format"):
                item: Reply | Responder = self._structured.popleft() if self._structured else Reply(content="{}")
            else:
                item = self._script.popleft() if self._script else self.responder
        reply = item if isinstance(item, Reply) else item(body)
        return Reply(content=reply) if isinstance(reply, str) else reply

    def _root(self, h: _Handler, _: Any) -> None:
        h.send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _ps(self, h: _Handler, _: Any) -> None:
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

    def _show(self, h: _Handler, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name") or ""
        if not name:
            h.send_error_json(400, "model is required")
            return
        if not self.has_model(name):
            h.send_error_json(404, f"model '{name}' not found")
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

    def _pull(self, h: _Handler, body: dict[str, Any]) -> None:
        """Pulling always succeeds and installs the model (use ``fail_next(paths=["/api/pull"])`` to refuse)."""
        name = body.get("model") or body.get("name") or ""
        if not name:
            h.send_error_json(400, "invalid model name")
            return
        self.add_model(name)
        if body.get("stream", True):
            h.send_ndjson({"status": s} for s in ("pulling manifest", "verifying sha256 digest", "writing manifest", "success"))
        else:
            h.send_json(200, {"status": "success"})

    def _chat(self, h: _Handler, body: dict[str, Any]) -> None:
        started = time.monotonic()
        name = body.get("model") or ""
        if not name:
            h.send_error_json(400, "model is required")
            return
        if not self.has_model(name):
            h.send_error_json(404, f'model "{name}" not found, try pulling it first')
            return
        caps = self.capabilities_of(name)
        if "completion" not in caps:
            h.send_error_json(400, f'"{name}" does not support chat')
            return
        if body.get("tools") and "tools" not in caps:
            h.send_error_json(400, f"registry.ollama.ai/library/{_canonical(name)} does not support tools")
            return
        self._mark_loaded(name)
        messages = body.get("messages") or []
        if not messages:  # Ollama's "load the model" request
            h.send_json(200, {"model": name, "created_at": _now(), "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "load"})
            return

        reply = self._next_reply(body)
        h.wait(reply.delay_s)
        if reply.error is not None:
            h.send_error_json(reply.status or 500, reply.error)
            return

        tools = body.get("tools") or []
        prompt_tokens = sum(_words(m.get("content")) for m in messages) + (_words(json.dumps(tools)) if tools else 0)
        tool_calls = [_tool_call_json(i, c) for i, c in enumerate(reply.tool_calls)]
        reply_text = " ".join([reply.content, reply.thinking, *(json.dumps(c.arguments) for c in reply.tool_calls)])
        eval_tokens = max(1, _words(reply_text))

        def final(message: dict[str, Any]) -> dict[str, Any]:
            load, prompt_ns, eval_ns = 5 * _NS_PER_MS, prompt_tokens * _NS_PER_MS, eval_tokens * 20 * _NS_PER_MS
            total = max(int((time.monotonic() - started) * 1e9), load + prompt_ns + eval_ns)
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
                h.send_error_json(reply.status or 500, reply.stream_error)
                return
            message: dict[str, Any] = {"role": "assistant", "content": reply.content}
            if reply.thinking:
                message["thinking"] = reply.thinking
            if tool_calls:
                message["tool_calls"] = tool_calls
            h.send_json(200, final(message))
            return

        h.send_ndjson(self._stream(h, name, reply, tool_calls, final))

    def _stream(
        self,
        h: _Handler,
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
                raise _Cut
            if sent:
                h.wait(self.chunk_delay_s)
            yield {"model": name, "created_at": _now(), "message": message, "done": False}
        if reply.hang_up_after is not None:
            raise _Cut
        if reply.stream_error is not None:
            yield {"error": reply.stream_error}
            return
        if messages:
            h.wait(self.chunk_delay_s)
        yield final({"role": "assistant", "content": ""})

    def _embed(self, h: _Handler, body: dict[str, Any]) -> None:
        name = body.get("model") or ""
        if not name:
            h.send_error_json(400, "model is required")
            return
        raw = body.get("input")
        if isinstance(raw, str):
            texts = [raw] if raw else []
        elif isinstance(raw, list) and all(isinstance(t, str) for t in raw):
            texts = raw
        elif raw is None:
            texts = []
        else:
            h.send_error_json(400, "invalid input type")
            return
        if not self.has_model(name):
            h.send_error_json(404, f"model '{name}' not found")
            return
        self._mark_loaded(name)
        dim = self.embed_dim_of(name)
        wanted = body.get("dimensions") or 0
        vectors = [self.embedder(t, dim) for t in texts]
        if 0 < wanted < dim:
            vectors = [_normalise(v[:wanted]) for v in vectors]
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

    def _embeddings(self, h: _Handler, body: dict[str, Any]) -> None:
        """The legacy single-prompt endpoint."""
        name = body.get("model") or ""
        if not self.has_model(name):
            h.send_error_json(404, f'model "{name}" not found, try pulling it first')
            return
        self._mark_loaded(name)
        prompt = body.get("prompt") or ""
        h.send_json(200, {"embedding": self.embedder(prompt, self.embed_dim_of(name)) if prompt else []})
