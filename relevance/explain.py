"""The one-line explanation every decision carries, e.g.

``intervene 0.71: expertise 0.92, gap 0.80; cooldown 0.40 held it back``

It names the decision and score, then (up to two of each) the factors that carried the score —
raw value at least 0.5; expertise and gap first, then by contribution — and the ones that held it
back — raw value
below 0.5, largest loss ``gate × weight × (1 − raw)`` first; then the gate if it was below 1, a
reply bonus, and keyword mode. Factors of weight 0 are never named. Ties go in :class:`Factor`
order, so the same score always reads the same.
"""

from __future__ import annotations

from models.relevance import Factor
from models.relevance_scoring import Decision, FactorScore
from relevance.gate import Gate

NAMED = 2
"""Factors named on each side."""

ABOUT_THE_POST = (Factor.EXPERTISE_MATCH, Factor.CONVERSATION_GAP)
"""Named first among the factors that carried a score: they are what makes this post this agent's
business; workload, cooldown and timing are much the same for every post."""

_ORDER = {factor: index for index, factor in enumerate(Factor)}


def _named(scores: list[FactorScore]) -> str:
    return ", ".join(f"{s.factor.label} {s.raw:.2f}" for s in scores[:NAMED])


def explain(
    decision: Decision,
    score: float,
    factors: list[FactorScore],
    gate: Gate,
    *,
    high_priority: bool = False,
    forced: str | None = None,
    boost: float = 0.0,
    degraded: bool = False,
) -> str:
    head = f"{decision.value}{' (high priority)' if high_priority else ''} {score:.2f}{f' ({forced})' if forced else ''}"
    weighed = [f for f in factors if f.weight > 0]
    carried = sorted((f for f in weighed if f.raw >= 0.5),
                     key=lambda f: (f.factor not in ABOUT_THE_POST, -f.contribution, _ORDER[f.factor]))
    held = sorted(
        (f for f in weighed if f.raw < 0.5 and f.factor not in gate.limited_by),
        key=lambda f: (-(gate.value * f.weight * (1.0 - f.raw)), _ORDER[f.factor]),
    )
    gated = ""
    if gate.value < 1.0:
        by = " and ".join(f"{f.factor.label} {f.raw:.2f}" for f in factors if f.factor in gate.limited_by)
        gated = f"gated ×{gate.value:.2f} by {by}"
    held_back = f"{_named(held)} held it back" if held else ""
    if decision in (Decision.INTERVENE, Decision.REFLECT):
        parts = [_named(carried), gated, held_back]
    elif decision == Decision.OBSERVE:
        parts = [gated, held_back, f"{_named(carried)} kept it up" if carried else ""]
    else:
        parts = [gated, held_back]
    if boost:
        parts.append(f"+{boost:.2f} as the post replies to it")
    if degraded:
        parts.append("keyword match (embeddings unavailable)")
    body = "; ".join(part for part in parts if part)
    return f"{head}: {body}" if body else head


def explain_own_message() -> str:
    return f"{Decision.IGNORE.value}: its own message (an agent never answers itself)"
