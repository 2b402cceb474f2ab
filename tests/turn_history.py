"""Seeding an agent's turn history into a store: conversations, one model call per step, and the
assistant messages those calls wrote — what ``llm.chat`` records for real — so that analytics see
turns that answered and turns that ran out of steps."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from store.tables import Conversation, Message, ModelUsage


def seed_turns(engine: Engine, agent: str, conversation: str, turns: list[tuple[int, bool]], at: datetime,
               tokens_per_step: int = 100) -> None:  # fmt: skip
    """``turns``: (model steps, answered) per turn, one minute apart from ``at``. A step that is not
    the answer asked for a tool; an answered turn's last step asked for none."""
    with Session(engine) as session:
        session.add(Conversation(id=conversation, agent=agent, model="llama3.2", created_at=at))
        seq = 0
        for turn, (steps, answered) in enumerate(turns, start=1):
            seq += 1
            session.add(Message(conversation_id=conversation, seq=seq, role="user", content=f"task {turn}"))
            for step in range(steps):
                seq += 1
                last = step == steps - 1
                calls = None if last and answered else [{"id": f"{seq}-0", "name": "read_file", "arguments": {"path": "x"}}]
                when = at + timedelta(minutes=turn, seconds=step)
                session.add(Message(conversation_id=conversation, seq=seq, role="assistant", content="", tool_calls=calls,
                                    created_at=when))  # fmt: skip
                session.add(ModelUsage(conversation_id=conversation, seq=seq, turn=turn, model="llama3.2",
                                       prompt_tokens=tokens_per_step, completion_tokens=0, created_at=when))  # fmt: skip
                if calls:
                    seq += 1
                    session.add(Message(conversation_id=conversation, seq=seq, role="tool", content="ok",
                                        tool_call_id=f"{seq - 1}-0"))  # fmt: skip
        session.commit()
