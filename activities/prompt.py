"""The system prompt: the template's prompt, the date the workflow gave, and recalled memories."""

from __future__ import annotations

from datetime import datetime

from models.agent import AgentTemplate


def build_system_prompt(template: AgentTemplate, now: datetime, memories: list[str] | None = None) -> str:
    parts = [template.system_prompt.strip()]
    if template.personality:
        parts.append(f"Personality: {template.personality}")
    parts.append(f"## Current date and time\n{now.strftime('%Y-%m-%d %H:%M:%S %Z').strip()} ({now.strftime('%A')})")
    if memories:
        listed = "\n".join(f"- {m}" for m in memories)
        parts.append(
            "## Memory\nThings you remember from earlier conversations (use them when relevant; "
            f"they may be outdated):\n{listed}"
        )
    return "\n\n".join(parts)
