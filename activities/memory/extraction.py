"""Extraction: after a turn, the chat model picks out what is worth remembering.

The model answers with structured output (the JSON schema of
:class:`~models.memory.MemoryExtraction`: Ollama's ``format``, an OpenAI-compatible server's
``response_format``, or — where a server refuses that — the schema in the instructions; see
``activities/llm/openai_provider.py``), so its answer is parsed, not scraped. Whatever it proposes
still passes two filters here: texts that look like credentials are dropped (memories end
up in prompts and in the memory store, where secrets have no business), and the list is capped.

Small local models need some slack, measured with SmolLM2-135M on llama.cpp: greedy decoding
repeats itself — the same memory over and over, or one sentence inside a text — until the token
cap cuts the JSON, and grammar-constrained decoding enforces lengths but not number bounds (it
wrote ``"importance": 1000``). So the schema the model is given allows at most
:data:`REQUESTED_MAX` memories of at most :data:`TEXT_CHARS` characters (a server that turns the
schema into a grammar, llama.cpp or vLLM, then closes the JSON in time), repeated texts are
dropped and an importance outside 0–1 is clamped before the answer is validated.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from typing import Any

from pydantic import ValidationError

from activities.llm.chat_models import ChatModel
from activities.llm.provider import PromptMessage
from models.memory import ExtractedMemory, MemoryExtraction
from store.tables import Message

TURN_CHARS = 12_000
"""The most of a turn's transcript shown to the extractor (the newest part is kept)."""
TOOL_OUTPUT_CHARS = 1_000
REQUESTED_MAX = 5
"""Most memories the model may list for one turn (the schema it is given says so)."""
TEXT_CHARS = 200
"""Longest memory text the model may write: one sentence."""
MAX_TOKENS = 1024
"""The extraction answer's own generation cap, whatever cap the agent's replies have: its schema
bounds it (5 memories of at most 200 characters and their fields, ~70 tokens apiece)."""

INSTRUCTIONS = """You maintain the long-term memory of an AI assistant.
Read the conversation turn below and list the facts worth remembering in later conversations:
the user's preferences, their environment and setup (machines, languages, versions, targets),
their goals, decisions taken and lessons learned. Each memory is one self-contained sentence that
is understandable without the conversation (write "The user's deployment target is a Raspberry
Pi 5", not "it is a Pi"). Skip greetings, small talk, questions, anything only true for this
moment, and anything the assistant merely guessed. Never include passwords, API keys, tokens or
other secrets. Answer with JSON only. When nothing is worth keeping, answer {"memories": []}."""

_SECRET = re.compile(
    r"(?i)\b(password|passwd|passphrase|secret|api[_ -]?key|access[_ -]?key|token|bearer)\b\s*[:=]"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\b(sk|ghp|gho|xox[abp]|AKIA)[-_A-Za-z0-9]{16,}"
)


class ExtractionError(ValueError):
    """The model's answer is not the JSON the schema asks for."""


def transcript_of(messages: list[Message]) -> str:
    lines = []
    for message in messages:
        content = message.content
        if message.role == "tool":
            content = content[:TOOL_OUTPUT_CHARS]
        if content.strip():
            lines.append(f"{message.role}: {content}")
    return "\n\n".join(lines)[-TURN_CHARS:]


def looks_secret(text: str) -> bool:
    return bool(_SECRET.search(text))


async def extract(model: ChatModel, messages: list[Message]) -> list[ExtractedMemory]:
    """Ask ``model`` for the memories in ``messages``; raises :mod:`activities.llm.errors` as they
    come and :class:`ExtractionError` for an answer that does not fit the schema."""
    transcript = transcript_of(messages)
    if not transcript:
        return []
    answer = await model.with_max_tokens(MAX_TOKENS).structured(
        [PromptMessage("system", INSTRUCTIONS), PromptMessage("user", transcript)], extraction_schema()
    )
    try:
        extraction = MemoryExtraction.model_validate(_tidied(json.loads(answer)))
    except ValueError as err:  # ValidationError is one
        raise ExtractionError(f"the model's answer does not fit the memory schema: {_short(err)}") from None
    return [m for m in extraction.memories if not looks_secret(m.text)]


def extraction_schema() -> dict[str, Any]:
    """:class:`MemoryExtraction`'s JSON schema, asking for at most :data:`REQUESTED_MAX` memories of
    at most :data:`TEXT_CHARS` characters. A copy of one built once: pydantic's schema generation
    was 2.6 % of a busy worker's CPU when built per extraction (py-spy, bench.conversation)."""
    return copy.deepcopy(_extraction_schema())


@functools.cache
def _extraction_schema() -> dict[str, Any]:
    schema = MemoryExtraction.model_json_schema()
    schema["properties"]["memories"]["maxItems"] = REQUESTED_MAX
    schema["$defs"]["ExtractedMemory"]["properties"]["text"]["maxLength"] = TEXT_CHARS
    return schema


def _tidied(answer: Any) -> Any:
    """Repeated texts dropped and importances clamped to 0–1; anything else is left for the
    validation to judge."""
    if not isinstance(answer, dict) or not isinstance(answer.get("memories"), list):
        return answer
    seen: set[str] = set()
    kept = []
    for item in answer["memories"]:
        if isinstance(item, dict):
            text = item.get("text")
            key = " ".join(text.lower().split()) if isinstance(text, str) else None
            if key is not None and key in seen:
                continue
            seen.add(key or "")
            importance = item.get("importance")
            if isinstance(importance, (int, float)) and not isinstance(importance, bool):
                item = {**item, "importance": min(max(float(importance), 0.0), 1.0)}
        kept.append(item)
    return {**answer, "memories": kept}


def _short(err: ValueError) -> str:
    if not isinstance(err, ValidationError):
        return f"not JSON ({err})"
    first = err.errors()[0]
    where = ".".join(map(str, first["loc"])) or "top level"
    return f"{first['msg']} at {where} ({err.error_count()} errors)"
