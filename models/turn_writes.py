"""Store writes a turn decides in the workflow and the next activity performs, in one transaction.

A turn used to write each message and each audit row with an activity of its own: one Temporal
round trip (a workflow task, an activity task, another workflow task) per row, ~15 ms each on a
2-CPU machine, plus a SQLite commit each. The workflow now collects them here and hands them to
the activity it runs next anyway — ``llm.chat`` writes them before it reads the transcript window —
or, when no model call follows (the turn ends, waits for a person or a resume), to
``transcript.write``. Every row is keyed (messages on ``(conversation, seq)``, audit rows on
``(conversation, tool call)``), so a retried activity writes nothing twice.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from models.tools import ActionRecord
from models.transcript import AppendMessage


class TurnWrites(BaseModel):
    conversation_id: str
    messages: list[AppendMessage] = Field(default_factory=list)
    """In ``seq`` order; a message with ``content_ref`` is the stored text followed by ``content``."""
    actions: list[ActionRecord] = Field(default_factory=list)
    """Audit rows of the tool calls concluded since the last write."""

    @property
    def empty(self) -> bool:
        return not self.messages and not self.actions

    def message(self, seq: int) -> AppendMessage | None:
        return next((m for m in self.messages if m.seq == seq), None)
