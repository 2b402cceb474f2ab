"""Read-only views of the records for per-agent debugging and the notification centre: an agent's
latest failed or refused tool calls (the audit) and the channels' latest budget notices."""

from __future__ import annotations

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from models.channel import TRANSCRIPT_PREFIX, AuthorKind
from store.channels import ChannelMessageRow
from store.tables import Action, Message

REFUSED_DECISIONS = ("deny", "timeout", "invalid")
BUDGET_NOTICES = ("reply budget", "token budget")
"""How a budget notice begins (``workflows/channel_chain.py``'s stop reasons)."""


def recent_failures(engine: Engine, agent: str, limit: int = 20) -> list[Action]:
    """The agent's latest tool calls that failed or were refused (denied, timed out, invalid), newest first."""
    query = (select(Action).where(Action.agent == agent)
             .where(or_(col(Action.success).is_(False), col(Action.decision).in_(REFUSED_DECISIONS)))
             .order_by(col(Action.id).desc()).limit(limit))  # fmt: skip
    with Session(engine) as session:
        return list(session.exec(query))


def budget_notices(engine: Engine, limit: int = 20) -> list[tuple[ChannelMessageRow, str]]:
    """The latest notices of a channel budget ending a chain, newest first, with their text."""
    query = (select(ChannelMessageRow, Message)
             .join(Message, (Message.conversation_id == (TRANSCRIPT_PREFIX + col(ChannelMessageRow.channel_id)))
                   & (Message.seq == ChannelMessageRow.seq))
             .where(ChannelMessageRow.kind == AuthorKind.NOTICE.value)
             .where(or_(*(col(Message.content).startswith(head) for head in BUDGET_NOTICES)))
             .order_by(col(ChannelMessageRow.id).desc()).limit(limit))  # fmt: skip
    with Session(engine) as session:
        return [(row, message.content) for row, message in session.exec(query)]
