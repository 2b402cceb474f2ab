"""How many model steps an agent's turns took, and which ran out of steps (pure, over rows).

A turn's steps are its model calls (``model_usage`` rows, keyed by conversation and turn). Its last
model reply (the call with the highest ``seq``) tells how it ended: no tool call, or a
``final_answer`` call, means the turn answered; any other tool call means the model still wanted to
act when the turn stopped — it ran out of its step budget (or was ended mid-step).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from models.analytics import TurnStats

FINAL_ANSWER = "final_answer"
MAX_EXAMPLES = 5


def still_acting(tool_calls: list[dict[str, Any]] | None) -> bool:
    """True when a reply asked for tools and none of them ends the turn."""
    names = [call.get("name") for call in tool_calls or []]
    return bool(names) and FINAL_ANSWER not in names


def turn_stats(usage: Iterable[Any], last_replies: Mapping[tuple[str, int], list[dict[str, Any]] | None]) -> TurnStats:
    """``usage``: the agent's model calls (``ModelUsage``-like rows); ``last_replies``: the tool
    calls of the assistant message at each (conversation, seq)."""
    turns: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for row in usage:
        turns[(row.conversation_id, row.turn)].append(row)
    stats = TurnStats(turns=len(turns))
    answered_steps: list[int] = []
    for (conversation, turn), rows in sorted(turns.items()):
        tokens = sum((r.prompt_tokens or 0) + (r.completion_tokens or 0) for r in rows)
        stats.tokens += tokens
        last = max(rows, key=lambda r: r.seq)
        if still_acting(last_replies.get((conversation, last.seq))):
            stats.out_of_steps += 1
            stats.out_of_steps_tokens += tokens
            if len(stats.examples) < MAX_EXAMPLES:
                stats.examples.append(f"{conversation}/{turn}")
        else:
            answered_steps.append(len(rows))
    stats.answered = len(answered_steps)
    if answered_steps:
        stats.max_answered_steps = max(answered_steps)
        stats.p50_answered_steps = float(statistics.median(answered_steps))
    return stats
