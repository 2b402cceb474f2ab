"""The tables of the records store: conversations, their messages, and what each model call cost.

Temporal's history is the source of truth for *what happens next*; these tables are the durable,
queryable record of *what was said*. Workflow history only carries cut-down message bodies, so the
full text lives here, keyed by ``(conversation_id, seq)`` so that a retried activity can write the
same message again without creating a duplicate.

All timestamps are stored as UTC and always read back as timezone-aware UTC ``datetime`` objects,
on SQLite (which has no timezone type) as well as on PostgreSQL.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, LargeBinary, Text, UniqueConstraint
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

ROLES = frozenset({"user", "assistant", "system", "tool"})
"""The message roles Ollama's chat API knows; anything else is a caller bug."""


def utcnow() -> datetime:
    """The current time as an aware UTC datetime (the only kind this store writes)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime`` that is always UTC and always timezone-aware in Python.

    PostgreSQL gets ``timestamptz``. SQLite has no timezone support and hands back naive values, so
    values are converted to UTC before they are written and tagged as UTC when they are read.
    Naive values passed in are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Conversation(SQLModel, table=True):
    """One row per conversation: who it is with and when it started, changed and ended.

    Kept separate from the messages so that listing conversations never touches message bodies.
    """

    __tablename__ = "conversations"

    id: str = Field(primary_key=True)
    agent: str
    model: str
    user_id: str | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    end_reason: str | None = None


class Message(SQLModel, table=True):
    """One message of a conversation, in full, at its position ``seq`` (1, 2, 3, ...).

    ``(conversation_id, seq)`` is unique: that is what makes writing a message idempotent when an
    activity is retried, and its index (led by ``conversation_id``) serves every per-conversation
    query, so ``conversation_id`` needs no index of its own. There is deliberately no foreign key to
    ``conversations``: a message must never be lost because its conversation row was written late.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str
    seq: int
    role: str
    """One of ``ROLES``: user, assistant, system or tool."""
    content: str = Field(sa_type=Text)
    """The whole text, however large (``Text``, not a bounded ``VARCHAR``)."""
    tool_calls: list[dict[str, Any]] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    """The tool calls an assistant message asked for, as Ollama returned them; SQL NULL if none."""
    tool_call_id: str | None = None
    """For ``tool`` messages: which tool call this is the result of."""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ModelUsage(SQLModel, table=True):
    """What one model call cost: tokens and Ollama's timings, for the assistant message it produced.

    Separate from ``messages`` because it is accounting, not conversation: it is aggregated across
    conversations and models, and not every message has one. Unique on ``(conversation_id, seq)``
    so a retried activity records its call once. Counts and timings are nullable because Ollama
    omits some of them (for example ``prompt_eval_count`` when the whole prompt was cached).
    """

    __tablename__ = "model_usage"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_model_usage_conversation_seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str
    seq: int
    """The ``seq`` of the assistant message this call produced."""
    turn: int
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    """Prompt tokens the server took from its prompt (KV) cache, when it says (OpenAI-compatible
    ``usage.prompt_tokens_details.cached_tokens``); NULL when it does not — Ollama never does."""
    total_duration_ms: float | None = None
    load_duration_ms: float | None = None
    prompt_eval_duration_ms: float | None = None
    eval_duration_ms: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Action(SQLModel, table=True):
    """The action registry: one audit row per tool call and the decision taken on it.

    Written for every call, run or not (denied, timed out, invalid), so an operator can answer
    "who let the agent do that, under which rule" long after the conversation ended. Arguments are
    stored as a hash only: they may hold secrets, and the hash is what approvals are bound to.
    """

    __tablename__ = "actions"
    __table_args__ = (UniqueConstraint("conversation_id", "tool_call_id", name="uq_actions_conversation_call"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str
    tool_call_id: str
    turn: int
    agent: str = Field(index=True)
    tool: str
    action_type: str
    args_hash: str
    decision: str
    """allow | approve | approve_always | edit | deny | timeout | invalid"""
    source: str
    """What decided: ``rule:<id>``, ``approver:<name>``, ``timeout``, ``auto``, ``schema``."""
    policy_version: str = ""
    success: bool | None = None
    exit_code: int | None = None
    duration_ms: float | None = None
    error: str | None = Field(default=None, sa_type=Text)
    approval_wait_ms: float | None = None
    """How long the call waited for a person's decision (absent when nobody was asked)."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class ToolRun(SQLModel, table=True):
    """A finished tool call's result, kept by tool-call id so a retried run returns it as is.

    A worker that crashes after a tool ran but before Temporal heard of it must not run the tool a
    second time (a commit, a file write); the retry finds this row and returns it.
    """

    __tablename__ = "tool_runs"
    __table_args__ = (UniqueConstraint("conversation_id", "tool_call_id", name="uq_tool_runs_conversation_call"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str
    tool_call_id: str
    tool: str
    result: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    state: str | None = None
    """``started`` from the moment a non-idempotent tool begins its side effect until its result is
    written here (then ``done``; rows older than this column are NULL, i.e. done). A retry that
    finds ``started`` reports the interruption instead of running the command a second time."""


class Payload(SQLModel, table=True):
    """A large text that travels by reference (``models/payloads.py``): a tool-call argument the
    model wrote (a file's content), or a tool's full output (the artifact behind a capped one).

    Stored once per conversation and content (the key is its SHA-256), as UTF-8 bytes: PostgreSQL
    text cannot hold NUL characters, which files and program output may contain.
    """

    __tablename__ = "payloads"
    __table_args__ = (UniqueConstraint("conversation_id", "digest", name="uq_payloads_conversation_digest"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(index=True)
    digest: str
    bytes: int
    chars: int
    content: bytes = Field(sa_type=LargeBinary)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
