"""Long-term memory: what an agent remembers, who may see it, and how recall is ranked.

A memory is a short text with a *scope* saying whose it is (an agent's, a user's, one
conversation's) and a *kind* saying what it is. The vector that finds it lives only in the memory
store; these models never carry it, so they stay small enough for workflow history.

Scopes are visibility, not ownership: a recall names every ``(scope, scope_id)`` pair the caller
may see (see :func:`visible_scopes`), and nothing outside them is ever returned.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class MemoryScope(StrEnum):
    AGENT = "agent"
    """What an agent learned for everyone it talks to; ``scope_id`` is the agent (template) name."""
    USER = "user"
    """What a user told any agent; ``scope_id`` is the user id."""
    CONVERSATION = "conversation"
    """Only for one conversation; ``scope_id`` is the conversation id."""


class MemoryKind(StrEnum):
    EPISODIC = "episodic"
    """What happened."""
    SEMANTIC = "semantic"
    """Facts and preferences."""
    REFLECTIVE = "reflective"
    """Decisions and lessons."""


ScopeRef = tuple[MemoryScope, str]
"""One ``(scope, scope_id)`` pair; JSON ``["user", "alice"]``."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime | None) -> datetime | None:
    """Naive datetimes are taken to be UTC; aware ones are converted to UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def visible_scopes(
    agent: str | None = None, user_id: str | None = None, conversation_id: str | None = None
) -> list[ScopeRef]:
    """The scopes a turn may recall from: its agent's, its user's and its conversation's.

    A missing id contributes nothing, so a conversation without a user never sees user memories.
    """
    scopes: list[ScopeRef] = []
    if agent:
        scopes.append((MemoryScope.AGENT, agent))
    if user_id:
        scopes.append((MemoryScope.USER, user_id))
    if conversation_id:
        scopes.append((MemoryScope.CONVERSATION, conversation_id))
    return scopes


class NewMemory(BaseModel):
    """What a caller asks to remember (the store assigns id and times)."""

    text: str = Field(min_length=1)
    scope: MemoryScope
    scope_id: str = Field(min_length=1)
    kind: MemoryKind = MemoryKind.SEMANTIC
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    agent: str | None = None
    """The agent that stored it (whatever the scope)."""
    source_conversation: str | None = None
    source_turn: int | None = None
    expires_at: datetime | None = None

    @field_validator("text")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("memory text is empty")
        return value

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class MemoryRecord(BaseModel):
    """One stored memory, without its vector."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    text: str
    scope: MemoryScope
    scope_id: str
    kind: MemoryKind = MemoryKind.SEMANTIC
    importance: float = Field(default=0.5, ge=0.0, le=1.0)
    source_conversation: str | None = None
    source_turn: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    """When it was last stored again or recalled; starts as ``created_at``."""
    expires_at: datetime | None = None
    agent: str | None = None

    @field_validator("id")
    @classmethod
    def _uuid(cls, value: str) -> str:
        return str(uuid.UUID(str(value)))

    @field_validator("created_at", "last_used_at", "expires_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @model_validator(mode="after")
    def _last_used_defaults_to_created(self) -> MemoryRecord:
        if self.last_used_at is None:
            self.last_used_at = self.created_at
        return self

    @classmethod
    def new(cls, memory: NewMemory, now: datetime | None = None) -> MemoryRecord:
        now = _as_utc(now) or utcnow()
        return cls(**memory.model_dump(), created_at=now, last_used_at=now)

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (_as_utc(now) or utcnow())


class MemoryQuery(BaseModel):
    """A recall: the text to match, how many to return, and what the caller may see."""

    text: str = Field(min_length=1)
    k: int = Field(default=5, ge=1, le=100)
    scopes: list[ScopeRef] | None = Field(default_factory=list)
    """Every ``(scope, scope_id)`` the caller may see. Empty: nothing is visible. ``None``: no
    scope filter at all, for operators (CLI, admin) only; ``MemoryService.recall`` refuses it."""
    kinds: list[MemoryKind] | None = None
    """Only these kinds; ``None`` means all."""
    min_score: float = 0.0
    """Drop results whose combined score (see ``activities.memory.ranking``) is below this."""
    min_similarity: float = Field(default=0.0, ge=-1.0, le=1.0)
    """Drop candidates whose cosine similarity to the query is below this; the default drops only
    memories pointing away from the query (negative similarity: unrelated). -1 keeps everything."""

    @field_validator("scopes", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        # Accept {"scope": ..., "scope_id": ...} objects as well as pairs.
        if isinstance(value, list):
            return [
                (item["scope"], item["scope_id"]) if isinstance(item, dict) else item for item in value
            ]
        return value


class ScoredMemory(BaseModel):
    record: MemoryRecord
    similarity: float
    """Cosine similarity between the query and the memory, -1..1."""
    recency: float = 0.0
    """``0.5 ** (age_days / half_life_days)``, 0..1."""
    score: float
    """The ranking score; see ``activities.memory.ranking``."""


class ExtractedMemory(BaseModel):
    """One fact the model found worth keeping after a turn (extraction's structured output)."""

    text: str = Field(min_length=1, description="One self-contained statement, understandable without the conversation.")
    kind: MemoryKind = Field(default=MemoryKind.SEMANTIC, description="semantic: a fact or preference; episodic: something that happened; reflective: a decision or lesson.")
    importance: float = Field(default=0.5, ge=0.0, le=1.0, description="0 = trivia, 1 = essential.")


class MemoryExtraction(BaseModel):
    """What extraction asks the model for: pass ``MemoryExtraction.model_json_schema()`` as Ollama's
    ``format`` and validate the reply with ``MemoryExtraction.model_validate_json``."""

    memories: list[ExtractedMemory] = Field(default_factory=list, max_length=20)


class RecallWeights(BaseModel):
    """Weights of the recall score ``w_sim·similarity + w_rec·recency + w_imp·importance``."""

    similarity: float = Field(default=0.6, ge=0.0)
    recency: float = Field(default=0.2, ge=0.0)
    importance: float = Field(default=0.2, ge=0.0)
    half_life_days: float = Field(default=30.0, gt=0.0)
    """A memory unused this long has half the recency of one used just now."""


# --- what the workflow asks of the memory activities (ids and sequence numbers, never bodies) ---


class RecallRequest(BaseModel):
    """Recall for one turn: the activity reads the user's message ``seq`` from the store itself."""

    conversation_id: str
    seq: int
    agent: str
    user_id: str | None = None


class RecallResult(BaseModel):
    memory_ids: list[str] = Field(default_factory=list)
    """Best first; ``llm.chat`` loads their texts into the system prompt."""
    error: str | None = None
    """Why nothing could be recalled (e.g. the embedding model is missing); the turn goes on."""


class StoreTurnMemories(BaseModel):
    """Extraction after a turn: messages ``from_seq..upto_seq`` are read from the store."""

    conversation_id: str
    turn: int
    from_seq: int
    upto_seq: int
    agent: str
    user_id: str | None = None
    model: str | None = None
    """The chat model that extracts (the template's); ``None`` means ``DAEMONFLOW_MODEL``."""
    turn_starts: list[int] = Field(default_factory=list)
    """The first seq of each turn of a batch (several turns read at once, ``UnextractedTurns``);
    empty: one turn, ``turn``. The activity reads turns together while they fit one model call."""


class UnextractedTurns(BaseModel):
    """Turns answered but not yet read for memories: the conversation extracts them in the
    background a moment after a turn, every few turns, and before its run ends."""

    first_turn: int
    last_turn: int
    turn_starts: list[int]
    """The first seq of each turn, in order."""
    upto_seq: int
    """The last message of the last turn."""

    def add(self, turn: int, first_seq: int, upto_seq: int) -> UnextractedTurns:
        return UnextractedTurns(first_turn=self.first_turn, last_turn=turn, turn_starts=[*self.turn_starts, first_seq],
                                upto_seq=upto_seq)

    @property
    def turns(self) -> int:
        return len(self.turn_starts)

    def request(self, conversation_id: str, agent: str, user_id: str | None, model: str | None) -> StoreTurnMemories:
        return StoreTurnMemories(
            conversation_id=conversation_id, turn=self.last_turn, from_seq=self.turn_starts[0], upto_seq=self.upto_seq,
            agent=agent, user_id=user_id, model=model, turn_starts=self.turn_starts if self.turns > 1 else [],
        )


class StoredMemories(BaseModel):
    added: int = 0
    updated: int = 0
    skipped: str | None = None
    """Why extraction did not run or stored nothing it found (off in settings, unusable answer…)."""


class MemoryToolCall(BaseModel):
    """A ``memory_store`` / ``memory_recall`` call from the model, run on the worker."""

    conversation_id: str
    turn: int
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    agent: str
    user_id: str | None = None


def home_scope(agent: str, user_id: str | None) -> ScopeRef:
    """Where a conversation's new memories go: its user's scope, or its agent's when no user is
    named (a single-user install, where "the user" is whoever talks to the agent)."""
    return (MemoryScope.USER, user_id) if user_id else (MemoryScope.AGENT, agent)


class MemoryAdminRequest(BaseModel):
    """An operator's ``daemonflow memory list|search|forget``, run where the memory store is."""

    action: Literal["list", "search", "forget"]
    scope: MemoryScope | None = None
    scope_id: str | None = None
    kind: MemoryKind | None = None
    query: str | None = None
    """``search``: the text to match."""
    ids: list[str] = Field(default_factory=list)
    """``forget``: these memories; with none given, every memory matching the filters."""
    limit: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _complete(self) -> MemoryAdminRequest:
        if self.action == "search" and not (self.query or "").strip():
            raise ValueError("search needs a query text")
        if self.action == "forget" and not self.ids and self.scope is None:
            raise ValueError("forget needs memory ids, or a scope whose memories all go")
        if self.scope_id and self.scope is None:
            raise ValueError("a scope id needs its scope (agent, user or conversation)")
        return self


class MemoryAdminResult(BaseModel):
    memories: list[ScoredMemory] = Field(default_factory=list)
    """``list``: score and similarity are 0; ``search``: ranked."""
    total: int = 0
    """``list``: how many match the filters (the listing may be cut at ``limit``)."""
    forgotten: int = 0
