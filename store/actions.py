"""The action registry and the tool-result cache (see ``Action`` and ``ToolRun``).

The cache is also the at-most-once guard of tools that must not run twice: a ``started`` row is
written just before such a tool's side effect begins, and the result replaces it when it ends.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from store.tables import Action, ToolRun, utcnow

STARTED = "started"
DONE = "done"


class ActionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[engine.dialect.name]

    def record(self, action: Action) -> Action:
        """Idempotent on (conversation, tool call): a retried activity keeps the first row."""
        with Session(self._engine, expire_on_commit=False) as session:
            existing = self._find(session, Action, action.conversation_id, action.tool_call_id)
            if existing is not None:
                return existing
            session.add(action)
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return self._find(session, Action, action.conversation_id, action.tool_call_id)
            return action

    def actions(self, conversation_id: str | None = None, agent: str | None = None, limit: int = 1000) -> list[Action]:
        with Session(self._engine, expire_on_commit=False) as session:
            query = select(Action).order_by(col(Action.id))
            if conversation_id:
                query = query.where(Action.conversation_id == conversation_id)
            if agent:
                query = query.where(Action.agent == agent)
            return list(session.exec(query.limit(limit)))

    def cached_result(self, conversation_id: str, tool_call_id: str) -> dict[str, Any] | None:
        """The finished call's result; None while it never ran or is only ``started``."""
        state, result = self.run_state(conversation_id, tool_call_id)
        return result if state is not None and state != STARTED else None

    def started(self, conversation_id: str, tool_call_id: str) -> bool:
        """Whether a run of this call began its side effect and never wrote its result."""
        return self.run_state(conversation_id, tool_call_id)[0] == STARTED

    def run_state(self, conversation_id: str, tool_call_id: str) -> tuple[str | None, dict[str, Any] | None]:
        """``(state, result)`` of the call's row — ``started``, ``done`` (rows older than the column
        read as done) — or ``(None, None)`` when it never began: what ``tools.run`` asks first, once."""
        table = ToolRun.__table__
        with self._engine.connect() as connection:
            row = connection.execute(select(table.c.state, table.c.result).where(
                table.c.conversation_id == conversation_id, table.c.tool_call_id == tool_call_id)).first()
        return (None, None) if row is None else (row.state or DONE, row.result)

    def mark_started(self, conversation_id: str, tool_call_id: str, tool: str) -> bool:
        """Record that the call's side effect begins now; False if a row already exists (another
        attempt got there first, or finished), in which case the caller must not run it."""
        row = dict(conversation_id=conversation_id, tool_call_id=tool_call_id, tool=tool, result={}, state=STARTED,
                   created_at=utcnow())
        with self._engine.begin() as connection:
            inserted = connection.execute(self._insert(ToolRun.__table__).on_conflict_do_nothing(), row)
        return inserted.rowcount == 1

    def cache_result(self, conversation_id: str, tool_call_id: str, tool: str, result: dict[str, Any]) -> None:
        """Keep the finished call's result (the first one wins); completes a ``started`` row."""
        table = ToolRun.__table__
        with self._engine.begin() as connection:
            completed = connection.execute(update(table).where(
                table.c.conversation_id == conversation_id, table.c.tool_call_id == tool_call_id,
                table.c.state == STARTED).values(result=result, state=DONE))
            if completed.rowcount == 0:
                connection.execute(self._insert(table).on_conflict_do_nothing(), dict(
                    conversation_id=conversation_id, tool_call_id=tool_call_id, tool=tool, result=result, state=DONE,
                    created_at=utcnow()))

    @staticmethod
    def _find(session: Session, table, conversation_id: str, tool_call_id: str):
        return session.exec(
            select(table).where(table.conversation_id == conversation_id, table.tool_call_id == tool_call_id)
        ).first()
