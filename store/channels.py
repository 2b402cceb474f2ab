"""Channels and their messages in the records store.

A channel message's body is a row of ``messages`` under the conversation id ``channel:<id>``
(``models.channel.transcript_id``), so everything that reads messages by ``(conversation_id, seq)``
— the relevance activity's ``TextRef``, the memory activities — reads channel messages as they are.
Who wrote it, whom it answers and which members it mentions are a row of ``channel_messages`` with
the same ``(channel_id, seq)``. Both rows are written in one transaction, once: writing the same
seq again (a retried activity) returns the rows already there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Engine, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from models.channel import AuthorKind, transcript_id
from store.tables import Message, UTCDateTime, utcnow

ROLE_OF = {AuthorKind.PERSON: "user", AuthorKind.AGENT: "assistant", AuthorKind.NOTE: "system",
           AuthorKind.NOTICE: "system"}  # fmt: skip


class ChannelRow(SQLModel, table=True):
    __tablename__ = "channels"

    id: str = Field(primary_key=True)
    title: str = ""
    topic: str = Field(default="", sa_type=Text)
    user_id: str | None = None
    agents: list[str] = Field(default_factory=list, sa_type=JSON)
    people: list[str] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: str | None = None


class ChannelMessageRow(SQLModel, table=True):
    __tablename__ = "channel_messages"
    __table_args__ = (UniqueConstraint("channel_id", "seq", name="uq_channel_messages_channel_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str
    seq: int
    author: str
    kind: str
    reply_to: str | None = None
    answers: int | None = None
    """The seq of the message this one answers (an agent's reply)."""
    mentions: list[str] = Field(default_factory=list, sa_type=JSON)
    source_conversation: str | None = None
    """An agent's reply: the member conversation it was written in, and its seq there."""
    source_seq: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StoredChannelMessage(SQLModel):
    """A channel message whole: the metadata row and the body."""

    channel_id: str
    seq: int
    author: str
    kind: AuthorKind
    content: str
    reply_to: str | None = None
    answers: int | None = None
    mentions: list[str] = Field(default_factory=list)
    source_conversation: str | None = None
    source_seq: int | None = None
    created_at: datetime


def _whole(row: ChannelMessageRow, body: Message | None) -> StoredChannelMessage:
    return StoredChannelMessage(
        channel_id=row.channel_id, seq=row.seq, author=row.author, kind=AuthorKind(row.kind),
        content=body.content if body else "", reply_to=row.reply_to, answers=row.answers, mentions=row.mentions,
        source_conversation=row.source_conversation, source_seq=row.source_seq, created_at=row.created_at,
    )  # fmt: skip


class ChannelStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- channels

    def open_channel(self, channel_id: str, title: str, topic: str, user_id: str | None, agents: list[str],
                     people: list[str]) -> int:  # fmt: skip
        """Create the channel's row (or refresh it at a later run's start); the next free seq."""
        with Session(self._engine) as session:
            row = session.get(ChannelRow, channel_id) or ChannelRow(id=channel_id)
            row.title, row.topic, row.user_id, row.agents, row.people = title, topic, user_id, agents, people
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # created at the same time by a retried attempt: same values
                session.rollback()
        return self.next_seq(channel_id)

    def close_channel(self, channel_id: str, reason: str) -> None:
        """The first end wins, so a retried call changes nothing."""
        with Session(self._engine) as session:
            row = session.get(ChannelRow, channel_id)
            if row is None or row.ended_at is not None:
                return
            row.ended_at, row.end_reason = utcnow(), reason
            session.add(row)
            session.commit()

    def get_channel(self, channel_id: str) -> ChannelRow | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.get(ChannelRow, channel_id)

    def next_seq(self, channel_id: str) -> int:
        with Session(self._engine) as session:
            seqs = session.exec(select(ChannelMessageRow.seq).where(ChannelMessageRow.channel_id == channel_id)
                                .order_by(col(ChannelMessageRow.seq).desc()).limit(1)).first()  # fmt: skip
        return (seqs or 0) + 1

    # -- messages

    def append(self, message: StoredChannelMessage) -> StoredChannelMessage:
        """Write ``message`` at its seq unless that seq is taken; the stored message either way."""
        existing = self.get(message.channel_id, message.seq)
        if existing is not None:
            return existing
        meta = ChannelMessageRow(**message.model_dump(exclude={"content", "kind"}), kind=message.kind.value)
        body = Message(conversation_id=transcript_id(message.channel_id), seq=message.seq,
                       role=ROLE_OF[message.kind], content=message.content, created_at=message.created_at)  # fmt: skip
        try:
            with Session(self._engine) as session:
                session.add(meta)
                session.add(body)
                session.commit()
        except IntegrityError:  # a concurrent attempt wrote it first
            winner = self.get(message.channel_id, message.seq)
            if winner is None:
                raise
            return winner
        return message

    def get(self, channel_id: str, seq: int) -> StoredChannelMessage | None:
        found = self.between(channel_id, seq - 1, seq, limit=1)
        return found[0] if found else None

    def between(self, channel_id: str, after: int, upto: int | None = None, limit: int = 50) -> list[StoredChannelMessage]:
        """Messages with ``after < seq <= upto``, oldest first, at most ``limit`` (the first ones)."""
        return self._page(channel_id, after, upto, limit, newest=False)

    def latest(self, channel_id: str, after: int, upto: int, limit: int) -> list[StoredChannelMessage]:
        """The last ``limit`` messages with ``after < seq <= upto``, oldest first."""
        return list(reversed(self._page(channel_id, after, upto, limit, newest=True)))

    def _page(self, channel_id: str, after: int, upto: int | None, limit: int, newest: bool) -> list[StoredChannelMessage]:
        order: Any = col(ChannelMessageRow.seq).desc() if newest else col(ChannelMessageRow.seq)
        with Session(self._engine) as session:
            query = select(ChannelMessageRow).where(ChannelMessageRow.channel_id == channel_id,
                                                    col(ChannelMessageRow.seq) > after)  # fmt: skip
            if upto is not None:
                query = query.where(col(ChannelMessageRow.seq) <= upto)
            rows = list(session.exec(query.order_by(order).limit(limit)))
            if not rows:
                return []
            bodies = {m.seq: m for m in session.exec(select(Message).where(
                Message.conversation_id == transcript_id(channel_id), col(Message.seq).in_([r.seq for r in rows])))}
            return [_whole(row, bodies.get(row.seq)) for row in rows]


__all__ = ["ChannelMessageRow", "ChannelRow", "ChannelStore", "StoredChannelMessage"]
