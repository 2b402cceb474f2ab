"""The action registry and the tool-result cache (see ``Action`` and ``ToolRun``).

The cache is also the at-most-once guard of tools that must not run twice: a ``started`` row is
written just before such a tool's side effect begins, and the result replaces it when it ends.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from store.tables import Action, ToolRun

STARTED = "started"
DONE = "done"


class ActionStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

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
        with Session(self._engine, expire_on_commit=False) as session:
            row = self._find(session, ToolRun, conversation_id, tool_call_id)
            return row.result if row is not None and row.state != STARTED else None

    def started(self, conversation_id: str, tool_call_id: str) -> bool:
        """Whether a run of this call began its side effect and never wrote its result."""
        with Session(self._engine, expire_on_commit=False) as session:
            row = self._find(session, ToolRun, conversation_id, tool_call_id)
            return row is not None and row.state == STARTED

    def mark_started(self, conversation_id: str, tool_call_id: str, tool: str) -> bool:
        """Record that the call's side effect begins now; False if a row already exists (another
        attempt got there first, or finished), in which case the caller must not run it."""
        with Session(self._engine, expire_on_commit=False) as session:
            if self._find(session, ToolRun, conversation_id, tool_call_id) is not None:
                return False
            session.add(ToolRun(conversation_id=conversation_id, tool_call_id=tool_call_id, tool=tool, result={},
                                state=STARTED))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
                return False
            return True

    def cache_result(self, conversation_id: str, tool_call_id: str, tool: str, result: dict[str, Any]) -> None:
        """Keep the finished call's result (the first one wins); completes a ``started`` row."""
        with Session(self._engine, expire_on_commit=False) as session:
            row = self._find(session, ToolRun, conversation_id, tool_call_id)
            if row is not None and row.state != STARTED:
                return
            if row is not None:
                row.result, row.state = result, DONE
            else:
                session.add(ToolRun(conversation_id=conversation_id, tool_call_id=tool_call_id, tool=tool,
                                    result=result, state=DONE))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()

    @staticmethod
    def _find(session: Session, table, conversation_id: str, tool_call_id: str):
        return session.exec(
            select(table).where(table.conversation_id == conversation_id, table.tool_call_id == tool_call_id)
        ).first()
