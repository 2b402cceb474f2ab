"""The memory store interface, its errors, and the factory that picks a backend from settings.

Three stores behave identically (the same tests run against each):

- ``qdrant`` without ``DAEMONFLOW_QDRANT_URL`` — the default —
  (:mod:`activities.memory.edge_backend`): Qdrant Edge, the Qdrant engine embedded in the
  process, one shard per collection in ``<var_dir>/qdrant-edge``, exact filtered search over
  payload indexes. **Single-process**: the process that opens it (the worker, or the CLI when no
  worker runs) holds a lock until :meth:`MemoryStore.close`; another one gets
  :class:`StoreLocked`. The store opens lazily, on the first call that needs it. At its first
  open it copies, once, the collection of an older version's ``<var_dir>/qdrant``
  (:mod:`activities.memory.edge_migration`). Several processes → a Qdrant server or pgvector.
- ``qdrant`` with ``DAEMONFLOW_QDRANT_URL`` (:mod:`activities.memory.qdrant_backend`): a Qdrant
  server through qdrant-client.
- ``pgvector`` (:mod:`activities.memory.pgvector_backend`): a table in the PostgreSQL database of
  ``DAEMONFLOW_DATABASE_URL`` (the pgvector extension must be installable there).

A collection (Qdrant) or table (PostgreSQL), named by ``DAEMONFLOW_MEMORY_COLLECTION``
(``memories``), holds vectors of one dimension, fixed by the first :meth:`MemoryStore.ensure`;
the embedding model that created it is recorded, so a later model of another size gets a
:class:`DimensionMismatch` naming both sizes and both models. Similarity is cosine.

All methods are async; the synchronous clients run in worker threads so an activity worker's
event loop (and its heartbeats) never blocks on the database.
"""

from __future__ import annotations

import abc
import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import make_url

from config.settings import Settings
from models.memory import MemoryKind, MemoryQuery, MemoryRecord, MemoryScope

BACKENDS = ("qdrant", "pgvector")
LEGACY_LOCAL_DIR = "qdrant"
"""Under ``var_dir``: qdrant-client local mode, the embedded store of earlier versions (copied once)."""
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MemoryStoreError(RuntimeError):
    """A memory store cannot be used as configured."""


class StoreLocked(MemoryStoreError):
    """The embedded store is open in another process (the worker): go through that process."""


class DimensionMismatch(MemoryStoreError):
    """Vectors of one size were offered to a collection made for another."""

    def __init__(
        self,
        *,
        collection: str,
        backend: str,
        existing_dimension: int,
        dimension: int,
        existing_model: str | None = None,
        model: str | None = None,
    ) -> None:
        self.collection = collection
        self.backend = backend
        self.existing_dimension = existing_dimension
        self.dimension = dimension
        self.existing_model = existing_model
        self.model = model
        made_by = f" made by embedding model {existing_model!r}" if existing_model else ""
        offered = f"embedding model {model!r} gives" if model else "the vectors offered are"
        fix = (
            f"set DAEMONFLOW_EMBED_MODEL back to {existing_model!r}, or "
            if existing_model and existing_model != model
            else ""
        )
        super().__init__(
            f"memory collection {collection!r} ({backend}) holds {existing_dimension}-dimensional vectors"
            f"{made_by}, but {offered} {dimension}-dimensional ones: {fix}set "
            "DAEMONFLOW_MEMORY_COLLECTION to a new collection name (memories are not converted "
            "between embedding models)"
        )

    def __reduce__(self) -> tuple:
        """Whole across processes (a worker's helpers reach the embedded store through its first)."""
        return (_mismatch, (vars(self).copy(),))


def _mismatch(fields: dict) -> DimensionMismatch:
    return DimensionMismatch(**fields)


def check_collection_name(name: str) -> str:
    if not _NAME.match(name):
        raise MemoryStoreError(
            f"invalid memory collection name {name!r}: use lower-case letters, digits and '_' "
            "(at most 63 characters, not starting with a digit)"
        )
    return name


class MemoryStore(abc.ABC):
    """Where memories and their vectors live. Records never carry vectors; vectors go beside them.

    Every read honours expiry where it matters for recall: :meth:`search` never returns an
    expired memory. :meth:`get`, :meth:`list` and :meth:`count` show everything still stored
    (``include_expired`` where offered), so operators can see and forget expired rows.
    """

    backend: str
    collection: str

    @abc.abstractmethod
    async def ensure(self, dimension: int, model: str | None = None) -> None:
        """Create the collection for ``dimension`` if missing; raise :class:`DimensionMismatch`
        if it exists with another dimension. ``model`` names the embedding model (for messages)."""

    @property
    @abc.abstractmethod
    def dimension(self) -> int | None:
        """The collection's dimension once known (after :meth:`ensure` or a read that found it)."""

    def _check_vector(self, vector: Sequence[float]) -> None:
        """Refuse a vector of another size than the collection's before any I/O."""
        if self.dimension is not None and len(vector) != self.dimension:
            raise DimensionMismatch(
                collection=self.collection, backend=self.backend,
                existing_dimension=self.dimension, dimension=len(vector),
            )

    @abc.abstractmethod
    async def add(self, records: Sequence[MemoryRecord], vectors: Sequence[Sequence[float]]) -> None:
        """Insert (or overwrite, by id) records with their vectors; ensures the collection."""

    @abc.abstractmethod
    async def update(
        self,
        record_id: str,
        *,
        text: str | None = None,
        vector: Sequence[float] | None = None,
        importance: float | None = None,
        last_used_at: datetime | None = None,
    ) -> MemoryRecord | None:
        """Change some fields of one memory; returns it as stored now, ``None`` if it is gone."""

    @abc.abstractmethod
    async def touch(self, record_ids: Sequence[str], at: datetime) -> None:
        """Set ``last_used_at`` of several memories at once (after a recall)."""

    @abc.abstractmethod
    async def search(
        self, query_vector: Sequence[float], query: MemoryQuery, limit: int
    ) -> list[tuple[MemoryRecord, float]]:
        """Up to ``limit`` unexpired memories nearest to ``query_vector`` (cosine similarity,
        best first), restricted to ``query.scopes`` (``None``: all scopes; empty: nothing) and
        ``query.kinds``, with similarity ≥ ``query.min_similarity``."""

    @abc.abstractmethod
    async def vectors(self, record_ids: Sequence[str]) -> dict[str, list[float]]:
        """The stored vectors of these memories (missing ids are left out)."""

    async def search_with_vectors(
        self, query_vector: Sequence[float], query: MemoryQuery, limit: int
    ) -> tuple[list[tuple[MemoryRecord, float]], dict[str, list[float]] | None]:
        """:meth:`search`, and the candidates' vectors for recall's de-duplication (``None`` when
        there is at most one candidate: nothing to compare). Two calls here; a store that can
        answer both at once overrides it (``one_trip_search.py``: Qdrant Edge and pgvector)."""
        candidates = await self.search(query_vector, query, limit)
        vectors = await self.vectors([r.id for r, _ in candidates]) if len(candidates) > 1 else None
        return candidates, vectors

    @abc.abstractmethod
    async def get_many(self, record_ids: Sequence[str]) -> list[MemoryRecord]:
        """These memories, in the order asked, skipping ids that are gone."""

    async def get(self, record_id: str) -> MemoryRecord | None:
        found = await self.get_many([record_id])
        return found[0] if found else None

    @abc.abstractmethod
    async def list(
        self,
        scope: MemoryScope | None = None,
        scope_id: str | None = None,
        kind: MemoryKind | None = None,
        limit: int = 50,
        offset: int = 0,
        include_expired: bool = True,
    ) -> list[MemoryRecord]:
        """Memories, newest first, optionally filtered."""

    @abc.abstractmethod
    async def delete(self, record_ids: Sequence[str]) -> int:
        """Remove these memories; returns how many existed."""

    @abc.abstractmethod
    async def count(
        self,
        scope: MemoryScope | None = None,
        scope_id: str | None = None,
        kind: MemoryKind | None = None,
    ) -> int:
        """How many memories are stored (expired ones included), optionally filtered."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections (and the embedded store's lock). The store may be reopened
        by using it again."""

    async def __aenter__(self) -> MemoryStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def open_memory_store(settings: Settings) -> MemoryStore:
    """The store ``settings`` ask for. Nothing is opened until first use."""
    backend = settings.memory_backend.strip().lower()
    collection = check_collection_name(settings.memory_collection)
    if backend == "qdrant" and settings.qdrant_url:
        from activities.memory.qdrant_backend import QdrantMemoryStore

        return QdrantMemoryStore(url=settings.qdrant_url, api_key=settings.qdrant_api_key or None, collection=collection)
    if backend == "qdrant":
        from activities.memory.edge_backend import EdgeMemoryStore

        return EdgeMemoryStore(
            settings.embedded_memory_dir, collection=collection, legacy_path=settings.var_dir / LEGACY_LOCAL_DIR
        )
    if backend == "pgvector":
        from activities.memory.pgvector_backend import PgvectorMemoryStore

        url = settings.effective_database_url
        try:
            dialect = make_url(url).get_backend_name()
        except Exception as error:  # noqa: BLE001 - any parse failure is a configuration error
            raise MemoryStoreError(f"DAEMONFLOW_DATABASE_URL is not a database URL: {error}") from None
        if dialect not in ("postgresql", "postgres"):
            raise MemoryStoreError(
                "DAEMONFLOW_MEMORY_BACKEND=pgvector needs DAEMONFLOW_DATABASE_URL to point at PostgreSQL "
                f"(postgresql+psycopg://user:password@host/db), not {dialect} ({_redact(url)})"
            )
        return PgvectorMemoryStore(url, collection=collection)
    raise MemoryStoreError(
        f"unknown DAEMONFLOW_MEMORY_BACKEND {settings.memory_backend!r}; use one of: {', '.join(BACKENDS)}"
    )


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<unparseable>"


def batch_dimension(records: Sequence[MemoryRecord], vectors: Sequence[Sequence[float]]) -> int | None:
    """The one vector size of a batch to add (``None`` for an empty batch); mismatches are errors."""
    if len(records) != len(vectors):
        raise ValueError(f"{len(records)} records but {len(vectors)} vectors")
    if not records:
        return None
    dims = {len(v) for v in vectors}
    if len(dims) != 1:
        raise ValueError(f"vectors of several sizes: {sorted(dims)}")
    return dims.pop()


def valid_ids(record_ids: Sequence[str]) -> list[str]:
    """The ids that can exist (uuids), normalised; anything else can only be missing."""
    valid = []
    for record_id in record_ids:
        try:
            valid.append(str(uuid.UUID(str(record_id))))
        except ValueError:
            continue
    return valid


def record_changes(text: str | None, importance: float | None, last_used_at: datetime | None) -> dict[str, Any]:
    """The record fields an :meth:`MemoryStore.update` sets (``None`` leaves a field as it is)."""
    changes: dict[str, Any] = {"text": text, "importance": importance, "last_used_at": last_used_at}
    return {name: value for name, value in changes.items() if value is not None}
