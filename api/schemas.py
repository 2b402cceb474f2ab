"""Request and response bodies that exist only at the HTTP edge.

Whatever goes on to a workflow is one of the contracts in ``models/`` (``ConversationInput``,
``SendMessage``, ``Pause``, ``Inject``, ``Approve``…); these wrap them where HTTP needs more (a
first message, paging) or less (``carried`` state and the approver's name are never taken from a
client).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from control.turns import TurnWaiting
from control.visibility import ConversationItem
from models.conversation import Contract, Inject, PendingApproval, Status, TurnResult
from models.streaming import DoubleTexting

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
"""Conversation, turn and tool call ids: what may appear in a path and a workflow id."""
AGENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
HASH_PATTERN = r"^[0-9a-f]{64}$"


class CreateConversation(Contract):
    """A new conversation: ``ConversationInput`` without ``carried``, plus an optional first message."""

    conversation_id: str | None = Field(default=None, pattern=ID_PATTERN)
    """Generated when absent; an id already used (running or not) is a 409."""
    agent: str = Field(default="assistant", pattern=AGENT_PATTERN)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, max_length=100_000)
    auto_accept: bool = True
    policy: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    """Per-conversation policy rules (needs the admin role: an allow rule skips approvals)."""
    user_id: str | None = Field(default=None, max_length=200)
    max_steps_per_turn: int = Field(default=8, ge=1, le=100)
    approval_timeout_s: int = Field(default=3600, ge=1, le=30 * 24 * 3600)
    double_texting: DoubleTexting = DoubleTexting.ENQUEUE
    """What a message sent while a turn runs does: ``enqueue``, ``reject`` (409), ``interrupt``."""
    stream_tokens: bool = True
    """Stream the model's tokens to viewers while it writes (off: replies appear once stored)."""
    archive_after_s: int | None = Field(default=None, ge=0)
    """Archive after this long without a turn (``DAEMONFLOW_ARCHIVE_AFTER_S``, 48 h, when absent; 0: never)."""
    message: str | None = None
    """The first message, sent with the start (update-with-start); its turn result is returned."""


class ConversationCreated(BaseModel):
    conversation_id: str
    workflow_id: str
    agent: str
    turn: TurnResult | None = None
    """The first message's turn, when a message was sent and ``wait`` was true."""
    turn_id: str | None = None
    """The first message's turn id, when a message was sent; poll ``/turns/{turn_id}``."""
    waiting: TurnWaiting | None = None
    """With ``202``: why the first turn is not answered yet (a person, a pause, the wait budget)."""


class ConversationPage(BaseModel):
    conversations: list[ConversationItem]
    next_page_token: str | None = None


class ConversationDetail(BaseModel):
    workflow_id: str
    execution: str
    status: Status


class MessageItem(BaseModel):
    seq: int | None
    """None while ``pending``."""
    role: str
    content: str
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    created_at: datetime | None
    """None while ``pending``."""
    pending: bool = False
    """Not in the transcript yet (the model has not seen it): an injected note or a queued message,
    after the last stored one, in the order they will be written; from the workflow, on the last page."""


class MessagePage(BaseModel):
    messages: list[MessageItem]
    next_after: int | None = None
    """Pass as ``after`` for the next page; null when this page was the last."""


class TurnAccepted(TurnWaiting):
    """A message accepted and not answered yet, and why. Poll ``GET /conversations/{id}/turns/{turn_id}``
    for its result, or watch the events."""

    conversation_id: str


class TurnStatus(BaseModel):
    turn_id: str
    done: bool
    result: TurnResult | None = None


class SignalSent(BaseModel):
    conversation_id: str
    signal: str
    """Delivered to the workflow, which applies it at its next step boundary."""


class InjectBody(Inject):
    content: str = Field(min_length=1, max_length=100_000)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content is blank")
        return value


class ApprovalItem(PendingApproval):
    conversation_id: str
    agent: str | None = None
    channel: str | None = None
    """The channel whose agent this conversation is, if any."""


class DecisionBody(Contract):
    """A person's decision. The approver is the API key's name, never a field a client sets."""

    decision: Literal["approve", "approve_always", "deny", "edit"]
    arguments: dict[str, Any] | None = None
    """Only with ``edit``: the arguments to run instead (judged again by the policy)."""
    arguments_hash: str | None = Field(default=None, pattern=HASH_PATTERN)
    """The ``args_hash`` you were shown; if the waiting call differs, the decision is refused (409)."""
    reason: str | None = Field(default=None, max_length=2000)


class DecisionResult(BaseModel):
    conversation_id: str
    tool_call_id: str
    decision: str
    approver: str
    arguments: dict[str, Any] | None
    """What runs: the arguments shown (approve), the edited ones (edit), nothing (deny)."""
    args_hash: str
    """The hash of the arguments that were waiting, which the decision is bound to."""
    applied: bool = True
    """Always true: the answer comes from the workflow, once it has applied the decision."""


class ComponentHealth(BaseModel):
    ok: bool
    latency_ms: float | None = None
    detail: str = ""


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    """``down``: Temporal or the store fails (503); ``degraded``: a model server or the workers missing."""
    temporal: ComponentHealth
    store: ComponentHealth
    workers: ComponentHealth
    model_servers: dict[str, ComponentHealth]
    """By provider: ``ollama`` or ``openai`` (the chat server), plus ``ollama-embeddings`` or
    ``openai-embeddings`` when embeddings come from another server."""


class AgentItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    description: str = ""
    model: str | None = None
    context_size: int
    temperature: float
    tools: list[str]
    memory: bool
