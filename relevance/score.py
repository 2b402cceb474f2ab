"""The weighted score, the decision and the ranking of one post's agents.

    score = min(1, gate × Σ weightᵢ · factorᵢ + boost)        rounded to 4 places

``factorᵢ`` are the six raw values of ``relevance.factors`` (each in [0, 1]), the weights sum to 1,
``gate`` is ``relevance.gate`` and ``boost`` is ``addressed_boost`` (0.25) for the agent the post
replies to. Decision by threshold on the rounded score: below ``observe`` (0.2) ignore, below
``intervene`` (0.5) observe, else intervene, high priority from ``high_priority`` (0.8). A mention
by someone allowed to force one makes the decision intervene whatever the score (the score is
kept and shown). An agent's own post is ``ignore`` for it, before anything else: an agent never
answers itself, whatever the post says.

Sums use ``math.fsum`` (exactly rounded, so independent of the order of the terms) and nothing
iterates over a set or a hash-ordered mapping: the same inputs give the same floats, bit for bit,
in any process and on every replay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from models.relevance import Factor, RelevanceConfig, Thresholds
from models.relevance_scoring import (
    AgentState,
    AuthorKind,
    Decision,
    FactorScore,
    PostContext,
    PostRelevance,
    RelevanceScore,
    Similarities,
    SimilarityMethod,
)
from relevance.curves import clamp, rounded
from relevance.explain import explain, explain_own_message
from relevance.factors import measure
from relevance.gate import relevance_gate

MENTIONED = "mentioned"
SPEAKS = (Decision.INTERVENE, Decision.REFLECT)
"""Decisions that answer the post: at once, or after a deepthink (``reflect``)."""


def decide(score: float, thresholds: Thresholds) -> Decision:
    if thresholds.reflect is not None and score >= thresholds.reflect:
        return Decision.REFLECT
    if score >= thresholds.intervene:
        return Decision.INTERVENE
    if score >= thresholds.observe:
        return Decision.OBSERVE
    return Decision.IGNORE


def _forced(config: RelevanceConfig, post: PostContext, agent: str) -> str | None:
    allowed = config.mentions.from_people if post.author_kind == AuthorKind.PERSON else config.mentions.from_agents
    mentioned = agent.casefold() in (name.casefold() for name in post.mentions)
    return MENTIONED if allowed and mentioned else None


def _own_message(agent: str, method: SimilarityMethod) -> RelevanceScore:
    return RelevanceScore(agent=agent, score=0.0, decision=Decision.IGNORE, gate=0.0, method=method,
                          explanation=explain_own_message())


def score_agent(config: RelevanceConfig, post: PostContext, state: AgentState, similarities: Similarities) -> RelevanceScore:
    """One agent's score, decision, breakdown and explanation for ``post``."""
    if state.agent == post.author:
        return _own_message(state.agent, similarities.method)
    readings = measure(config, post, state, similarities)
    forced = _forced(config, post, state.agent)
    addressed = post.reply_to == state.agent
    gate = relevance_gate(readings, config.gate, open_fully=bool(forced) or addressed)
    terms = {factor: gate.value * config.weights.of(factor) * reading.raw for factor, reading in readings.items()}
    factors = [
        FactorScore(factor=factor, raw=reading.raw, weight=config.weights.of(factor),
                    contribution=rounded(terms[factor]), note=reading.note)
        for factor, reading in readings.items()
    ]
    boost = config.addressed_boost if addressed else 0.0
    score = rounded(clamp(math.fsum(terms[factor] for factor in Factor) + boost))
    decision = Decision.INTERVENE if forced else decide(score, config.thresholds)
    high_priority = decision in SPEAKS and score >= config.thresholds.high_priority
    degraded = similarities.method == SimilarityMethod.KEYWORDS
    return RelevanceScore(
        agent=state.agent,
        score=score,
        decision=decision,
        high_priority=high_priority,
        forced=forced,
        gate=gate.value,
        boost=boost,
        method=similarities.method,
        explanation=explain(decision, score, factors, gate, high_priority=high_priority, forced=forced,
                            boost=boost, degraded=degraded),
        factors=factors,
    )


def rank(scores: Sequence[RelevanceScore]) -> list[RelevanceScore]:
    """Forced (mentioned) agents first, then by score, highest first; ties by agent name."""
    return sorted(scores, key=lambda s: (s.forced is None, -s.score, s.agent))


def score_post(
    config: RelevanceConfig, post: PostContext, agents: Sequence[AgentState], similarities: Similarities
) -> PostRelevance:
    """Every agent's score for ``post``, ranked; ``speakers`` answer in that order."""
    names = [state.agent for state in agents]
    if len(set(names)) != len(names):
        raise ValueError(f"each agent may be scored once per post, got {names}")
    ranked = rank([score_agent(config, post, state, similarities) for state in agents])
    return PostRelevance(
        channel_id=post.channel_id,
        message_id=post.message_id,
        scores=ranked,
        speakers=[s.agent for s in ranked if s.decision in SPEAKS],
        observers=[s.agent for s in ranked if s.decision == Decision.OBSERVE],
    )
