"""How recalled memories are ranked, de-duplicated and cut to k. Pure functions, no I/O.

The score of a candidate memory ``m`` for a query ``q`` at time ``now`` is::

    score = w_sim · similarity + w_rec · recency + w_imp · importance

    similarity = cosine(q, m), clamped to [0, 1]   (the store returns -1..1)
    recency    = 0.5 ** (age_days / half_life_days)
    age_days   = (now - m.last_used_at) in days, never negative
    importance = m.importance                         (0..1, set when it was stored)

with the weights of :class:`models.memory.RecallWeights` (defaults ``w_sim=0.6``, ``w_rec=0.2``,
``w_imp=0.2``, ``half_life_days=30``). With weights summing to 1 the score is in [0, 1]. Recency
counts from ``last_used_at``, which starts at creation and moves when the memory is stored again
(a near-duplicate) or recalled, so memories that keep being useful stay fresh.

Example (default weights): a memory with similarity 0.8, importance 0.5, last used 30 days ago
scores ``0.6·0.8 + 0.2·0.5 + 0.2·0.5 = 0.68``.

Ranking sorts by score (ties: higher similarity, then newer), drops candidates below
``min_score``, and de-duplicates: a candidate is dropped when a better-ranked kept one has the same
normalised text (case, whitespace and surrounding punctuation ignored) or, when vectors are given,
a cosine similarity ≥ ``DEDUP_SIMILARITY`` (0.95) to it. Then the first ``k`` are returned.

Storing uses :func:`is_near_duplicate`: a new memory whose best match in the same scope has
similarity ≥ ``NEAR_DUPLICATE_SIMILARITY`` (0.92) updates that memory instead of adding a row.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from models.memory import MemoryRecord, RecallWeights, ScoredMemory, utcnow

DEDUP_SIMILARITY = 0.95
"""Two recall results at least this similar are the same memory said twice: keep the better one."""
NEAR_DUPLICATE_SIMILARITY = 0.92
"""A new memory at least this similar to one in the same scope updates it instead of adding a row."""

SECONDS_PER_DAY = 86_400.0

_SPACE = re.compile(r"\s+")
_EDGE_PUNCTUATION = " \t\n.,;:!?\"'`()[]{}"


def recency(age_days: float, half_life_days: float) -> float:
    """``0.5 ** (age_days / half_life_days)``: 1 now, 0.5 after one half-life; never above 1."""
    if half_life_days <= 0:
        raise ValueError("half_life_days must be positive")
    return 0.5 ** (max(age_days, 0.0) / half_life_days)


def age_days(record: MemoryRecord, now: datetime) -> float:
    reference = record.last_used_at or record.created_at
    return max((now - reference).total_seconds(), 0.0) / SECONDS_PER_DAY


def score(similarity: float, recency_value: float, importance: float, weights: RecallWeights) -> float:
    """The documented score; ``similarity`` is clamped to [0, 1] first."""
    sim = min(max(similarity, 0.0), 1.0)
    return weights.similarity * sim + weights.recency * recency_value + weights.importance * importance


def normalise_text(text: str) -> str:
    """Case-folded, whitespace collapsed, surrounding punctuation stripped."""
    return _SPACE.sub(" ", text.casefold()).strip(_EDGE_PUNCTUATION)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def is_near_duplicate(similarity: float, threshold: float = NEAR_DUPLICATE_SIMILARITY) -> bool:
    """Whether a new memory this similar to an existing one should update it instead."""
    return similarity >= threshold


def rank(
    candidates: Sequence[tuple[MemoryRecord, float]],
    *,
    k: int,
    weights: RecallWeights | None = None,
    now: datetime | None = None,
    min_score: float = 0.0,
    vectors: Mapping[str, Sequence[float]] | None = None,
    dedup_similarity: float = DEDUP_SIMILARITY,
) -> list[ScoredMemory]:
    """Score ``(record, similarity)`` candidates, sort, drop low scores and duplicates, keep ``k``.

    ``vectors`` (record id → vector) enables the similarity-based de-duplication; without it only
    equal normalised texts count as duplicates.
    """
    weights = weights or RecallWeights()
    now = now or utcnow()
    scored = []
    for record, similarity in candidates:
        rec = recency(age_days(record, now), weights.half_life_days)
        scored.append(
            ScoredMemory(
                record=record,
                similarity=similarity,
                recency=rec,
                score=score(similarity, rec, record.importance, weights),
            )
        )
    scored.sort(key=lambda s: (-s.score, -s.similarity, -(s.record.last_used_at or s.record.created_at).timestamp()))

    units = _UnitVectors(vectors) if vectors is not None else None
    kept: list[ScoredMemory] = []
    seen_texts: set[str] = set()
    seen_ids: set[str] = set()
    for candidate in scored:
        if len(kept) >= k:
            break
        if candidate.score < min_score or candidate.record.id in seen_ids:
            continue
        text = normalise_text(candidate.record.text)
        if text in seen_texts:
            continue
        if units is not None and _too_close(candidate, kept, units, dedup_similarity):
            continue
        kept.append(candidate)
        seen_texts.add(text)
        seen_ids.add(candidate.record.id)
    return kept


class _UnitVectors:
    """Each candidate's vector scaled to length 1 (a zero vector stays zero), made when the
    de-duplication first looks at it: each cosine is then one dot product. Python sums over 384
    floats, three per pair, were 5 % of the worker's CPU at 50 concurrent conversations, and turning
    every candidate's list into an array up front 4 % more (py-spy, ``bench/README.md``); ranking
    stops after ``k`` kept, so most candidates are never looked at."""

    def __init__(self, vectors: Mapping[str, Sequence[float]]) -> None:
        self._vectors = vectors
        self._units: dict[str, np.ndarray | None] = {}

    def get(self, record_id: str) -> np.ndarray | None:
        if record_id not in self._units:
            raw = self._vectors.get(record_id)
            self._units[record_id] = None if raw is None else _unit(np.asarray(raw, dtype=np.float64))
        return self._units[record_id]


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else np.zeros_like(vector)


def _too_close(
    candidate: ScoredMemory,
    kept: Sequence[ScoredMemory],
    units: _UnitVectors,
    threshold: float,
) -> bool:
    vector = units.get(candidate.record.id)
    if vector is None:
        return False
    for other in kept:
        other_vector = units.get(other.record.id)
        if other_vector is not None and float(vector @ other_vector) >= threshold:
            return True
    return False
