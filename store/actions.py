"""The action registry and the tool-result cache (see ``Action`` and ``ToolRun``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from store.tables import Action, ToolRun


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
        with Session(self._engine, expire_on_commit=False) as session:
            row = self._find(session, ToolRun, conversation_id, tool_call_id)
            return row.result if row else None

    def cache_result(self, conversation_id: str, tool_call_id: str, tool: str, result: dict[str, Any]) -> None:
        with Session(self._engine, expire_on_commit=False) as session:
            if self._find(session, ToolRun, conversation_id, tool_call_id) is not None:
                return
            session.add(ToolRun(conversation_id=conversation_id, tool_call_id=tool_call_id, tool=tool, result=result))
            try:
                session.commit()
            except IntegrityError:
                session.rollback()

    @staticmethod
    def _find(session: Session, table, conversation_id: str, tool_call_id: str):
        return session.exec(
            select(table).where(table.conversation_id == conversation_id, table.tool_call_id == tool_call_id)
        ).first()
