"""Private messages in the store: one row per message, the collaboration tracker's source.

The ``PrivateMessageWorkflow`` writes its ``MessageStatus`` at every step (``messages.record``);
writing is an upsert by ``message_id`` that never moves a finished message back (a retried activity
of an earlier step changes nothing), so the row always shows the latest step. ``accepted`` stays
true once the recipient accepted, whatever happened after. Times are the workflow's.

``admit`` is the accept rule's workload step made atomic: the count of the recipient's open
messages and the write of this one as accepted happen in one transaction that holds the
recipient's lock (SQLite: the database's write lock, taken by the transaction's first statement;
PostgreSQL: a transaction-scoped advisory lock on the recipient), so messages decided at the same
moment never take more than ``max_open`` between them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, Index, Text, and_, func, not_, or_, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from models.collaboration import AgentStats, CollaborationReport, Counts, MessagePage, PairStats, trust_of
from models.private_messages import MessageState, MessageStatus
from store.tables import UTCDateTime

OPEN_STATES = [state.value for state in MessageState if state.open]
NOT_THE_RECIPIENTS = "hops"
"""Refusals by this rule are the chain's budget, decided before the recipient is asked: they say
nothing of how far it can be counted on, so ``relationship_trust`` leaves them out."""


class PrivateMessageRow(SQLModel, table=True):
    __tablename__ = "private_messages"
    __table_args__ = (Index("ix_private_messages_pair", "sender", "recipient"),)

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True)
    sender: str = Field(index=True)
    sender_kind: str = "person"
    recipient: str = Field(index=True)
    state: str
    accepted: bool = False
    reason: str | None = Field(default=None, sa_type=Text)
    decided_by: str | None = None
    question: str | None = Field(default=None, sa_type=Text)
    reply: str = Field(default="", sa_type=Text)
    reply_chars: int = 0
    conversation_id: str | None = None
    reply_seq: int | None = None
    deepthink_conversation_id: str | None = None
    hops: int = 1
    input_rounds: int = 0
    created_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    duration_ms: float | None = None


_COPIED = ("sender", "sender_kind", "recipient", "reason", "decided_by", "question", "reply", "reply_chars",
           "conversation_id", "reply_seq", "deepthink_conversation_id", "hops", "input_rounds", "created_at",
           "decided_at", "finished_at")  # fmt: skip


def _write(session: Session, row: PrivateMessageRow | None, status: MessageStatus) -> None:
    """``status`` into ``row`` (a new one if None), unless that would move a finished message back."""
    if row is not None and MessageState(row.state).final and not status.state.final:
        return
    row = row or PrivateMessageRow(message_id=status.message_id, state=status.state.value)
    for name in _COPIED:
        setattr(row, name, getattr(status, name))
    row.state = status.state.value
    row.accepted = row.accepted or status.state.open or status.state == MessageState.COMPLETED
    if status.finished_at and status.created_at:
        row.duration_ms = round((status.finished_at - status.created_at).total_seconds() * 1000, 1)
    session.add(row)


def _status(row: PrivateMessageRow) -> MessageStatus:
    return MessageStatus(message_id=row.message_id, state=MessageState(row.state),
                         **{name: getattr(row, name) for name in _COPIED})  # fmt: skip


class PrivateMessageStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, status: MessageStatus) -> None:
        try:
            self._upsert(status)
        except IntegrityError:  # a concurrent attempt inserted it first: update that row
            self._upsert(status)

    def _upsert(self, status: MessageStatus) -> None:
        with Session(self._engine) as session:
            row = session.exec(select(PrivateMessageRow).where(PrivateMessageRow.message_id == status.message_id)).first()
            _write(session, row, status)
            session.commit()

    def admit(self, status: MessageStatus, max_open: int) -> int | None:
        """Write ``status`` (accepted) unless its recipient already has ``max_open`` open messages;
        None when admitted (also when a retry finds it admitted), else that open count."""
        with Session(self._engine) as session:
            self._lock_recipient(session, status)
            row = session.exec(select(PrivateMessageRow).where(PrivateMessageRow.message_id == status.message_id)).first()
            if row is not None and row.accepted:
                return None
            busy = _open_count(session, status.recipient, status.message_id)
            if busy >= max_open:
                return busy
            _write(session, row, status)
            session.commit()  # ends the transaction: the next admission, waiting for the lock, counts this one
        return None

    def _lock_recipient(self, session: Session, status: MessageStatus) -> None:
        if self._engine.dialect.name == "postgresql":
            session.exec(text("SELECT pg_advisory_xact_lock(hashtext(:key))").bindparams(key=f"admit:{status.recipient}"))
        else:  # a write first: the transaction holds SQLite's one write lock until it ends
            session.exec(text("UPDATE private_messages SET state = state WHERE message_id = :id").bindparams(id=status.message_id))

    def get(self, message_id: str) -> MessageStatus | None:
        with Session(self._engine) as session:
            row = session.exec(select(PrivateMessageRow).where(PrivateMessageRow.message_id == message_id)).first()
            return _status(row) if row else None

    def page(self, agent: str | None = None, limit: int = 50, before: int | None = None) -> MessagePage:
        """Newest first; with ``agent``, the messages it sent or received."""
        query = select(PrivateMessageRow).order_by(col(PrivateMessageRow.id).desc()).limit(limit + 1)
        if agent is not None:
            query = query.where(or_(PrivateMessageRow.sender == agent, PrivateMessageRow.recipient == agent))
        if before is not None:
            query = query.where(col(PrivateMessageRow.id) < before)
        with Session(self._engine) as session:
            rows = list(session.exec(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return MessagePage(items=[_status(row) for row in rows], next_before=rows[-1].id if more and rows else None)

    def for_people(self, limit: int) -> list[MessageStatus]:
        """What a person should look at, newest first: messages refused, and questions
        (``input_required``) waiting for a person who sent the message."""
        wanted = or_(PrivateMessageRow.state == MessageState.REFUSED.value,
                     (PrivateMessageRow.state == MessageState.INPUT_REQUIRED.value) & (PrivateMessageRow.sender_kind == "person"))
        query = select(PrivateMessageRow).where(wanted).order_by(col(PrivateMessageRow.id).desc()).limit(limit)
        with Session(self._engine) as session:
            return [_status(row) for row in session.exec(query)]

    def open_for(self, recipient: str, exclude_message_id: str) -> int:
        """Messages ``recipient`` accepted and has not finished (the workload the accept rule reads)."""
        with Session(self._engine) as session:
            return _open_count(session, recipient, exclude_message_id)

    def trust(self, sender: str, recipients: Iterable[str]) -> dict[str, float]:
        """``relationship_trust`` of each recipient towards ``sender`` (``trust_of``), for the
        recipients that ever decided a message from it."""
        wanted = list(recipients)
        with Session(self._engine) as session:
            rows = session.exec(select(PrivateMessageRow.recipient, PrivateMessageRow.state, func.count()).where(
                PrivateMessageRow.sender == sender, col(PrivateMessageRow.recipient).in_(wanted), not_(_budget_refusal()),
            ).group_by(PrivateMessageRow.recipient, PrivateMessageRow.state))  # fmt: skip
            by_recipient: dict[str, dict[str, int]] = defaultdict(dict)
            for recipient, state, count in rows:
                by_recipient[recipient][state] = count
        found = {r: trust_of(c.get("completed", 0), c.get("refused", 0), c.get("failed", 0)) for r, c in by_recipient.items()}
        return {recipient: value for recipient, value in found.items() if value is not None}

    def collaboration(self, since: datetime | None = None, until: datetime | None = None) -> CollaborationReport:
        """Per pair and per agent: sent, accepted, refused, completed, failed, open, mean duration."""
        rows_ = PrivateMessageRow
        window = []
        if since is not None:
            window.append(col(rows_.created_at) >= since)
        if until is not None:
            window.append(col(rows_.created_at) < until)
        with Session(self._engine) as session:
            rows = list(session.exec(select(
                rows_.sender, rows_.recipient, rows_.state, rows_.accepted, func.count(), func.sum(rows_.duration_ms),
            ).where(*window).group_by(rows_.sender, rows_.recipient, rows_.state, rows_.accepted)))  # fmt: skip
            budget = {(sender, recipient): count for sender, recipient, count in session.exec(
                select(rows_.sender, rows_.recipient, func.count()).where(*window, _budget_refusal())
                .group_by(rows_.sender, rows_.recipient))}  # fmt: skip
        return _report(rows, budget, since, until)


def _open_count(session: Session, recipient: str, exclude_message_id: str) -> int:
    return session.exec(select(func.count()).select_from(PrivateMessageRow).where(
        PrivateMessageRow.recipient == recipient, col(PrivateMessageRow.state).in_(OPEN_STATES),
        PrivateMessageRow.message_id != exclude_message_id)).one()  # fmt: skip


def _budget_refusal():  # noqa: ANN202 - a SQL expression
    return and_(PrivateMessageRow.state == MessageState.REFUSED.value, PrivateMessageRow.decided_by == NOT_THE_RECIPIENTS)


def _report(rows: list[tuple], budget_refusals: dict[tuple[str, str], int], since: datetime | None,
            until: datetime | None) -> CollaborationReport:  # fmt: skip
    pairs: dict[tuple[str, str], PairStats] = {}
    durations: dict[tuple[str, str], float] = defaultdict(float)
    for sender, recipient, state, accepted, count, total_ms in rows:
        pair = pairs.setdefault((sender, recipient), PairStats(sender=sender, recipient=recipient))
        _add(pair, state, bool(accepted), count)
        if state == MessageState.COMPLETED.value:
            durations[(sender, recipient)] += total_ms or 0.0
    agents: dict[str, AgentStats] = {}
    for key, pair in sorted(pairs.items()):
        pair.mean_duration_ms = round(durations[key] / pair.completed, 1) if pair.completed else None
        pair.trust = trust_of(pair.completed, pair.refused - budget_refusals.get(key, 0), pair.failed)
        for name, side in ((pair.sender, "sent"), (pair.recipient, "received")):
            stats = agents.setdefault(name, AgentStats(agent=name))
            _merge(getattr(stats, side), pair)
    return CollaborationReport(since=since, until=until, pairs=[pairs[k] for k in sorted(pairs)],
                               agents=[agents[k] for k in sorted(agents)])  # fmt: skip


def _add(counts: Counts, state: str, accepted: bool, count: int) -> None:
    counts.sent += count
    counts.accepted += count if accepted else 0
    if state in ("refused", "completed", "failed"):
        setattr(counts, state, getattr(counts, state) + count)
    elif state in OPEN_STATES:
        counts.open += count


def _merge(into: Counts, pair: Counts) -> None:
    total_ms = (into.mean_duration_ms or 0.0) * into.completed + (pair.mean_duration_ms or 0.0) * pair.completed
    for name in ("sent", "accepted", "refused", "completed", "failed", "open"):
        setattr(into, name, getattr(into, name) + getattr(pair, name))
    into.mean_duration_ms = round(total_ms / into.completed, 1) if into.completed else None
