"""The public contract of ``ChannelWorkflow``: its input, the ``post`` update, signals and queries.

A channel is a shared room of agents and people. Each agent member is a long-lived
``ConversationWorkflow`` of its own (conversation id ``<channel>--<agent>``), so it keeps what
conversations have: tools through the policy, approvals, memory, a sandbox, audit rows. A post is
scored for every agent by the relevance engine; the agents it is relevant to answer, one at a time,
and each answer is a message the others score in turn, within budgets only the channel's
configuration sets. These models are what `temporal workflow start --input` and the API send as
JSON, so field names here are public names.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from models.archive import ArchiveRecord
from models.conversation import Contract, Usage
from models.relevance import RelevanceOverrides
from models.relevance_scoring import Decision

CHANNEL_WORKFLOW_PREFIX = "channel-"
TRANSCRIPT_PREFIX = "channel:"
"""Channel message bodies live in the transcript store under ``channel:<id>`` (one namespace the
conversation ids of its members, ``<id>--<agent>``, can never take)."""
MEMBER_SEPARATOR = "--"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
"""Channel ids and member names: what fits a workflow id, a mention (``@name``) and a search attribute."""
PREVIEW_CHARS = 500
"""How much of a message a channel keeps in its state (history query, events, results)."""


def channel_workflow_id(channel_id: str) -> str:
    return f"{CHANNEL_WORKFLOW_PREFIX}{channel_id}"


def member_conversation_id(channel_id: str, agent: str) -> str:
    return f"{channel_id}{MEMBER_SEPARATOR}{agent}"


def transcript_id(channel_id: str) -> str:
    return f"{TRANSCRIPT_PREFIX}{channel_id}"


class AgentMember(Contract):
    """An agent of the channel: a template, with optional overrides for this channel only."""

    agent: str = Field(pattern=NAME_PATTERN)
    """The agent template's name (``config/agents/<agent>.yaml``); also its name in the channel."""
    model: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, max_length=100_000)
    """Replaces the template's prompt; the channel's own note (who is here, how messages read) follows."""
    expertise: list[str] | None = Field(default=None, max_length=50)
    """Replaces the template's ``expertise`` when the channel scores posts for this agent."""
    description: str | None = Field(default=None, max_length=2000)
    auto_accept: bool | None = None
    """``None``: the channel's ``auto_accept``."""


class ChannelBudgets(Contract):
    """What bounds the agents' chains. Only the channel's input sets them: nothing an agent writes
    (a mention, an instruction) can lift them."""

    replies_per_post: int = Field(default=6, ge=0, le=50)
    """Agent replies one post may bring, its chain included (agents answering agents)."""
    tokens: int | None = Field(default=None, ge=1)
    """Model tokens (prompt + completion) the agents' turns may use over the channel's life; checked
    before each turn (the turn that crosses it completes)."""
    context_messages: int = Field(default=20, ge=1, le=50)
    """At most this many channel messages are shown to an agent per turn (those since its last turn)."""
    deepthink_steps: int = Field(default=3, ge=1, le=8)
    """Private reasoning steps of an agent that reflects (``thresholds.reflect``), before its summary."""
    member_check_s: int = Field(default=600, ge=1, le=86_400)
    """While it waits for an agent's turn, the channel checks this often that the agent's
    conversation still runs: one terminated by an operator never reports, and the post would wait
    for ever; a stopped one leaves the channel, with the reason."""


class ChannelInput(Contract):
    channel_id: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Generated from the workflow id when absent (``channel-<id>`` → ``<id>``)."""
    title: str = Field(default="", max_length=200)
    topic: str = Field(default="", max_length=2000)
    agents: list[AgentMember] = Field(min_length=1, max_length=50)
    """Agent members; a plain template name stands for ``{"agent": name}``."""
    people: list[str] = Field(default_factory=list, max_length=200)
    """People members. Anyone who posts joins (agents' names are refused as authors)."""
    relevance: RelevanceOverrides | None = None
    """This channel's changes to ``config/relevance.yaml`` (e.g. ``{"thresholds": {"intervene": 0.6}}``)."""
    budgets: ChannelBudgets = Field(default_factory=ChannelBudgets)
    user_id: str | None = Field(default=None, max_length=200)
    """The user the agents' conversations (and their memories) belong to."""
    auto_accept: bool = True
    policy: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    """Policy rule overrides for every agent's conversation (same format as ``config/policy.yaml``)."""
    approval_timeout_s: int = Field(default=3600, ge=1)
    max_message_chars: int = Field(default=100_000, ge=1)
    posts_per_run: int = Field(default=100, ge=1)
    """Continue-as-new after this many posts in one run, even if the server does not ask yet."""
    carried: dict[str, Any] | None = None
    """Set only by continue-as-new: the previous run's ``models.channel_state.CarriedChannel``."""
    # --- archiving after inactivity (models/archive.py) ---
    archive_after_s: int | None = Field(default=None, ge=0)
    """Archive after this many seconds without a post (nothing queued); None: the setting
    ``DAEMONFLOW_ARCHIVE_AFTER_S`` (48 h); 0: never. The agents' conversations archive on their own
    clock and are revived when the channel asks them for a turn."""
    revive: bool = False
    """Set by whoever revives an archived channel: the run reads its input and state back from the
    archive record (``archive.reopen``); the other fields then only stand in if there is none."""

    @field_validator("agents", mode="before")
    @classmethod
    def _names_stand_for_members(cls, value: Any) -> Any:
        return [{"agent": item} if isinstance(item, str) else item for item in value] if isinstance(value, list) else value

    @field_validator("people")
    @classmethod
    def _people_names(cls, value: list[str]) -> list[str]:
        for name in value:
            check_name(name, "person")
        return value

    @model_validator(mode="after")
    def _distinct_names(self) -> ChannelInput:
        names = [member.agent for member in self.agents] + self.people
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"member names must be distinct; repeated: {', '.join(repeated)}")
        return self


def check_name(name: str, what: str) -> str:
    if not re.fullmatch(NAME_PATTERN, name):
        raise ValueError(f"{what} name {name!r} must be 1-63 letters, digits, _ . - (starting with a letter or digit)")
    return name


class ChannelState(StrEnum):
    IDLE = "idle"
    SCORING = "scoring"
    ANSWERING = "answering"
    AWAITING_APPROVAL = "awaiting_approval"
    """An agent's turn waits for a person to decide a tool call."""
    PAUSED = "paused"
    ENDED = "ended"
    ARCHIVED = "archived"
    """Completed after inactivity; a new post revives it (``models/archive.py``)."""


class AuthorKind(StrEnum):
    PERSON = "person"
    AGENT = "agent"
    NOTE = "note"
    """An operator's note (``inject``): agents see it with their next turn; nobody is asked to answer."""
    NOTICE = "notice"
    """The channel's own word (a budget ended a chain, nobody found a post relevant): for people only."""


# --- the post update ----------------------------------------------------------------------------


class Post(Contract):
    author: str = Field(pattern=NAME_PATTERN)
    """A person (anyone who posts joins the channel); never an agent's name."""
    content: str
    mentions: list[str] = Field(default_factory=list, max_length=50)
    """Members to ask, in addition to those named ``@name`` in the text."""
    reply_to: str | None = None
    """The member this post answers (its score gets the relevance engine's ``addressed_boost``)."""


class MemberScore(Contract):
    """One agent's score for one message: what it decided and, in one line, why. The factor
    breakdown is in the relevance records (``score_id``)."""

    agent: str
    score: float
    decision: Decision
    high_priority: bool = False
    forced: str | None = None
    explanation: str
    score_id: int | None = None


class ScoredMessage(Contract):
    seq: int
    author: str
    scores: list[MemberScore] = Field(default_factory=list)


class ChannelReply(Contract):
    """An agent's answer, as a channel message; the whole text is in the store at ``seq``."""

    agent: str
    seq: int
    answers: int
    """The seq of the message it answers."""
    preview: str
    chars: int
    score: float | None = None
    reason: str = ""
    """The explanation of the decision that made it speak."""
    usage: Usage = Field(default_factory=Usage)


class NotAnswered(Contract):
    agent: str
    reason: str


class PostResult(Contract):
    channel_id: str
    seq: int
    """The post's place in the channel."""
    spoke: list[str] = Field(default_factory=list)
    """The agents that answered, in order (an agent may appear twice in a chain)."""
    replies: list[ChannelReply] = Field(default_factory=list)
    scores: list[MemberScore] = Field(default_factory=list)
    """Every agent's score for the post, ranked (mentioned first, then highest)."""
    reactions: list[ScoredMessage] = Field(default_factory=list)
    """Every agent's score for each reply (other than its author): how the chain went on."""
    observed: list[str] = Field(default_factory=list)
    """Agents that put the post in their memory without answering."""
    not_answered: list[NotAnswered] = Field(default_factory=list)
    """Agents that were to answer and could not (their turn failed, a budget ran out…)."""
    stopped: str | None = None
    """Why the chain ended before every agent that wanted to speak had (a budget)."""
    nobody: str | None = None
    """Set when no agent found the post relevant enough to answer: the best scores, in words."""
    usage: Usage = Field(default_factory=Usage)


# --- signals ------------------------------------------------------------------------------------


class ChannelNote(Contract):
    """The ``inject`` signal: a note written into the channel that agents read with their next turn;
    nobody is asked to answer it."""

    content: str
    author: str = Field(default="operator", pattern=NAME_PATTERN)


class WatchPost(Contract):
    post_id: str
    """The ``post`` update id."""


# --- queries ------------------------------------------------------------------------------------


class ChannelMessageView(Contract):
    """A message as the channel keeps it in its state: cut to ``PREVIEW_CHARS``; the store has it whole."""

    seq: int
    author: str
    kind: AuthorKind
    content: str
    truncated: bool = False
    reply_to: str | None = None
    at: datetime | None = None


class ChannelSummary(Contract):
    """What a finished channel workflow returns."""

    channel_id: str
    posts: int
    ended_reason: str
    archive: ArchiveRecord | None = None
    """Set when the run archived after inactivity."""


class ChannelHistoryQuery(Contract):
    limit: int = Field(default=20, ge=1, le=200)


class ScoresQuery(Contract):
    limit: int = Field(default=5, ge=1, le=20)
    """How many of the latest scored messages."""
