"""The record of every relevance score and decision, what came of it, and what people thought.

Written by ``store.relevance.RelevanceStore`` (through the ``relevance.record`` and
``relevance.outcome`` activities) and read back as these models by whatever shows them (the
channel API, the admin page, analytics), so a person sees exactly what the engine decided and why.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from models.relevance import RelevanceModel
from models.relevance_scoring import Decision, FactorScore, PostRelevance, SimilarityMethod, UtcDatetime

HISTOGRAM_BUCKETS = 10
"""Score histograms count scores in [0, 0.1), [0.1, 0.2) … [0.9, 1.0]."""


class Outcome(StrEnum):
    """What came of a decision, filled in once the channel knows."""

    REPLIED = "replied"
    OBSERVED = "observed"
    """The post went to the agent's memory."""
    IGNORED = "ignored"
    FAILED = "failed"
    """The agent was to reply or observe and could not (model error, budget ended the chain…)."""


class Feedback(StrEnum):
    """A person's verdict on an intervention."""

    USEFUL = "useful"
    IGNORED = "ignored"
    """Nobody needed it."""
    CONFLICT = "conflict"
    """It clashed with another answer or started an argument."""
    INAPPROPRIATE = "inappropriate"


class FeedbackRecord(RelevanceModel):
    score_id: int
    person: str
    feedback: Feedback
    note: str | None = None
    at: datetime
    """When the person last gave (or changed) it."""


class ScoreRecord(RelevanceModel):
    id: int
    channel_id: str
    message_id: str
    agent: str
    score: float
    decision: Decision
    high_priority: bool
    forced: str | None
    gate: float
    boost: float
    method: SimilarityMethod
    explanation: str
    factors: list[FactorScore]
    outcome: Outcome | None = None
    outcome_at: datetime | None = None
    at: datetime
    feedback: list[FeedbackRecord] = Field(default_factory=list)


class ScorePage(RelevanceModel):
    items: list[ScoreRecord]
    next_before: int | None = None
    """Pass as ``before`` for the next (older) page; ``None`` on the last page."""


class AgentRelevanceStats(RelevanceModel):
    agent: str
    scored: int
    decisions: dict[Decision, int]
    forced: int
    intervention_rate: float
    """Share of its scores that were ``intervene`` (mentions included)."""
    mean_score: float
    histogram: list[int]
    """``HISTOGRAM_BUCKETS`` counts of its scores, lowest bucket first."""
    outcomes: dict[Outcome, int]
    feedback: dict[Feedback, int]


class RelevanceAnalytics(RelevanceModel):
    since: datetime
    until: datetime
    channel_id: str | None = None
    scored: int
    histogram: list[int]
    agents: list[AgentRelevanceStats]
    """By agent name."""


# -- activity inputs


class RecordOutcome(RelevanceModel):
    """Input of ``relevance.outcome``."""

    channel_id: str
    message_id: str
    agent: str
    outcome: Outcome
    at: UtcDatetime


class RecordRelevance(RelevanceModel):
    """Input of ``relevance.record``: one post's scores, written once however often it is retried."""

    post: PostRelevance
    at: UtcDatetime
    outcomes: list[RecordOutcome] = Field(default_factory=list, max_length=5000)
    """Outcomes to set once the scores are in (of this post or earlier ones): a channel writes the
    last message of a chain and what came of every decision of the chain in one call."""


class RecordOutcomes(RelevanceModel):
    """Input of ``relevance.outcomes``: what came of every decision of a post, written at once."""

    outcomes: list[RecordOutcome] = Field(max_length=5000)
