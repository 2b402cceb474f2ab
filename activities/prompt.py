"""The system prompt: the template's prompt, the date the workflow gave, and recalled memories."""

from __future__ import annotations

from datetime import datetime

from models.agent import AgentTemplate

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
