"""A fake OpenAI-compatible server (as llama.cpp's ``llama-server`` or vLLM): real HTTP on a real
port, scripted replies.

Tests drive the *real* ``openai.AsyncOpenAI`` client against it, so SSE parsing, error mapping,
timeouts and refused connections are the genuine article; only the model is fake. Each
``/v1/chat/completions`` call takes the next scripted :class:`~tests.fakes.script.Reply` (or asks
``responder``); calls with a ``response_format`` (structured output) have a script of their own
and answer ``{}`` by default.

Wire shapes follow the chat-completions API: ``GET /v1/models``, ``POST /v1/chat/completions``
(streamed as ``data: {chunk}`` events ending with ``data: [DONE]``, the usage in a last chunk
without choices when ``stream_options.include_usage``; tool calls streamed in pieces, arguments as
JSON-string fragments), ``POST /v1/embeddings``; errors as ``{"error": {"message", "type",
"code"}}``. Like a strict server (vLLM, OpenAI) it refuses a ``tool`` message that answers no
call of an earlier assistant message. ``max_tokens`` is honoured: a reply longer than that many
words is cut and finishes with ``length``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tests.fakes.http import Cut, FakeHTTPServer, Handler
from tests.fakes.script import DEFAULT_EMBED_DIM, Reply, Responder, chunks, echo_responder, hashed_embedding, words

__all__ = ["FakeOpenAI"]

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}


class FakeOpenAI(FakeHTTPServer):
    """Knobs are plain attributes, read per request: ``models``, ``api_key`` (when set, requests
    must carry ``Authorization: Bearer <it>``), ``json_schema`` (whether ``response_format`` of type
    ``json_schema`` is accepted), ``owned_by``, ``responder``, ``embedder``, ``embed_dim``,
    ``delay_s``, ``chunk_delay_s``."""

    thread_name = "fake-openai"
    server_header = "FakeOpenAI"
    inference_paths = (CHAT, EMBEDDINGS)

    def __init__(
        self,
        models: Iterable[str] = ("smollm2", "smollm2-embed"),
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        embed_dim: int = DEFAULT_EMBED_DIM,
    ) -> None:
        super().__init__(port=port, host=host)
        self.models = list(models)
        self.api_key = api_key
        self.json_schema = True
        self.owned_by = "llamacpp"
        self.embed_dim = embed_dim
        self.responder: Responder = echo_responder
        self.embedder: Callable[[str, int], list[float]] = hashed_embedding
        self.chunk_delay_s = 0.0
        self._script: deque[Reply | Responder] = deque()
        self._structured: deque[Reply | Responder] = deque()
        self._ids = iter(range(1, 1_000_000))
        self._ids_lock = threading.Lock()
        self._cached_prompt: list[str] = []
        """The previous chat prompt's words: llama-server keeps its KV cache of one slot, so a
        prompt that starts as the previous did is read from cache up to where they part."""

    def prompt_cache(self, prompt: list[str]) -> int:
        """How many of ``prompt``'s leading words the previous chat prompt shared (``cached_tokens``)."""
        with self._ids_lock:
            shared = 0
            for mine, cached in zip(prompt, self._cached_prompt):
                if mine != cached:
                    break
                shared += 1
            self._cached_prompt = prompt
            return shared

    @property
    def url(self) -> str:
        """The base URL an OpenAI client takes (``…/v1``)."""
        return f"http://{self._host}:{self._port}/v1"

    # -- scripting and the request log

    def script(self, *replies: Reply | str | Responder) -> None:
        """Queue replies for the next chat calls without ``response_format``."""
        with self._lock:
            self._script.extend(Reply(content=r) if isinstance(r, str) else r for r in replies)

    def script_structured(self, *replies: Reply | str | Responder) -> None:
        """Queue replies for the next chat calls with a ``response_format``; then ``{}``."""
        with self._lock:
            self._structured.extend(Reply(content=r) if isinstance(r, str) else r for r in replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self._structured.clear()
        self._clear_log()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [b for b in self.requests_to(CHAT) if not b.get("response_format")]

    def structured_requests(self) -> list[dict[str, Any]]:
        return [b for b in self.requests_to(CHAT) if b.get("response_format")]

    def embed_requests(self) -> list[dict[str, Any]]:
        return self.requests_to(EMBEDDINGS)

    # -- request handling (connection threads)

    def send_error(self, h: Handler, status: int, error: str) -> None:
        kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        h.send_json(status, {"error": {"message": error, "type": kind, "code": status}})

    def _handle(self, h: Handler, method: str, path: str, body: Any) -> None:
        routes = {("GET", "/v1/models"): self._models, ("POST", CHAT): self._chat, ("POST", EMBEDDINGS): self._embeddings}
        route = routes.get((method, path))
        if route is None:
            self.send_error(h, 404, f"File Not Found: {path}")
            return
        if self.api_key and h.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.send_error(h, 401, "Invalid API Key")
            return
        if method == "POST" and not isinstance(body, dict):
            self.send_error(h, 400, "the request body must be a JSON object")
            return
        route(h, body)

    def _models(self, h: Handler, _: Any) -> None:
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": self.owned_by} for m in self.models]
        h.send_json(200, {"object": "list", "data": data})

    def _refusal(self, body: dict[str, Any]) -> tuple[int, str] | None:
        """Why a chat request is refused, as a server would (status, message), or ``None``."""
        model = body.get("model") or ""
        if model not in self.models:
            return 404, f"The model `{model}` does not exist."
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, "'messages' must be a non-empty array"
        problem = _tool_message_problem(messages)
        if problem:
            return 400, problem
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema" and not self.json_schema:
            return 400, "response_format type must be one of \"text\" or \"json_object\", but got: json_schema"
        return None

    def _chat(self, h: Handler, body: dict[str, Any]) -> None:
        refusal = self._refusal(body)
        if refusal is not None:
            self.send_error(h, *refusal)
            return
        reply = self._next_reply(body)
        h.wait(reply.delay_s)
        if reply.error is not None:
            self.send_error(h, reply.status or 500, reply.error)
            return
        answer = _Answer(self, body, reply)
        if not body.get("stream"):
            if reply.stream_error is not None:
                self.send_error(h, reply.status or 500, reply.stream_error)
                return
            h.send_json(200, answer.completion())
            return
        h.send_chunked("text/event-stream", (f"data: {data}\n\n".encode() for data in answer.events(h)))

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if body.get("response_format"):
                item: Reply | Responder = self._structured.popleft() if self._structured else Reply(content="{}")
            else:
                item = self._script.popleft() if self._script else self.responder
        reply = item if isinstance(item, Reply) else item(body)
        return Reply(content=reply) if isinstance(reply, str) else reply

    def next_id(self) -> str:
        with self._ids_lock:
            return f"chatcmpl-fake{next(self._ids)}"

    def _embeddings(self, h: Handler, body: dict[str, Any]) -> None:
        model = body.get("model") or ""
        if model not in self.models:
            self.send_error(h, 404, f"The model `{model}` does not exist.")
            return
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            self.send_error(h, 400, "'input' must be a non-empty string or a non-empty array of non-empty strings")
            return
        data = [{"object": "embedding", "index": i, "embedding": self.embedder(t, self.embed_dim)} for i, t in enumerate(texts)]
        tokens = sum(words(t) for t in texts)
        h.send_json(200, {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


class _Answer:
    """One reply in chat-completions shapes, cut at ``max_tokens`` words."""

    def __init__(self, fake: FakeOpenAI, body: dict[str, Any], reply: Reply) -> None:
        self.fake, self.body, self.reply = fake, body, reply
        self.id = fake.next_id()
        self.model = body["model"]
        cap = body.get("max_tokens") or body.get("max_completion_tokens")
        pieces = reply.content.split(" ")
        self.cut = cap is not None and len([p for p in pieces if p]) > cap
        self.content = " ".join([p for p in pieces if p][:cap]) if self.cut else reply.content
        self.calls = [] if self.cut else reply.tool_calls
        said = [w for m in body["messages"] for w in (m.get("content") if isinstance(m.get("content"), str) else "").split()]
        prompt, cached = len(said), fake.prompt_cache(said)
        completion = max(1, words(self.content) + sum(words(json.dumps(c.arguments)) for c in self.calls))
        self.usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "prompt_tokens_details": {"cached_tokens": cached}}

    @property
    def finish_reason(self) -> str:
        if self.cut:
            return "length"
        return "tool_calls" if self.calls else self.reply.done_reason

    def _call(self, index: int) -> dict[str, Any]:
        call = self.calls[index]
        return {"id": f"call_{self.id}_{index}", "type": "function", "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.calls:
            message["tool_calls"] = [self._call(i) for i in range(len(self.calls))]
        choice = {"index": 0, "message": message, "finish_reason": self.finish_reason}
        return {"id": self.id, "object": "chat.completion", "created": int(time.time()), "model": self.model,
                "choices": [choice], "usage": self.usage}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
        return {"id": self.id, "object": "chat.completion.chunk", "created": int(time.time()), "model": self.model,
                "choices": [choice]}

    def _deltas(self) -> Iterator[dict[str, Any]]:
        yield {"role": "assistant", "content": ""}
        for piece in chunks(self.content):
            yield {"content": piece}
        for index in range(len(self.calls)):
            call = self._call(index)
            yield {"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                   "function": {"name": call["function"]["name"], "arguments": ""}}]}
            for piece in chunks(call["function"]["arguments"]):
                yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}

    def events(self, h: Handler) -> Iterator[str]:
        """The ``data:`` payloads of the stream, ``[DONE]`` last."""
        reply = self.reply
        for sent, delta in enumerate(self._deltas()):
            if reply.hang_up_after is not None and sent >= reply.hang_up_after:
                raise Cut
            if sent:
                h.wait(self.fake.chunk_delay_s)
            yield json.dumps(self._chunk(delta))
        if reply.hang_up_after is not None:
            raise Cut
        if reply.stream_error is not None:
            yield json.dumps({"error": {"message": reply.stream_error, "type": "server_error", "code": 500}})
            return
        yield json.dumps(self._chunk({}, self.finish_reason))
        if (self.body.get("stream_options") or {}).get("include_usage"):
            yield json.dumps({"id": self.id, "object": "chat.completion.chunk", "created": int(time.time()),
                              "model": self.model, "choices": [], "usage": self.usage})
        yield "[DONE]"


def _tool_message_problem(messages: list[dict[str, Any]]) -> str | None:
    """A strict server's check: every ``tool`` message answers a call of an assistant message
    before it, by ``tool_call_id``."""
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        if message.get("role") == "assistant":
            open_calls = {c.get("id") for c in message.get("tool_calls") or []}
        elif message.get("role") == "tool":
            if message.get("tool_call_id") not in open_calls:
                return f"messages[{index}]: a tool message must answer a tool call of an earlier assistant message"
            open_calls.discard(message["tool_call_id"])
    return None
