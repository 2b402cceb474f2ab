"""What the relevance engine scores and what it answers.

Inputs of the pure scoring (``relevance.score_post``): the post (:class:`PostContext`), each agent's
situation (:class:`AgentState`) and the similarities the ``relevance.similarities`` activity
measured (:class:`Similarities`). Outputs: one :class:`RelevanceScore` per agent, ranked, in a
:class:`PostRelevance`.

Everything here travels through workflow history, so it holds ids, times, flags and a few rounded
floats: never a message body. The activity's request (:class:`SimilarityRequest`) names message
bodies by reference to the store (``conversation_id`` + ``seq``) or, for short texts, inline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from models.relevance import Factor, RelevanceModel

def _utc(value: datetime) -> datetime:
    """Naive times are taken to be UTC, aware ones converted: times always compare."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

INLINE_TEXT_MAX = 4000
"""Longest text a request may carry inline; longer ones go by reference to the store."""


class Decision(StrEnum):
    IGNORE = "ignore"
    OBSERVE = "observe"
    """The post goes to the agent's memory; no reply."""
    INTERVENE = "intervene"
    REFLECT = "reflect"
    """Answer after thinking it over in a private deepthink conversation (``thresholds.reflect``;
    the channel runs it, ``workflows/deepthink.py``)."""


class AuthorKind(StrEnum):
    PERSON = "person"
    AGENT = "agent"


class SimilarityMethod(StrEnum):
    EMBEDDING = "embedding"
    KEYWORDS = "keywords"
    """Degraded mode: word overlap, when embeddings are unavailable (flagged in explanations)."""


class RecentMessage(RelevanceModel):
    """A message before the post, as the channel remembers it (no body)."""

    message_id: str
    author: str
    at: UtcDatetime


class PostContext(RelevanceModel):
    """The message being scored. ``at`` is the workflow's time of the post: it is the "now" of every
    time-based factor, so scoring never reads a clock."""

    channel_id: str
    message_id: str
    author: str
    author_kind: AuthorKind
    at: UtcDatetime
    mentions: list[str] = Field(default_factory=list)
    """Members mentioned (``relevance.find_mentions`` of the text, plus any given explicitly)."""
    reply_to: str | None = None
    """The member whose message this post answers, if it answers one."""
    recent: list[RecentMessage] = Field(default_factory=list)
    """Messages before the post whose similarity to it the activity measured."""


class AgentState(RelevanceModel):
    """One agent's situation in the channel when the post arrives."""

    agent: str
    active_tasks: int = Field(default=0, ge=0)
    """Work in progress: turns being answered, tool calls waiting, in this channel and others."""
    last_spoke_at: UtcDatetime | None = None
    mid_turn: bool = False
    """Answering something else right now."""
    trust: float | None = Field(default=None, ge=0, le=1)
    """Earned trust (feedback, private-message outcomes); ``None``: not known yet."""


class ExpertiseMatch(RelevanceModel):
    similarity: float = Field(ge=-1, le=1)
    matched: str = ""
    """The expertise entry closest to the post (cut to 80 characters), for explanations."""


class Similarities(RelevanceModel):
    """What ``relevance.similarities`` measured for one post: a few rounded floats per agent."""

    method: SimilarityMethod
    model: str | None = None
    """The embedding model; ``None`` in keyword mode."""
    degraded_reason: str | None = None
    """Why keyword mode was used (model missing, Ollama unreachable…)."""
    expertise: dict[str, ExpertiseMatch] = Field(default_factory=dict)
    """By agent. An agent missing here has no expertise to match (similarity 0)."""
    recent: dict[str, float] = Field(default_factory=dict)
    """By recent message id: its similarity to the post."""
    trust: dict[str, float] = Field(default_factory=dict)
    """By agent: its ``relationship_trust`` towards the post's author (``SimilarityRequest.trust_from``),
    from the private messages between them (``models.collaboration.trust_of``); an agent missing
    here has no record with that author."""


class FactorScore(RelevanceModel):
    """One line of the breakdown: ``contribution = gate × weight × raw`` (rounded)."""

    factor: Factor
    raw: float
    weight: float
    contribution: float
    note: str = ""


class RelevanceScore(RelevanceModel):
    agent: str
    score: float = Field(ge=0, le=1)
    decision: Decision
    high_priority: bool = False
    forced: str | None = None
    """Why the decision does not follow the score: ``mentioned``."""
    gate: float = 1.0
    boost: float = 0.0
    method: SimilarityMethod = SimilarityMethod.EMBEDDING
    explanation: str
    factors: list[FactorScore] = Field(default_factory=list)


class PostRelevance(RelevanceModel):
    """Every agent's score for one post, ranked: forced first, then by score, then by name."""

    channel_id: str
    message_id: str
    scores: list[RelevanceScore]
    speakers: list[str] = Field(default_factory=list)
    """Agents that intervene, in the order they answer."""
    observers: list[str] = Field(default_factory=list)


# -- the activity's request


class TextRef(RelevanceModel):
    """A text by reference to the store (``conversation_id`` + ``seq``, as messages are keyed) or,
    when short, inline."""

    conversation_id: str | None = None
    seq: int | None = Field(default=None, ge=1)
    text: str | None = Field(default=None, max_length=INLINE_TEXT_MAX)

    @model_validator(mode="after")
    def _one_source(self) -> TextRef:
        by_reference = self.conversation_id is not None and self.seq is not None
        if by_reference == (self.text is not None) or (self.conversation_id is None) != (self.seq is None):
            raise ValueError("give either conversation_id and seq (a stored message) or text, not both")
        return self


class AgentProfile(RelevanceModel):
    """Whose expertise to match. ``None`` fields come from the agent's template on the worker, so a
    request carries names, not lists, unless a channel overrides them."""

    agent: str
    expertise: list[str] | None = None
    description: str | None = None


class SimilarityRequest(RelevanceModel):
    post: TextRef
    recent: dict[str, TextRef] = Field(default_factory=dict, max_length=50)
    """By message id: the messages before the post to compare it with."""
    agents: list[AgentProfile] = Field(min_length=1, max_length=500)
    trust_from: str | None = None
    """The post's author: the activity adds each agent's trust towards it (``Similarities.trust``)."""
    fallback_after_attempts: int = Field(default=3, ge=1)
    """While Ollama is unreachable, the activity fails (and Temporal retries it) this many times,
    then answers in keyword mode: a post is never lost to an embedding outage."""
