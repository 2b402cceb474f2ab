"""Writing a turn's rows together: one transaction for whatever the workflow decided since its last
activity (``models/turn_writes.py``), one for a model call's reply and its usage.

Idempotent like every write of the store, and cheaper: each row is an ``INSERT … ON CONFLICT DO
NOTHING`` on its unique key (messages on ``(conversation, seq)``, audit rows on ``(conversation,
tool call)``, usage on ``(conversation, seq)``), so a row an earlier or concurrent attempt wrote
stays as it is — first write wins, as ``TranscriptStore.append`` — without reading first and
without the ORM's unit of work. ``llm.chat`` used to take two transactions and five statements for
its reply; a turn's writes took one activity, one transaction and two to three statements each.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, select, update
from sqlalchemy.dialects import postgresql, sqlite

from models.transcript import AppendMessage
from models.turn_writes import TurnWrites
from store.payloads import PayloadStore
from store.tables import ROLES, Action, Conversation, Message, ModelUsage, utcnow


class TurnWriter:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._payloads = PayloadStore(engine)
        self._insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[engine.dialect.name]

    def write(self, writes: TurnWrites) -> None:
        if not writes.empty:
            self._run(self._writing(writes))

    def stored_reply_or_write(self, conversation_id: str, reply_seq: int, writes: TurnWrites | None) -> Message | None:
        """The reply an earlier attempt of this model call stored (a retry never asks the model
        twice), else ``None`` once ``writes`` are in: the look and the writes on one connection, in
        one transaction. ``llm.chat`` used to look through an ORM session and then open a
        transaction of its own — two pool check-outs and the ORM's unit of work on every turn."""
        write = self._writing(writes) if writes is not None and not writes.empty else None
        table = Message.__table__
        with self._engine.begin() as connection:
            row = connection.execute(
                select(table).where(table.c.conversation_id == conversation_id, table.c.seq == reply_seq)
            ).first()
            if row is not None:
                return Message.model_construct(**row._mapping)
            if write is not None:
                write(connection)
        return None

    def _writing(self, writes: TurnWrites) -> Callable[[Connection], None]:
        """What writing ``writes`` does on a connection (rows made here, before any transaction:
        a message by reference reads its body first)."""
        now = utcnow()
        messages = [self._message(writes.conversation_id, m, now) for m in writes.messages]
        actions = [{**a.model_dump(), "created_at": now} for a in writes.actions]

        def write(connection: Connection) -> None:
            self._insert_new(connection, Message.__table__, messages)
            self._insert_new(connection, Action.__table__, actions)
            if messages:
                self._touch(connection, writes.conversation_id, now)

        return write

    def write_reply(self, conversation_id: str, seq: int, turn: int, content: str, tool_calls: list[dict] | None,
                    usage: dict[str, Any]) -> None:
        """The assistant message a model call produced and what the call cost (``usage``: the
        ``ModelUsage`` columns), together."""
        now = utcnow()
        message = dict(conversation_id=conversation_id, seq=seq, role="assistant", content=content,
                       tool_calls=tool_calls, tool_call_id=None, prompt_tokens=usage.get("prompt_tokens"),
                       completion_tokens=usage.get("completion_tokens"), created_at=now)  # fmt: skip
        cost = {**usage, "conversation_id": conversation_id, "seq": seq, "turn": turn, "created_at": now}

        def write(connection: Connection) -> None:
            self._insert_new(connection, Message.__table__, [message])
            self._insert_new(connection, ModelUsage.__table__, [cost])
            self._touch(connection, conversation_id, now)

        self._run(write)

    def _run(self, write: Callable[[Connection], None]) -> None:
        with self._engine.begin() as connection:
            write(connection)

    def _message(self, conversation_id: str, request: AppendMessage, now: datetime) -> dict[str, Any]:
        if request.role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}, not {request.role!r}")
        if request.seq < 1:
            raise ValueError(f"seq starts at 1, got {request.seq}")
        content = request.content
        if request.content_ref:
            body = self._payloads.get(conversation_id, request.content_ref)
            # Stored by the tool's activity before its result reached the workflow; only a cleanup
            # of this conversation's records could have removed it since: say so, never block the turn.
            content = (body if body is not None else f"[output sha256={request.content_ref} is no longer stored]"
                       ) + content
        return dict(conversation_id=conversation_id, seq=request.seq, role=request.role, content=content,
                    tool_calls=None, tool_call_id=request.tool_call_id, prompt_tokens=None, completion_tokens=None,
                    created_at=now)  # fmt: skip

    def _insert_new(self, connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        if rows:
            connection.execute(self._insert(table).on_conflict_do_nothing(), rows)

    @staticmethod
    def _touch(connection: Connection, conversation_id: str, now: datetime) -> None:
        connection.execute(update(Conversation.__table__).where(Conversation.__table__.c.id == conversation_id)
                           .values(updated_at=now))
