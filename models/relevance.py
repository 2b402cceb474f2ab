"""The relevance engine's configuration: factor weights, thresholds and each factor's curve.

Defaults come from seed 003 ("Système de Pertinence Contextuelle") and live in
``config/relevance.yaml``; a channel may override any part of them with a
:data:`RelevanceOverrides` (every field optional, merged onto the defaults by
``relevance.overrides.apply_overrides``). Every check runs on the *merged* configuration, so a
channel override that breaks a rule (weights that no longer sum to 1, thresholds out of order) is
refused with the same message as a bad file.

The similarity curves (``min_similarity``/``full_similarity``, ``open_below``/``covered_at``) are
calibrated for the default embedding model ``all-minilm`` (all-MiniLM-L6-v2), measured with the
real model on the expertise entries of ``config/agents/*.yaml``: a message squarely in an agent's
field scores 0.52–0.70 against its closest entry (a failing FastAPI test vs ``pytest tests, test
failures`` 0.70; a sales-average question vs ``sales, revenue, monthly reports`` 0.67; "this is
rude" vs ``this is rude and disrespectful`` 0.60), a message outside it 0.0–0.15 (a pasta recipe:
0.07–0.15 for every agent); a question and its answer 0.46–0.77, a paraphrase 0.75, unrelated
messages below 0.1. Another embedding model has other ranges: measure it and override.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

WEIGHT_TOLERANCE = 1e-6
"""How far from 1 the weights may sum (rounding of decimal weights such as 0.1 in binary)."""


class RelevanceModel(BaseModel):
    """Base of the relevance contracts: an unknown field is an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Factor(StrEnum):
    """The six factors of seed 003, in the order explanations and breakdowns list them."""

    EXPERTISE_MATCH = "expertise_match"
    """The post against the agent's expertise (embedding similarity of its closest entry)."""
    CONVERSATION_GAP = "conversation_gap"
    """Whether recent messages already cover the post (1: nothing does)."""
    WORKLOAD_CAPACITY = "workload_capacity"
    """The agent's free capacity: 1 idle, 0 at ``max_concurrent_tasks``."""
    RECENT_PARTICIPATION = "recent_participation"
    """The cooldown since the agent last spoke: 0 just now, 1 after ``cooldown_minutes``."""
    TIMING_APPROPRIATENESS = "timing_appropriateness"
    """Whether now is a moment to speak: not mid-turn, not inside a thread between others."""
    RELATIONSHIP_TRUST = "relationship_trust"
    """Trust earned from feedback and private-message outcomes (fed later; weight 0 by default)."""

    @property
    def label(self) -> str:
        """The short name explanations use ("expertise 0.92, gap 0.80; cooldown 0.40 held it back")."""
        return _LABELS[self]


_LABELS = {
    Factor.EXPERTISE_MATCH: "expertise",
    Factor.CONVERSATION_GAP: "gap",
    Factor.WORKLOAD_CAPACITY: "workload",
    Factor.RECENT_PARTICIPATION: "cooldown",
    Factor.TIMING_APPROPRIATENESS: "timing",
    Factor.RELATIONSHIP_TRUST: "trust",
}


class Weights(RelevanceModel):
    """How much each factor counts; they must sum to 1 so that a score stays within [0, 1]."""

    expertise_match: float = Field(default=0.30, ge=0, le=1)
    conversation_gap: float = Field(default=0.25, ge=0, le=1)
    workload_capacity: float = Field(default=0.20, ge=0, le=1)
    recent_participation: float = Field(default=0.15, ge=0, le=1)
    timing_appropriateness: float = Field(default=0.10, ge=0, le=1)
    relationship_trust: float = Field(default=0.0, ge=0, le=1)

    def of(self, factor: Factor) -> float:
        return float(getattr(self, factor.value))

    @model_validator(mode="after")
    def _sum_to_one(self) -> Weights:
        total = math.fsum(self.of(f) for f in Factor)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            terms = " + ".join(f"{f.value} {self.of(f):g}" for f in Factor if self.of(f))
            raise ValueError(f"they sum to {total:.6g} ({terms}); weights must sum to 1")
        return self


class Thresholds(RelevanceModel):
    """Score boundaries: below ``observe`` ignore, from ``observe`` observe, from ``intervene``
    intervene, from ``high_priority`` intervene first. A boundary value belongs to the upper band."""

    observe: float = Field(default=0.2, ge=0, le=1)
    intervene: float = Field(default=0.5, ge=0, le=1)
    high_priority: float = Field(default=0.8, ge=0, le=1)
    reflect: float | None = Field(default=None, ge=0, le=1)
    """From this score (not below ``intervene``) an agent reflects instead of intervening: it
    reasons in a private deepthink conversation for a few steps, then posts the summary (issue 14).
    Null (the default): nobody reflects."""

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if not self.observe <= self.intervene <= self.high_priority:
            raise ValueError(
                f"observe <= intervene <= high_priority must hold, got observe {self.observe:g}, "
                f"intervene {self.intervene:g}, high_priority {self.high_priority:g}"
            )
        if self.reflect is not None and self.reflect < self.intervene:
            raise ValueError(f"reflect ({self.reflect:g}) must not be below intervene ({self.intervene:g}): an agent "
                             "reflects on what it would otherwise answer at once")
        return self


def _rising(low: float, high: float, what: str) -> None:
    if not low < high:
        raise ValueError(f"{what}: the lower bound {low:g} must be below the upper bound {high:g}")


class ExpertiseParams(RelevanceModel):
    """Similarity of the post to the agent's closest expertise entry → factor: 0 at or below
    ``min_similarity`` (seed: ``min_threshold``), 1 at or above ``full_similarity``, linear between."""

    min_similarity: float = Field(default=0.15, ge=-1, le=1)
    full_similarity: float = Field(default=0.55, ge=-1, le=1)

    @model_validator(mode="after")
    def _check(self) -> ExpertiseParams:
        _rising(self.min_similarity, self.full_similarity, "expertise_match")
        return self


class GapParams(RelevanceModel):
    """Coverage = the highest similarity between the post and a recent message by someone else
    (within ``max_age_minutes`` before it) → factor: 1 at or below ``open_below``, 0 at or above
    ``covered_at``, linear between. Seed: ``detection_method: semantic_similarity``."""

    open_below: float = Field(default=0.3, ge=-1, le=1)
    covered_at: float = Field(default=0.8, ge=-1, le=1)
    max_age_minutes: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> GapParams:
        _rising(self.open_below, self.covered_at, "conversation_gap")
        return self


class WorkloadParams(RelevanceModel):
    """Factor = 1 − active tasks / ``max_concurrent_tasks`` (0 at or beyond it)."""

    max_concurrent_tasks: int = Field(default=3, ge=1)


class CooldownParams(RelevanceModel):
    """Factor = minutes since the agent last spoke / ``cooldown_minutes``, capped at 1; 1 if never."""

    cooldown_minutes: float = Field(default=30.0, gt=0)


class TimingParams(RelevanceModel):
    """Factor = 1, or ``mid_turn`` while the agent is answering something else, or ``others_thread``
    when the post replies to another member (a person's thread is theirs, not the agents'); the
    lower applies. Seed: ``avoid_interruption: true``."""

    mid_turn: float = Field(default=0.0, ge=0, le=1)
    others_thread: float = Field(default=0.3, ge=0, le=1)


class TrustParams(RelevanceModel):
    """The factor for an agent whose trust is not known yet."""

    neutral: float = Field(default=0.5, ge=0, le=1)


class FactorParams(RelevanceModel):
    expertise_match: ExpertiseParams = Field(default_factory=ExpertiseParams)
    conversation_gap: GapParams = Field(default_factory=GapParams)
    workload_capacity: WorkloadParams = Field(default_factory=WorkloadParams)
    recent_participation: CooldownParams = Field(default_factory=CooldownParams)
    timing_appropriateness: TimingParams = Field(default_factory=TimingParams)
    relationship_trust: TrustParams = Field(default_factory=TrustParams)


class GateParams(RelevanceModel):
    """The relevance gate multiplies the weighted sum by min(1, expertise / ``expertise_open_at``) ×
    min(1, gap / ``gap_open_at``) (0 turns a side off). Without it an idle agent would score 0.45
    from workload, cooldown and timing alone and intervene on any post it has the faintest link
    to; with it, availability only counts for agents the post is about. Mentioned and addressed
    agents pass the gate whole."""

    expertise_open_at: float = Field(default=0.5, ge=0, le=1)
    gap_open_at: float = Field(default=0.5, ge=0, le=1)


class MentionParams(RelevanceModel):
    """Who can force an agent to intervene by mentioning it (``@analyst``). Agent-to-agent chains
    stay bounded by the channel's reply budget either way."""

    from_people: bool = True
    from_agents: bool = True


class RelevanceConfig(RelevanceModel):
    """Everything the pure scoring needs besides its inputs; see ``config/relevance.yaml``."""

    version: int = 1
    weights: Weights = Field(default_factory=Weights)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    factors: FactorParams = Field(default_factory=FactorParams)
    gate: GateParams = Field(default_factory=GateParams)
    addressed_boost: float = Field(default=0.25, ge=0, le=1)
    """Added to the score (capped at 1) of the agent a post replies to."""
    mentions: MentionParams = Field(default_factory=MentionParams)


def _optional(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every field optional (default ``None``), nested models likewise: the shape of
    a partial override. Constraints are checked on the merged result, not here."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = _optional(annotation)
        fields[name] = (annotation | None, Field(default=None, description=info.description))
    return create_model(
        f"{model.__name__}Override",
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"A partial {model.__name__}: only the fields given replace the defaults.",
        **fields,
    )


class RelevanceOverrides(_optional(RelevanceConfig)):  # type: ignore[misc]  # a model built from RelevanceConfig
    """A channel's partial ``RelevanceConfig``, e.g. ``{"thresholds": {"intervene": 0.6}}``: the
    fields given replace the defaults, ``null`` keeps them, unknown fields are refused. Usable as a
    field type (a channel's input) and in the API's schema."""
