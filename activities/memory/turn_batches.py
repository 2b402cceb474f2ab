"""Several turns read for memories at once: which turns go to one model call.

Extraction waits until the conversation is idle, a few turns have passed, or it ends
(``UnextractedTurns``), so one ``memory.store`` may cover several turns. They are read together
while their transcript fits what one extraction is shown (``extraction.TURN_CHARS``); a turn that
does not fit with the ones before it starts a call of its own, so no turn is cut because others
came before it. Each memory is credited to the last turn of its call. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator

from activities.memory.extraction import TOOL_OUTPUT_CHARS, TURN_CHARS
from models.memory import StoreTurnMemories
from store.tables import Message


def turn_groups(messages: list[Message], request: StoreTurnMemories) -> Iterator[tuple[list[Message], int]]:
    """``(messages, turn)`` per extraction call, in order; one group for a single turn."""
    if len(request.turn_starts) < 2:
        yield messages, request.turn
        return
    first_turn = request.turn - len(request.turn_starts) + 1
    turns = [
        [m for m in messages if start <= m.seq < end]
        for start, end in zip(request.turn_starts, [*request.turn_starts[1:], request.upto_seq + 1], strict=True)
    ]
    group: list[Message] = []
    for index, turn in enumerate(turns):
        if group and _length(group + turn) > TURN_CHARS:
            yield group, first_turn + index - 1
            group = []
        group += turn
    if group:
        yield group, request.turn


def _length(messages: list[Message]) -> int:
    """What ``extraction.transcript_of`` makes of these messages, before it keeps the last
    ``TURN_CHARS``: ``role: content`` blocks (tool outputs cut to ``TOOL_OUTPUT_CHARS``) two newlines apart."""
    sizes = [len(m.role) + 2 + (min(len(m.content), TOOL_OUTPUT_CHARS) if m.role == "tool" else len(m.content))
             for m in messages if m.content.strip()]
    return sum(sizes) + 2 * max(len(sizes) - 1, 0)
