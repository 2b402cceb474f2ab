"""Reading and writing conversation transcripts and model usage.

Activities call these methods, and Temporal retries activities: every write is therefore
idempotent on ``(conversation_id, seq)``. A retry gets the row written the first time back, never a
second row and never an overwrite, even when two processes race to write the same ``seq`` (the
unique constraint decides, the loser re-reads the winner's row).

The methods are synchronous (SQLAlchemy sessions are); async callers run them in a thread. Each
call uses its own short session, and returned rows are detached, fully loaded copies that stay
usable after the session is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, Text, cast, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from models.excerpt import excerpt
from store.tables import ROLES, Conversation, Message, ModelUsage, utcnow
from store.window import Entry, WindowMessage, plan_window

logger = logging.getLogger(__name__)

WINDOW_PAGE_SIZE = 200
"""Rows per page when ``window`` walks a conversation backwards."""


def _cut(message: WindowMessage, keep: int) -> WindowMessage:
    """``message`` with its content cut to ``keep`` characters, head and tail, with a note."""
    if len(message.content) <= keep:
        return message
    what = "this tool output" if message.role == "tool" else "this message"
    content = excerpt(message.content, keep, lambda omitted: (
        f"\n[... {omitted} characters of {what} are left out here to fit the model's context ...]\n"))
    return message._replace(content=content)


class TranscriptStore:
    """Every conversation's transcript: its messages in order, and what each model call cost."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """The engine this store uses; its owner (whoever created it) disposes of it."""
        return self._engine

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as session:
            yield session

    # --- conversations -------------------------------------------------------------------------

    def open_conversation(
        self, conversation_id: str, agent: str, model: str, user_id: str | None = None
    ) -> int:
        """Create the conversation, or refresh agent/model of an existing one; return the next seq.

        Called at the start of every workflow run (including after continue-as-new), so an existing
        row keeps its ``created_at`` and its end; ``user_id`` is only overwritten by a non-None one.
        """
        if not self._update_conversation(conversation_id, agent, model, user_id):
            try:
                with self._session() as session:
                    now = utcnow()
                    session.add(
                        Conversation(
                            id=conversation_id,
                            agent=agent,
                            model=model,
                            user_id=user_id,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    session.commit()
            except IntegrityError:
                # Another process created it between our update and insert.
                if not self._update_conversation(conversation_id, agent, model, user_id):
                    raise
        return self.next_seq(conversation_id)

    def _update_conversation(
        self, conversation_id: str, agent: str, model: str, user_id: str | None
    ) -> bool:
        values: dict[str, Any] = {"agent": agent, "model": model, "updated_at": utcnow()}
        if user_id is not None:
            values["user_id"] = user_id
        with self._session() as session:
            result = session.execute(
                update(Conversation)
                .where(col(Conversation.id) == conversation_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            session.commit()
            return result.rowcount > 0

    def next_seq(self, conversation_id: str) -> int:
        """The first free ``seq`` of a conversation: one past the highest, or 1 if it has none."""
        with self._session() as session:
            highest = session.exec(
                select(func.max(Message.seq)).where(Message.conversation_id == conversation_id)
            ).one()
        return (highest or 0) + 1

    def end_conversation(self, conversation_id: str, reason: str) -> None:
        """Mark the conversation ended. The first end wins, so a retried call changes nothing."""
        now = utcnow()
        with self._session() as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                logger.warning("end_conversation: no conversation %r", conversation_id)
                return
            if conversation.ended_at is not None:
                return
            conversation.ended_at = now
            conversation.end_reason = reason
            conversation.updated_at = now
            session.commit()

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        with self._session() as session:
            return session.get(Conversation, conversation_id)

    # --- messages ------------------------------------------------------------------------------

    def append(
        self,
        conversation_id: str,
        seq: int,
        role: str,
        content: str,
        tool_calls: list[dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> Message:
        """Write message ``seq`` unless it exists; return the stored row either way.

        The returned row is the one that counts: after a retry its content may differ from the
        arguments (the first write wins), so callers should use what comes back.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}, not {role!r}")
        if seq < 1:
            raise ValueError(f"seq starts at 1, got {seq}")

        existing = self.get(conversation_id, seq)
        if existing is not None:
            return existing
        message = Message(
            conversation_id=conversation_id,
            seq=seq,
            role=role,
            content=content,
            tool_calls=tool_calls,
            tool_call_id=tool_call_id,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )
        try:
            with self._session() as session:
                session.add(message)
                session.flush()
                session.execute(
                    update(Conversation)
                    .where(col(Conversation.id) == conversation_id)
                    .values(updated_at=message.created_at)
                    .execution_options(synchronize_session=False)
                )
                session.commit()
                return message
        except IntegrityError:
            winner = self.get(conversation_id, seq)
            if winner is None:  # a different constraint failed: not a race
                raise
            return winner

    def get(self, conversation_id: str, seq: int) -> Message | None:
        with self._session() as session:
            return session.exec(
                select(Message).where(
                    Message.conversation_id == conversation_id, Message.seq == seq
                )
            ).first()

    def list_messages(
        self, conversation_id: str, after_seq: int = 0, limit: int = 50
    ) -> list[Message]:
        """Up to ``limit`` messages with ``seq > after_seq``, oldest first; page by last seq."""
        with self._session() as session:
            return list(
                session.exec(
                    select(Message)
                    .where(Message.conversation_id == conversation_id, Message.seq > after_seq)
                    .order_by(col(Message.seq))
                    .limit(limit)
                )
            )

    def window(
        self, conversation_id: str, budget_chars: int, upto_seq: int | None = None
    ) -> list[WindowMessage]:
        """The messages the model sees, oldest first, their contents within ``budget_chars`` together.

        ``store/window.py`` plans it from lengths alone (newest first, a page at a time): the newest
        user message always in (cut with a note only if it alone is over), this turn's latest
        steps, then earlier messages until one does not fit; long tool outputs are cut (head and
        tail, with a note). Then only the messages inside it are loaded. With ``upto_seq`` it ends
        at that seq instead of the latest, which lets a retried turn rebuild exactly the context it
        had. A cut message carries the cut content.
        """
        table = Message.__table__
        with self._engine.connect() as connection:  # one check-out for the plan and the rows, every model call
            plan = plan_window(self._window_entries(connection, conversation_id, upto_seq), budget_chars)
            if not plan:
                return []
            first, last = min(plan), max(plan)  # usually a range; a gap (this turn lost messages) is never loaded
            seqs = table.c.seq.between(first, last) if len(plan) == last - first + 1 else table.c.seq.in_(list(plan))
            rows = connection.execute(  # plain rows of the prompt's columns only
                select(table.c.seq, table.c.role, table.c.content, table.c.tool_calls, table.c.tool_call_id)
                .where(table.c.conversation_id == conversation_id, seqs).order_by(table.c.seq)
            ).all()
        return [_cut(WindowMessage._make(row), plan[row.seq]) for row in rows]

    @staticmethod
    def _window_entries(connection: Connection, conversation_id: str, upto_seq: int | None) -> Iterator[Entry]:
        """Every message's seq, role and lengths, newest first, read a page at a time."""
        below = upto_seq + 1 if upto_seq is not None else None
        calls_length = func.length(cast(Message.tool_calls, Text))
        while True:
            query = select(Message.seq, Message.role, func.length(Message.content), calls_length).where(
                Message.conversation_id == conversation_id
            )
            if below is not None:
                query = query.where(Message.seq < below)
            page = connection.execute(query.order_by(col(Message.seq).desc()).limit(WINDOW_PAGE_SIZE)).all()
            for seq, role, length, calls in page:
                yield Entry(seq=seq, role=role, content_chars=length or 0, calls_chars=calls or 0)
            if len(page) < WINDOW_PAGE_SIZE:
                return
            below = page[-1][0]

    # --- model usage ---------------------------------------------------------------------------

    def record_usage(
        self,
        conversation_id: str,
        seq: int,
        turn: int,
        model: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        total_duration_ms: float | None,
        load_duration_ms: float | None,
        prompt_eval_duration_ms: float | None,
        eval_duration_ms: float | None,
        cached_prompt_tokens: int | None = None,
    ) -> None:
        """Record the model call that produced assistant message ``seq``; a repeat is a no-op.

        ``cached_prompt_tokens``: how many prompt tokens the server took from its prompt cache,
        only when it says (monitoring's prompt-cache hit rate reads it; None is "not reported")."""
        if self._get_usage(conversation_id, seq) is not None:
            return
        try:
            with self._session() as session:
                session.add(
                    ModelUsage(
                        conversation_id=conversation_id,
                        seq=seq,
                        turn=turn,
                        model=model,
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                        total_duration_ms=total_duration_ms,
                        load_duration_ms=load_duration_ms,
                        prompt_eval_duration_ms=prompt_eval_duration_ms,
                        eval_duration_ms=eval_duration_ms,
                        cached_prompt_tokens=cached_prompt_tokens,
                    )
                )
                session.commit()
        except IntegrityError:
            if self._get_usage(conversation_id, seq) is None:
                raise

    def _get_usage(self, conversation_id: str, seq: int) -> ModelUsage | None:
        with self._session() as session:
            return session.exec(
                select(ModelUsage).where(
                    ModelUsage.conversation_id == conversation_id, ModelUsage.seq == seq
                )
            ).first()

    def usage(self, conversation_id: str | None = None) -> list[ModelUsage]:
        """Usage rows of one conversation (by seq), or of all (by conversation, then seq)."""
        query = select(ModelUsage)
        if conversation_id is not None:
            query = query.where(ModelUsage.conversation_id == conversation_id)
        with self._session() as session:
            return list(
                session.exec(query.order_by(col(ModelUsage.conversation_id), col(ModelUsage.seq)))
            )
