"""Recall's search and the candidates' vectors in one call to a store's thread.

Recall ranks ``3 × k`` candidates and drops near-duplicates by comparing their vectors. Asked
separately (``search``, then ``vectors``) that is two hand-offs to the store's thread and two
engine calls per turn; the Qdrant Edge and pgvector stores can return the vectors with the search
hits, so they take one. At 50 concurrent conversations the worker spent about a tenth of the time
it held the GIL in the embedded store, a fifth of that handing calls over (``bench/README.md``,
*Figures*)."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from activities.memory.store import MemoryStore
from models.memory import MemoryQuery, MemoryRecord

T = TypeVar("T")

Found = tuple[list[tuple[MemoryRecord, float]], dict[str, list[float]]]


class OneTripSearch(MemoryStore):
    """A store that runs blocking engine calls on a thread (``_run``) and whose nearest-neighbour
    query can return the points' vectors (``_search``)."""

    @abc.abstractmethod
    async def _run(self, fn: Callable[..., T], *args: Any) -> T: ...

    @abc.abstractmethod
    def _search(self, vector: list[float], query: MemoryQuery, limit: int, with_vectors: bool) -> Found:
        """On the store's thread: the hits (record, similarity), best first, and — when asked —
        ``{id: vector}`` of those hits."""

    async def search(self, query_vector: Sequence[float], query: MemoryQuery, limit: int) -> list[tuple[MemoryRecord, float]]:
        found, _ = await self._query(query_vector, query, limit, with_vectors=False)
        return found

    async def search_with_vectors(
        self, query_vector: Sequence[float], query: MemoryQuery, limit: int
    ) -> tuple[list[tuple[MemoryRecord, float]], dict[str, list[float]] | None]:
        found, vectors = await self._query(query_vector, query, limit, with_vectors=True)
        return found, vectors if len(found) > 1 else None

    async def _query(self, query_vector: Sequence[float], query: MemoryQuery, limit: int, *, with_vectors: bool) -> Found:
        if query.scopes is not None and not query.scopes:
            return [], {}
        self._check_vector(query_vector)
        return await self._run(self._search, list(map(float, query_vector)), query, limit, with_vectors)
