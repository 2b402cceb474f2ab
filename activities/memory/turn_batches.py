"""Several turns read for memories at once: which turns go to one model call.

Extraction waits until the conversation is idle, a few turns have passed, or it ends
(``UnextractedTurns``), so one ``memory.store`` may cover several turns. They are read together
while their transcript fits what one extraction is shown (``extraction.TURN_CHARS``); a turn that
does not fit with the ones before it starts a call of its own, so no turn is cut because others
came before it. Each memory is credited to the last turn of its call. Pure.
"""

from __future__ import annotations

from collections.abc import Iterator

from activities.memory.extraction import TURN_CHARS, transcript_of
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
        if group and len(transcript_of(group + turn)) > TURN_CHARS:
            yield group, first_turn + index - 1
            group = []
        group += turn
    if group:
        yield group, request.turn
