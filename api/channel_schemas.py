"""Request and response bodies of the channel and relevance endpoints that exist only at the HTTP
edge; what goes on to a workflow is one of the contracts in ``models/`` (``ChannelInput``, ``Post``,
``ChannelNote``, ``Thresholds``…)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator

from control.posts import PostWaiting
from control.visibility import ChannelItem
from models.channel import NAME_PATTERN, AgentMember, AuthorKind, ChannelBudgets, ChannelNote, PostResult
from models.channel_state import ChannelStatus
from models.conversation import Contract
from models.relevance import RelevanceOverrides, Thresholds
from models.relevance_records import Feedback
from models.relevance_scoring import INLINE_TEXT_MAX, AuthorKind as ScoredAuthor


class CreateChannel(Contract):
    """A new channel: ``ChannelInput`` without the fields only the server sets."""

    channel_id: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Generated when absent; an id already used (running or not) is a 409."""
    title: str = Field(default="", max_length=200)
    topic: str = Field(default="", max_length=2000)
    agents: list[AgentMember | Annotated[str, StringConstraints(pattern=NAME_PATTERN)]] = Field(min_length=1, max_length=50)
    """Agent members: template names, or ``{"agent": name, "model"?, "system_prompt"?, "expertise"?,
    "description"?, "auto_accept"?}``."""
    people: list[str] = Field(default_factory=list, max_length=200)
    relevance: RelevanceOverrides | None = None
    budgets: ChannelBudgets = Field(default_factory=ChannelBudgets)
    user_id: str | None = Field(default=None, max_length=200)
    auto_accept: bool = True
    policy: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    """Policy rules for every agent's conversation (needs the admin role: an allow rule skips approvals)."""
    approval_timeout_s: int = Field(default=3600, ge=1, le=30 * 24 * 3600)
    archive_after_s: int | None = Field(default=None, ge=0)
    """Archive after this long without a post (``DAEMONFLOW_ARCHIVE_AFTER_S``, 48 h, when absent; 0: never)."""


class ChannelCreated(BaseModel):
    channel_id: str
    workflow_id: str
    agents: list[str]
    people: list[str]
    conversations: list[str]
    """The agents' conversation ids (``<channel>--<agent>``): their approvals, transcripts and events."""


class ChannelPage(BaseModel):
    channels: list[ChannelItem]
    next_page_token: str | None = None


class ChannelDetail(BaseModel):
    workflow_id: str
    execution: str
    status: ChannelStatus


class PostBody(Contract):
    content: str = Field(min_length=1, max_length=100_000)
    author: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Who posts; default the API key's name."""
    mentions: list[str] = Field(default_factory=list, max_length=50)
    reply_to: str | None = Field(default=None, pattern=NAME_PATTERN)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is blank")
        return value


class PostAccepted(PostWaiting):
    """A post accepted and not over yet, and why. Read ``GET /channels/{id}/posts/{post_id}`` for its
    result, or follow the channel's events."""

    channel_id: str


class PostStatus(BaseModel):
    post_id: str
    done: bool
    result: PostResult | None = None


class ChannelMessageItem(BaseModel):
    seq: int
    author: str
    kind: AuthorKind
    content: str
    reply_to: str | None = None
    answers: int | None = None
    """The seq of the message an agent's reply answers."""
    mentions: list[str] = Field(default_factory=list)
    conversation_id: str | None = None
    """An agent's reply: the conversation it was written in."""
    created_at: datetime


class ChannelMessagePage(BaseModel):
    messages: list[ChannelMessageItem]
    next_after: int | None = None


class ChannelSignalSent(BaseModel):
    channel_id: str
    signal: str


class NoteBody(ChannelNote):
    """A note; its author is the API key's name unless given."""

    content: str = Field(min_length=1, max_length=100_000)


class CalculateBody(Contract):
    content: str = Field(min_length=1, max_length=INLINE_TEXT_MAX)
    """The hypothetical message (scored on its first 4 000 characters, as embeddings read no further)."""
    agents: list[str] = Field(default_factory=list, max_length=500)
    """The agents to score; default every agent of ``channel_id``. Required without a channel."""
    channel_id: str | None = Field(default=None, pattern=NAME_PATTERN)
    """Score as this channel would now: its recent messages, who spoke when, its overrides."""
    author: str = Field(default="someone", pattern=NAME_PATTERN)
    author_kind: ScoredAuthor = ScoredAuthor.PERSON
    mentions: list[str] = Field(default_factory=list, max_length=50)
    reply_to: str | None = Field(default=None, pattern=NAME_PATTERN)


class ThresholdsView(BaseModel):
    thresholds: Thresholds
    source: str
    """``file`` (``config/relevance.yaml`` or ``DAEMONFLOW_RELEVANCE_FILE``) or ``run-time`` (set with PUT)."""
    updated_by: str | None = None
    updated_at: datetime | None = None


class FeedbackBody(Contract):
    score_id: int = Field(ge=1, le=2**63 - 1)
    """A score's id (``score_id`` in a post's result, ``id`` in ``/relevance/scores``)."""
    feedback: Feedback
    note: str | None = Field(default=None, max_length=2000)
