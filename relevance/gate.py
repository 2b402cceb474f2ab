"""The relevance gate: availability only counts for agents a post is about.

Seed 003's weighted sum alone gives an idle agent 0.45 (workload 0.20 + cooldown 0.15 + timing
0.10) before anything about the post is considered, so with the seed's threshold 0.5 any agent
with the faintest link to a post would intervene, and two agents could keep answering each other
as long as they were free. The gate multiplies the weighted sum by how far the post is within the
agent's field (expertise) and still open (gap): ``min(1, expertise / expertise_open_at) ×
min(1, gap / gap_open_at)``. At the defaults an agent with expertise ≥ 0.5 on an open question
keeps its whole score; one with expertise 0.1 keeps a fifth of it and stays below the observe
threshold. A mentioned or addressed agent passes whole. ``*_open_at: 0`` turns a side off, which
gives back the seed's plain sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from models.relevance import Factor, GateParams
from relevance.curves import clamp, rounded
from relevance.factors import Reading


class Gate(NamedTuple):
    value: float
    limited_by: tuple[Factor, ...] = ()
    """The factors that kept it below 1; empty when open."""


def relevance_gate(readings: Mapping[Factor, Reading], params: GateParams, *, open_fully: bool) -> Gate:
    if open_fully:
        return Gate(1.0)
    value = 1.0
    limits: list[Factor] = []
    for factor, open_at in ((Factor.EXPERTISE_MATCH, params.expertise_open_at), (Factor.CONVERSATION_GAP, params.gap_open_at)):
        if open_at <= 0:
            continue
        side = clamp(readings[factor].raw / open_at)
        if side < 1.0:
            limits.append(factor)
        value *= side
    return Gate(rounded(value), tuple(limits))
