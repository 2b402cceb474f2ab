"""Agents paused by an operator (``POST /agents/{agent}/pause``): one row per paused agent.

Pausing an agent signals every conversation of it that runs; the row makes the ones that start
(or are revived) later start paused too (``transcript.open`` and ``archive.reopen`` read it).
Resuming deletes the row.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, Session, SQLModel, select
from sqlalchemy import Engine

from store.tables import UTCDateTime, utcnow


class AgentPauseRow(SQLModel, table=True):
    __tablename__ = "agent_pauses"

    agent: str = Field(primary_key=True)
    reason: str = ""
    by: str | None = None
    paused_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AgentPauseStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def pause(self, agent: str, reason: str, by: str | None) -> None:
        with Session(self._engine) as session:
            row = session.get(AgentPauseRow, agent) or AgentPauseRow(agent=agent)
            row.reason, row.by, row.paused_at = reason, by, utcnow()
            session.add(row)
            session.commit()

    def resume(self, agent: str) -> bool:
        """Whether it was paused."""
        with Session(self._engine) as session:
            row = session.get(AgentPauseRow, agent)
            if row is None:
                return False
            session.delete(row)
            session.commit()
            return True

    def paused(self, agents: list[str] | None = None) -> dict[str, str]:
        """Paused agents (of ``agents``, or all) → the reason shown to their conversations."""
        with Session(self._engine) as session:
            rows = session.exec(select(AgentPauseRow)).all()
        return {row.agent: _reason(row) for row in rows if agents is None or row.agent in agents}


def _reason(row: AgentPauseRow) -> str:
    why = f": {row.reason}" if row.reason else ""
    return f"agent {row.agent} paused{why}"
