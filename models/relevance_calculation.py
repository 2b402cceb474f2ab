"""Scoring a hypothetical message without posting it (``POST /relevance/calculate``).

``RelevanceCalculationWorkflow`` scores ``CalculationRequest.content`` for the agents named, the
way a channel would score it now — with the channel's state (``ScoringContext``: who spoke when,
what was said recently, its overrides) when one is given, else as in a fresh channel — and returns
the ``PostRelevance`` with every factor. Nothing is posted or recorded.
"""

from __future__ import annotations

from pydantic import Field

from models.conversation import Contract
from models.relevance import RelevanceConfig, RelevanceOverrides, Thresholds
from models.relevance_scoring import INLINE_TEXT_MAX, AgentProfile, AgentState, AuthorKind, RecentMessage


class ScoringContext(Contract):
    """What a channel knows that scoring needs (the ``scoring_context`` query)."""

    channel_id: str
    defaults: RelevanceConfig | None = None
    overrides: RelevanceOverrides | None = None
    agents: list[AgentState] = Field(default_factory=list)
    profiles: list[AgentProfile] = Field(default_factory=list)
    recent: list[RecentMessage] = Field(default_factory=list)
    """Recent messages (ids are their seqs in the channel's transcript)."""
    members: list[str] = Field(default_factory=list)


class CalculationRequest(Contract):
    content: str = Field(min_length=1, max_length=INLINE_TEXT_MAX)
    author: str = "someone"
    author_kind: AuthorKind = AuthorKind.PERSON
    agents: list[str] = Field(min_length=1, max_length=500)
    mentions: list[str] = Field(default_factory=list)
    reply_to: str | None = None
    channel: ScoringContext | None = None


class CurrentRelevance(Contract):
    """``config/relevance.yaml`` as the worker reads it now, and the thresholds set at run time."""

    defaults: RelevanceConfig
    thresholds: Thresholds | None = None
