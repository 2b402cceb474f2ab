"""Which messages the model sees, and how much of each: the prompt fits the template's budget.

The window used to be "the latest messages that fit, and always the latest whole", so one 30 000
character tool output (or a pasted document) made the prompt overflow the context, and a turn's
tool outputs could push the user's question out of it. The plan, over message lengths only
(newest first, no bodies loaded):

1. the newest user message is always in, whole if it fits — it is reserved half the budget, and
   gets whatever this turn's later messages leave;
2. this turn's messages after it (tool calls and their outputs), newest first: the newest tool
   output may take half the budget, every other tool output an eighth; whatever is longer is cut
   (head and tail, with a note). The newest message of all is always in, cut to the room left;
   an older one that no longer fits ends this part (the model keeps its question and latest steps);
3. earlier messages, newest first, tool outputs cut to an eighth, until one does not fit.

Tool calls (the JSON of an assistant message's calls) count in full: they are short, their long
arguments travel by reference. Pure: the store applies the plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

MIN_EXCERPT_CHARS = 200
"""A message cut shorter than this says nothing useful; it is dropped instead (unless it is the newest)."""


class Entry(NamedTuple):
    seq: int
    role: str
    content_chars: int
    calls_chars: int = 0


class WindowMessage(NamedTuple):
    """A message as the window holds it: what the prompt shows, nothing else of its row. Building
    a full ``Message`` per row took 45 % of ``window`` over a 420-message conversation (2.3 of
    5.2 ms); with these, and only their five columns read, the whole call takes 1.6 ms."""

    seq: int
    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


def plan_window(newest_first: Iterable[Entry], budget: int) -> dict[int, int]:
    """``{seq: characters of content kept}`` for the messages in the window."""
    entries = iter(newest_first)
    turn: list[Entry] = []
    user = None
    for entry in entries:
        if entry.role == "user":
            user = entry
            break
        turn.append(entry)
    reserved = 0 if user is None else min(user.content_chars, budget if not turn else budget // 2)
    plan = _plan_turn(turn, budget - reserved, budget)
    used = sum(plan.values()) + sum(e.calls_chars for e in turn if e.seq in plan)
    if user is None:
        return plan
    plan[user.seq] = max(min(user.content_chars, budget - used - user.calls_chars), 0)
    used += plan[user.seq] + user.calls_chars
    if len(plan) - 1 < len(turn):
        return plan  # this turn already lost messages: earlier turns would leave a gap before them
    for entry in entries:
        keep = _allowance(entry, budget, newest_tool=False)
        if used + keep + entry.calls_chars > budget:
            break
        plan[entry.seq] = keep
        used += keep + entry.calls_chars
    return plan


def _plan_turn(turn: list[Entry], room: int, budget: int) -> dict[int, int]:
    plan: dict[int, int] = {}
    newest_tool = True
    for index, entry in enumerate(turn):
        keep = _allowance(entry, budget, newest_tool)
        newest_tool = newest_tool and entry.role != "tool"
        if keep + entry.calls_chars <= room:
            plan[entry.seq] = keep
            room -= keep + entry.calls_chars
            continue
        cut = room - entry.calls_chars
        if index == 0 or cut >= MIN_EXCERPT_CHARS:
            plan[entry.seq] = max(cut, 0)
        break
    return plan


def _allowance(entry: Entry, budget: int, newest_tool: bool) -> int:
    if entry.role != "tool":
        return entry.content_chars
    return min(entry.content_chars, budget // 2 if newest_tool else budget // 8)
