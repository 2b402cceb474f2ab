"""Cutting a long text to a budget: its head and its tail, and a note saying what was left out.

Used where a text must fit somewhere smaller than itself: a tool's output for the model (30 000
characters, the rest kept as an artifact) and older tool outputs in the prompt window. Keeping
both ends matters: a command's first lines say what it did, its last lines how it ended (the
traceback, the test summary). Pure.
"""

from __future__ import annotations

from collections.abc import Callable

HEAD_SHARE = 2 / 3


def excerpt(text: str, limit: int, note: Callable[[int], str]) -> str:
    """``text`` if it fits in ``limit`` characters, else its head and tail around ``note(omitted)``.

    The result never exceeds ``limit`` (the note is cut too when the limit is tiny).
    """
    if len(text) <= limit:
        return text
    omitted = len(text) - limit
    for _ in range(4):  # the note's length depends on the count it states: settle both
        marker = note(omitted)
        room = limit - len(marker)
        if room <= 0:
            return marker[:limit]
        if len(text) - room == omitted:
            break
        omitted = len(text) - room
    head = int(room * HEAD_SHARE)
    tail = room - head
    return text[:head] + marker + (text[len(text) - tail :] if tail else "")
