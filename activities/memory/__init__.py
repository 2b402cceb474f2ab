"""Long-term memory: embeddings (Ollama or an OpenAI-compatible server), a vector store (Qdrant
or pgvector), ranked recall.

:class:`MemoryService` is what the rest of Daemonflow calls (the Temporal activities, the memory
tools, the CLI wrap it); it combines

- :class:`~activities.memory.embeddings.Embedder` — texts → vectors from the embedding server,
- a :class:`~activities.memory.store.MemoryStore` — from :func:`~activities.memory.store.open_memory_store`,
- :mod:`~activities.memory.ranking` — the documented recall score, de-duplication, near-duplicates.

Storing (:meth:`MemoryService.remember`): the text is embedded, the closest unexpired memory *in
the same scope and scope id* is looked up, and when its similarity is at least the near-duplicate
threshold (0.92) that memory is updated — new text and vector, importance raised to the larger of
the two, ``last_used_at`` now — instead of a new row being added. Two concurrent stores of the same
fact may both add a row (there is no lock across the check and the write); recall's
de-duplication hides such pairs.

Recalling (:meth:`MemoryService.recall`): the query is embedded, ``3·k`` candidates are fetched from
the caller's visible scopes (unexpired, optionally of some kinds), ranked and de-duplicated, the
best ``k`` returned and their ``last_used_at`` set to now.

Everything here is async and has side effects only through the store and the embedding server;
nothing is a Temporal activity yet.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from activities.memory.embeddings import Embedder, EmbeddingError, EmbeddingModelNotFound, EmbeddingUnavailable
from activities.memory.ranking import DEDUP_SIMILARITY, NEAR_DUPLICATE_SIMILARITY, is_near_duplicate, rank
from activities.memory.store import (
    DimensionMismatch,
    MemoryStore,
    MemoryStoreError,
    open_memory_store,
)
from config.settings import Settings
from models.memory import (
    MemoryKind,
    MemoryQuery,
    MemoryRecord,
    MemoryScope,
    NewMemory,
    RecallWeights,
    ScopeRef,
    ScoredMemory,
    utcnow,
)

__all__ = [
    "DimensionMismatch",
    "Embedder",
    "EmbeddingError",
    "EmbeddingModelNotFound",
    "EmbeddingUnavailable",
    "MemoryService",
    "MemoryStore",
    "MemoryStoreError",
    "open_memory_store",
    "recall_weights",
]

CANDIDATE_FACTOR = 3
"""Recall fetches this many times ``k`` candidates before ranking and de-duplication."""
TOUCH_EVERY = timedelta(hours=1)
"""A recalled memory's ``last_used_at`` is written at most this often: recency halves in 30 days,
so an hour moves a score by 0.1 %, and a busy conversation no longer writes five points a turn."""


def recall_weights(settings: Settings) -> RecallWeights:
    return RecallWeights(
        similarity=settings.memory_weight_similarity,
        recency=settings.memory_weight_recency,
        importance=settings.memory_weight_importance,
        half_life_days=settings.memory_half_life_days,
    )


class MemoryService:
    """Remember, recall, list, search and forget memories."""

    def __init__(
        self,
        store: MemoryStore,
        embedder: Embedder,
        *,
        weights: RecallWeights | None = None,
        duplicate_threshold: float = NEAR_DUPLICATE_SIMILARITY,
        dedup_similarity: float = DEDUP_SIMILARITY,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.weights = weights or RecallWeights()
        self.duplicate_threshold = duplicate_threshold
        self.dedup_similarity = dedup_similarity
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, store: MemoryStore | None = None) -> MemoryService:
        """The service the settings describe; opens nothing until first use. ``store``: another
        process's embedded store, shared (``shared_store.py``), instead of the one they name."""
        return cls(
            store or open_memory_store(settings),
            Embedder.from_settings(settings),
            weights=recall_weights(settings),
            duplicate_threshold=settings.memory_duplicate_threshold,
        )

    async def close(self) -> None:
        await self.store.close()
        await self.embedder.close()

    async def __aenter__(self) -> MemoryService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _ensure(self, vector: Sequence[float]) -> None:
        await self.store.ensure(len(vector), self.embedder.model)

    # -- storing

    async def remember(
        self,
        text: str,
        scope: MemoryScope | str,
        scope_id: str,
        kind: MemoryKind | str = MemoryKind.SEMANTIC,
        importance: float = 0.5,
        *,
        agent: str | None = None,
        source_conversation: str | None = None,
        source_turn: int | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[MemoryRecord, bool]:
        """Store one memory; returns ``(record, created)``: ``created`` is ``False`` when a
        near-duplicate in the same scope was updated instead."""
        memory = NewMemory(
            text=text,
            scope=MemoryScope(scope),
            scope_id=scope_id,
            kind=MemoryKind(kind),
            importance=importance,
            agent=agent,
            source_conversation=source_conversation,
            source_turn=source_turn,
            expires_at=expires_at,
        )
        return (await self.remember_many([memory]))[0]

    async def remember_many(self, memories: Sequence[NewMemory]) -> builtins.list[tuple[MemoryRecord, bool]]:
        """Store several memories with one embedding call (per ``batch_size`` texts). Each is
        checked against what is stored, including the ones before it in ``memories``."""
        if not memories:
            return []
        vectors = await self.embedder.embed([m.text for m in memories])
        for memory, vector in zip(memories, vectors, strict=True):
            if _is_zero(vector):
                raise EmbeddingError(
                    f"embedding model {self.embedder.model!r} gave a zero vector for {memory.text[:80]!r}: "
                    "it could never be recalled",
                    model=self.embedder.model,
                )
        await self._ensure(vectors[0])
        results: builtins.list[tuple[MemoryRecord, bool]] = []
        for memory, vector in zip(memories, vectors, strict=True):
            now = self._clock()
            nearest = await self.store.search(
                vector, MemoryQuery(text=memory.text, k=1, scopes=[(memory.scope, memory.scope_id)]), limit=1
            )
            if nearest and is_near_duplicate(nearest[0][1], self.duplicate_threshold):
                existing = nearest[0][0]
                updated = await self.store.update(
                    existing.id,
                    text=memory.text,
                    vector=vector,
                    importance=max(existing.importance, memory.importance),
                    last_used_at=now,
                )
                if updated is not None:
                    results.append((updated, False))
                    continue
            record = MemoryRecord.new(memory, now)
            await self.store.add([record], [vector])
            results.append((record, True))
        return results

    # -- recalling

    async def recall(self, query: MemoryQuery, weights: RecallWeights | None = None) -> builtins.list[ScoredMemory]:
        """The best ``query.k`` memories the caller may see, ranked; marks them used."""
        if query.scopes is None:
            raise ValueError("recall needs the caller's visible scopes (use search() for operator searches)")
        return await self._ranked(query, weights, touch=True)

    async def search(
        self,
        text: str,
        *,
        scopes: Sequence[ScopeRef] | None = None,
        kinds: Sequence[MemoryKind] | None = None,
        k: int = 10,
        min_similarity: float = 0.0,
        weights: RecallWeights | None = None,
    ) -> builtins.list[ScoredMemory]:
        """Operator search (CLI, admin): like recall, but ``scopes=None`` searches every scope, and
        nothing is marked used."""
        query = MemoryQuery(
            text=text,
            k=k,
            scopes=builtins.list(scopes) if scopes is not None else None,
            kinds=builtins.list(kinds) if kinds else None,
            min_similarity=min_similarity,
        )
        return await self._ranked(query, weights, touch=False)

    async def _ranked(
        self, query: MemoryQuery, weights: RecallWeights | None, *, touch: bool
    ) -> builtins.list[ScoredMemory]:
        if query.scopes is not None and not query.scopes:
            return []
        vector = await self.embedder.embed_one(query.text)
        await self._ensure(vector)
        if _is_zero(vector):  # nothing to compare with (e.g. punctuation only)
            return []
        candidates, vectors = await self.store.search_with_vectors(vector, query, limit=query.k * CANDIDATE_FACTOR)
        if not candidates:
            return []
        now = self._clock()
        ranked = rank(
            candidates,
            k=query.k,
            weights=weights or self.weights,
            now=now,
            min_score=query.min_score,
            vectors=vectors,
            dedup_similarity=self.dedup_similarity,
        )
        stale = [s for s in ranked if touch and now - s.record.last_used_at >= TOUCH_EVERY]
        if stale:
            await self.store.touch([s.record.id for s in stale], now)
            for scored in stale:
                scored.record.last_used_at = now
        return ranked

    # -- operator views

    async def get(self, record_id: str) -> MemoryRecord | None:
        return await self.store.get(record_id)

    async def get_many(self, record_ids: Sequence[str]) -> builtins.list[MemoryRecord]:
        return await self.store.get_many(record_ids)

    async def list(
        self,
        scope: MemoryScope | None = None,
        scope_id: str | None = None,
        kind: MemoryKind | None = None,
        limit: int = 50,
        offset: int = 0,
        include_expired: bool = True,
    ) -> builtins.list[MemoryRecord]:
        return await self.store.list(scope, scope_id, kind, limit, offset, include_expired)

    async def count(
        self, scope: MemoryScope | None = None, scope_id: str | None = None, kind: MemoryKind | None = None
    ) -> int:
        return await self.store.count(scope, scope_id, kind)

    async def forget(self, record_ids: Sequence[str]) -> int:
        """Delete these memories for good; returns how many existed."""
        return await self.store.delete(record_ids)


def _is_zero(vector: Sequence[float]) -> bool:
    return not any(vector)
