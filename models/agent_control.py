"""Per-agent control (seed 003's admin API): what ``POST /agents/{agent}/pause|resume|tasks``,
``GET /agents/{agent}/debug`` and ``GET /notifications`` take and answer (``control/agents.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AGENT_PAUSE_PREFIX = "agent {agent} paused"


def agent_pause_reason(agent: str, reason: str = "") -> str:
    """The pause reason a conversation shows when its agent is paused (also how it knows the pause
    is the agent's, to lift it when the agent is resumed)."""
    head = AGENT_PAUSE_PREFIX.format(agent=agent)
    return f"{head}: {reason}" if reason else head


def is_agent_pause(agent: str, reason: str | None) -> bool:
    return bool(reason) and reason.startswith(AGENT_PAUSE_PREFIX.format(agent=agent))  # type: ignore[union-attr]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentPauseRequest(Strict):
    reason: str = Field(default="", max_length=500)


class Reached(BaseModel):
    conversation_id: str
    channel: str | None = None
    """The channel this conversation is the agent's seat in, if any."""
    error: str | None = None
    """Why the signal did not reach it (it closed since it was listed, say)."""


class AgentControlResult(BaseModel):
    agent: str
    action: Literal["pause", "resume"]
    paused: bool
    """The agent's flag now: new and revived conversations of it start paused while it is set."""
    reached: int
    """Running conversations signalled."""
    in_channels: int
    """Of those, the agent's seats in channels."""
    conversations: list[Reached] = Field(default_factory=list)


class AgentTaskRequest(Strict):
    content: str = Field(min_length=1, max_length=100_000)
    conversation_id: str | None = Field(default=None, max_length=200)
    """Which conversation gets the task; default: the agent's most recently active running
    conversation outside channels, else a new one."""
    user_id: str | None = Field(default=None, max_length=200)


class AgentTaskResult(BaseModel):
    agent: str
    conversation_id: str
    delivered: Literal["injected", "started", "revived"]
    """``injected``: a ``next`` note into a running conversation (the model sees it at its next
    step); ``started``: a new conversation whose first message is the task; ``revived``: an archived
    conversation revived with it."""
    priority: Literal["next", "queue"]
    """``next`` while a turn runs (seen at the model's next step); ``queue`` when the conversation
    was idle: a turn of its own, first in line."""


class ConversationDebug(BaseModel):
    conversation_id: str
    channel: str | None = None
    execution: str
    state: str | None = None
    turn: int | None = None
    queued: int | None = None
    paused: bool | None = None
    pause_reason: str | None = None
    current: str | None = None
    """What it is doing now (the workflow's details line)."""
    pending_approvals: list[dict[str, Any]] = Field(default_factory=list)
    last_error: str | None = None
    error: str | None = None
    """Why it could not be asked (no worker answered, say)."""


class AgentDebug(BaseModel):
    agent: str
    paused: str | None = None
    """The operator's pause of this agent, if set."""
    conversations: list[ConversationDebug] = Field(default_factory=list)
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    """Its latest relevance decisions in channels, with scores and explanations, newest first."""
    errors: list[dict[str, Any]] = Field(default_factory=list)
    """Its latest failed or denied tool calls from the audit, newest first."""
    archived: list[dict[str, Any]] = Field(default_factory=list)


class Notification(BaseModel):
    kind: Literal["approval", "alert", "budget", "refused", "question"]
    at: datetime | None = None
    title: str
    detail: str = ""
    link: str | None = None
    """Where to act: an API path (``/conversations/{id}``, ``/channels/{id}``)."""
    data: dict[str, Any] = Field(default_factory=dict)


class Notifications(BaseModel):
    count: int
    items: list[Notification]
