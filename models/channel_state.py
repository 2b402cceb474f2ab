"""A channel's state: what it carries across continue-as-new (``CarriedChannel``, held whole) and
what it shows (``ChannelStatus``, ``PostProgress``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.channel import ChannelMessageView, ChannelNote, ChannelState, Post, ScoredMessage
from models.channel_events import ChannelEvent
from models.conversation import Contract
from models.relevance import RelevanceConfig
from models.transcript import Routing
from models.turn_reports import WaitingCall

EVENTS_KEPT = 200
RECENT_KEPT = 50
SCORED_KEPT = 20


class AgentSeat(Contract):
    """One agent member as the channel tracks it."""

    agent: str
    conversation_id: str
    started: bool = False
    """Its conversation was started (by this run or an earlier one)."""
    gone: str | None = None
    """Why it cannot answer any more (its conversation ended or could not start)."""
    last_spoke_at: datetime | None = None
    seen_seq: int = 0
    """The last channel message it has been shown; its next turn shows it what came after."""
    replies: int = 0
    tokens: int = 0
    system_prompt: str = ""
    """Its template's prompt (or the member's override) followed by the channel's note, from ``channel.open``."""
    turn: str | None = None
    """While it answers: ``answering``, ``awaiting_approval`` or ``paused`` (from its progress notes)."""
    waiting: list[WaitingCall] = Field(default_factory=list)
    """Its tool calls waiting for a person, while it answers."""
    memory: bool = True
    """Its template keeps memories (an observed message goes to them)."""


class QueuedPost(Contract):
    id: str
    post: Post
    has_caller: bool = False
    """A ``post`` update waits for its result (never carried across runs)."""
    update_id: str | None = None


class CarriedChannel(Contract):
    """Everything a channel carries from one run to the next, handed over whole."""

    channel_id: str
    opened: bool = False
    defaults: RelevanceConfig | None = None
    """``config/relevance.yaml`` as it was when the channel opened (the channel's overrides go on top,
    and under them the thresholds set at run time, read with each message)."""
    routing: Routing = Field(default_factory=Routing)
    agents: list[AgentSeat] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    next_seq: int = 1
    posts: int = 0
    queue: list[QueuedPost] = Field(default_factory=list)
    notes: list[ChannelNote] = Field(default_factory=list)
    """``inject``ed notes not written yet (each stays until it is in the store)."""
    paused: bool = False
    pause_reason: str | None = None
    tokens_used: int = 0
    recent: list[ChannelMessageView] = Field(default_factory=list)
    scored: list[ScoredMessage] = Field(default_factory=list)
    """The latest scored messages (``scores`` query)."""
    events: list[ChannelEvent] = Field(default_factory=list)
    next_event_id: int = 1
    archive_after_s: int | None = None
    """The inactivity period from the settings, read by ``channel.open``."""
    last_activity_at: datetime | None = None
    """The end of the latest post (or the start), for the inactivity clock across runs."""

    def seat(self, agent: str) -> AgentSeat:
        return next(seat for seat in self.agents if seat.agent == agent)


class MemberStatus(Contract):
    agent: str
    conversation_id: str
    state: str
    """idle, answering, awaiting_approval, paused (its turn waits), gone."""
    last_spoke_at: datetime | None = None
    replies: int = 0
    tokens: int = 0
    waiting: list[WaitingCall] = Field(default_factory=list)
    gone: str | None = None


class ChannelStatus(Contract):
    channel_id: str
    title: str
    topic: str
    state: ChannelState
    details: str
    """The Web UI's current details line, e.g. "developer answering; analyst observing"."""
    paused: bool
    pause_reason: str | None = None
    posts: int
    queued: int
    agents: list[MemberStatus]
    people: list[str]
    tokens_used: int
    token_budget: int | None = None
    replies_per_post: int
    ended_reason: str | None = None


class PostProgress(Contract):
    """What ``watch_post`` answers as soon as the post is done, or waits for a person or a resume."""

    post_id: str
    done: bool
    state: ChannelState
    waiting: list[MemberStatus] = Field(default_factory=list)
    """The agents whose turn waits for a person, with the tool calls that wait."""
    pause_reason: str | None = None
