"""The system prompt (the template's prompt, the date the workflow gave, recalled memories) and
the budget the rest of the prompt must fit in."""

from __future__ import annotations

import json
from datetime import datetime

from models.agent import AgentTemplate

CHARS_PER_TOKEN = 3
"""Conservative: most tokenizers average 3.5–4 characters per token in English prose."""
REPLY_SHARE_OF_CONTEXT = 0.25
MIN_WINDOW_CHARS = 1_000
"""A template whose system prompt and tools eat the whole context still gets this much transcript."""

MEMORY_TOOLS_HINT = (
    "You have a long-term memory. When the user tells you something worth keeping across "
    "conversations (a preference, their setup, a decision), save it with `memory_store` as one "
    "self-contained sentence. When you need something you may have been told before and it is not "
    "listed here, look it up with `memory_recall`. Never store passwords, keys or tokens."
)


def build_system_prompt(
    template: AgentTemplate, now: datetime, memories: list[str] | None = None, memory_tools: bool = False
) -> str:
    parts = [template.system_prompt.strip()]
    if template.personality:
        parts.append(f"Personality: {template.personality}")
    parts.append(f"## Current date and time\n{now.strftime('%Y-%m-%d %H:%M:%S %Z').strip()} ({now.strftime('%A')})")
    memory: list[str] = []
    if memories:
        listed = "\n".join(f"- {m}" for m in memories)
        memory.append(
            "Things you remember from earlier conversations (use them when relevant; "
            f"they may be outdated):\n{listed}"
        )
    if memory_tools:
        memory.append(MEMORY_TOOLS_HINT)
    if memory:
        parts.append("## Memory\n" + "\n\n".join(memory))
    return "\n\n".join(parts)


def prompt_budget_chars(template: AgentTemplate) -> int:
    """Characters the whole prompt may take: the context less a quarter kept for the reply."""
    return int(template.context_size * CHARS_PER_TOKEN * (1 - REPLY_SHARE_OF_CONTEXT))


def window_budget_chars(template: AgentTemplate, system: str, tools: list[dict]) -> int:
    """What the transcript window may take once the system prompt and the tool definitions (sent
    with every call, ~5 000 characters for the developer's tools) are counted."""
    fixed = len(system) + (len(json.dumps(tools)) if tools else 0)
    return max(prompt_budget_chars(template) - fixed, MIN_WINDOW_CHARS)
