"""Inputs and results of the channel activities (``activities/channels``): ids, sequence numbers
and small results; message bodies stay in the store."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from models.channel import AgentMember, AuthorKind
from models.conversation import Contract
from models.relevance import RelevanceConfig, RelevanceOverrides, Thresholds
from models.relevance_scoring import UtcDatetime
from models.transcript import Routing


class OpenChannel(Contract):
    channel_id: str
    title: str = ""
    topic: str = ""
    user_id: str | None = None
    agents: list[AgentMember]
    people: list[str] = Field(default_factory=list)
    relevance: RelevanceOverrides | None = None
    policy: list[dict[str, Any]] = Field(default_factory=list)


class OpenedChannel(Contract):
    next_seq: int
    defaults: RelevanceConfig
    """``config/relevance.yaml`` (the channel's overrides were merged onto it and checked whole; the
    channel applies them itself, on top of the thresholds set at run time)."""
    routing: Routing
    prompts: dict[str, str]
    """By agent: the system prompt of its conversation (its template's or the override, then the
    channel's note on who is here and how messages read)."""
    memory: dict[str, bool] = Field(default_factory=dict)
    """By agent: whether its template keeps memories."""
    archive_after_s: int | None = None
    """``DAEMONFLOW_ARCHIVE_AFTER_S`` (None in histories recorded before archiving)."""


class MessageSource(Contract):
    """Where an agent's reply is stored: its conversation's transcript."""

    conversation_id: str
    seq: int


class AppendChannelMessage(Contract):
    channel_id: str
    seq: int
    author: str
    kind: AuthorKind
    content: str = ""
    """Inline (a person's post, a note, the channel's notice); empty when ``source`` names it."""
    source: MessageSource | None = None
    reply_to: str | None = None
    answers: int | None = None
    mentions: list[str] = Field(default_factory=list)
    """Given with the post; those named ``@name`` in the text are added."""
    members: list[str] = Field(default_factory=list)
    """Who can be mentioned."""
    at: UtcDatetime


class AppendedChannelMessage(Contract):
    seq: int
    chars: int
    preview: str
    mentions: list[str] = Field(default_factory=list)
    thresholds: Thresholds | None = None
    """The thresholds set at run time (``PUT /relevance/thresholds``), if any: they apply to this message."""


class ComposeTurn(Contract):
    """The text an agent is asked to answer: the channel since its last turn, then the message."""

    channel_id: str
    conversation_id: str
    agent: str
    after_seq: int
    answering_seq: int
    limit: int


class ObserveMessage(Contract):
    channel_id: str
    seq: int
    agent: str
    conversation_id: str
    user_id: str | None = None


class Observed(Contract):
    stored: bool
    memory_id: str | None = None
    skipped: str | None = None


class CloseChannel(Contract):
    channel_id: str
    reason: str
