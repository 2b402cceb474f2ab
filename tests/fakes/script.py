"""What the fake models answer: the script both fakes (``ollama.py``, ``openai_compatible.py``) play.

A test queues :class:`Reply` objects (or strings, or responders that build a reply from the
request body); a fake turns each into its own API's wire shapes. Embeddings are
:func:`hashed_embedding`: deterministic, and texts sharing words point the same way.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_EMBED_DIM = 384
_WORD = re.compile(r"\w+")
_CHUNK = re.compile(r"\s*\S{1,8}|\s+")


# --------------------------------------------------------------------------- script


@dataclass(frozen=True)
class ToolCall:
    """One function call the fake model asks for (``message.tool_calls[i].function``)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass
class Reply:
    """What the fake model answers to one chat call.

    ``error`` makes the whole call fail before any byte of output, with HTTP
    ``status`` (default 500) and the API's error body.  ``stream_error``
    instead fails *after* the content has streamed, as a server does when its
    runner dies mid-generation (an error line or event; a 500 when not
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
"""Builds a reply from the parsed chat request body."""


def echo_responder(request: dict[str, Any]) -> Reply:
    """Default responder: ``"echo: "`` + the last user message, so unscripted calls are traceable."""
    last_user = next(
        (m.get("content") or "" for m in reversed(request.get("messages") or []) if m.get("role") == "user"),
        "",
    )
    return Reply(content=f"echo: {last_user}")


def system_prompt_of(request: dict[str, Any]) -> str:
    """The system message of a chat request body ("" when there is none)."""
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
    return normalise(vec)


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
    return normalise(vec)


def _add_feature(vec: list[float], feature: str, weight: float) -> None:
    h = int.from_bytes(hashlib.blake2b(feature.encode(), digest_size=8).digest(), "big")
    vec[h % len(vec)] += weight if h >> 63 else -weight


def normalise(vec: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in vec))
    return [round(v / norm, 7) for v in vec] if norm else vec


def words(text: str | None) -> int:
    """The fakes' token count: whitespace-separated words."""
    return len((text or "").split())


def chunks(text: str) -> list[str]:
    """Split text into word-sized pieces (at most 8 non-space chars) that join back exactly."""
    return _CHUNK.findall(text)
