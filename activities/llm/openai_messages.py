"""Messages and tool calls in the OpenAI chat-completions wire format.

Two things differ from Ollama's: a tool call's ``arguments`` travel as a JSON *string*, and a
``tool`` message must name the call it answers (``tool_call_id``) and follow the assistant message
that asked for it. The transcript window can start between the two, and a "no such tool" answer is
stored without a call id; strict servers (vLLM, OpenAI) refuse such a history, so a tool message
that answers no call shown is sent as a user message quoting the result instead of being dropped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from activities.llm.provider import PromptMessage, ProposedCall

UNPARSED_ARGUMENTS = "arguments_not_json"
"""Where a call's arguments go when the model wrote something that is not a JSON object: the
workflow's schema check then tells the model what is wrong, instead of running with ``{}``."""


def to_openai_messages(messages: Sequence[PromptMessage]) -> list[dict]:
    out: list[dict] = []
    unanswered: list[str] = []
    """Ids of the last assistant message's calls that no tool message has answered yet."""
    for message in messages:
        if message.role == "tool":
            call_id = _answered_call(message.tool_call_id, unanswered)
            if call_id is None:
                out.append({"role": "user", "content": f"(result of an earlier tool call)\n{message.content}"})
            else:
                out.append({"role": "tool", "tool_call_id": call_id, "content": message.content})
            continue
        entry: dict = {"role": message.role, "content": message.content}
        if message.tool_calls:
            entry["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
                }
                for call in message.tool_calls
            ]
        unanswered = [c.id for c in message.tool_calls] if message.role == "assistant" else []
        out.append(entry)
    return out


def _answered_call(call_id: str | None, unanswered: list[str]) -> str | None:
    """The call a tool message answers: its own id when shown, else the oldest call still open."""
    if call_id in unanswered:
        unanswered.remove(call_id)
        return call_id
    if call_id is None and unanswered:
        return unanswered.pop(0)
    return None


def parse_call(name: str, arguments: str) -> ProposedCall:
    """A streamed call, once its argument pieces are joined."""
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        parsed = {UNPARSED_ARGUMENTS: arguments[:2000]}
    return ProposedCall(name=name, arguments=parsed)
