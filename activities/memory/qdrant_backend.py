"""The Qdrant server memory store (qdrant-client), with payload indexes on the filtered fields.

Used when ``DAEMONFLOW_QDRANT_URL`` is set; the points are those of :mod:`activities.memory.points`
and the collection's ``metadata`` records the embedding model and dimension it was created for.
The thread-safe synchronous client runs in worker threads.

The class also opens qdrant-client's *local mode* (``path=``), the embedded default of earlier
versions: it keeps every point in memory and filters in Python (0.6 s per recall at 10k memories,
3.3 s at 100k — ``bench/memory.py``), so :func:`~activities.memory.store.open_memory_store` no
longer offers it. It remains because the tests run the server code path against it (the same
client API, no server needed) and the benchmark compares it; the one-time copy of an old
``var/qdrant`` into the embedded engine is :mod:`activities.memory.edge_migration`. Local mode is
single-process and its calls run on one dedicated thread: the local client is neither thread-safe
nor usable from another thread than the one that opened it.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http.exceptions import UnexpectedResponse

from activities.memory.store import (
    DimensionMismatch,
    MemoryStore,
    MemoryStoreError,
    StoreLocked,
    batch_dimension,
    check_collection_name,
    record_changes,
    valid_ids,
)
from activities.memory.points import FLOAT_FIELDS, KEYWORD_FIELDS, point_payload, point_record, scope_key
from models.memory import MemoryKind, MemoryQuery, MemoryRecord, MemoryScope, utcnow

T = TypeVar("T")

UPSERT_BATCH = 512


class QdrantMemoryStore(MemoryStore):
    backend = "qdrant"

    def __init__(
        self,
        *,
        path: Path | str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = "memories",
    ) -> None:
        if (path is None) == (url is None):
            raise ValueError("give exactly one of path (qdrant-client local mode) or url (Qdrant server)")
        self.path = Path(path) if path is not None else None
        self.url = url
        self._api_key = api_key
        self.collection = check_collection_name(collection)
        self._client: QdrantClient | None = None
        self._dimension: int | None = None
        # Embedded mode: one thread owns the client. Server mode: the default executor.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-local") if self.local else None

    @property
    def local(self) -> bool:
        return self.path is not None

    @property
    def dimension(self) -> int | None:
        return self._dimension

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.local else f"url={self.url!r}"
        return f"QdrantMemoryStore({where}, collection={self.collection!r})"

    # -- plumbing

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def _open(self) -> QdrantClient:
        if self._client is None:
            if self.local:
                assert self.path is not None
                self.path.mkdir(parents=True, exist_ok=True)
                try:
                    self._client = QdrantClient(path=str(self.path))
                except RuntimeError as error:
                    if "already accessed" not in str(error):
                        raise
                    raise StoreLocked(
                        f"qdrant-client local mode at {self.path} is already open in another process; it is "
                        "single-process: stop that process, or use a Qdrant "
                        f"server (DAEMONFLOW_QDRANT_URL) or pgvector for shared access. Qdrant said: {error}"
                    ) from None
            else:
                self._client = QdrantClient(url=self.url, api_key=self._api_key, timeout=30)
        return self._client

    def _exists(self) -> bool:
        """Whether the collection exists; learns its dimension when it does."""
        if self._dimension is not None:
            return True
        client = self._open()
        if not client.collection_exists(self.collection):
            return False
        self._dimension, _ = self._collection_facts(client)
        return True

    def _collection_facts(self, client: QdrantClient) -> tuple[int, str | None]:
        info = client.get_collection(self.collection)
        vectors = info.config.params.vectors
        if not isinstance(vectors, qm.VectorParams):  # named vectors: not made by Daemonflow
            raise MemoryStoreError(
                f"Qdrant collection {self.collection!r} has named vectors and is not a Daemonflow memory "
                "collection; set DAEMONFLOW_MEMORY_COLLECTION to another name"
            )
        metadata = getattr(info.config, "metadata", None) or {}
        return vectors.size, metadata.get("embed_model")

    # -- MemoryStore

    async def ensure(self, dimension: int, model: str | None = None) -> None:
        if self._dimension == dimension:
            return
        await self._run(self._ensure, dimension, model)

    def _ensure(self, dimension: int, model: str | None) -> None:
        client = self._open()
        if not client.collection_exists(self.collection):
            vectors = qm.VectorParams(size=dimension, distance=qm.Distance.COSINE)
            try:
                try:
                    client.create_collection(
                        self.collection, vectors_config=vectors, metadata={"embed_model": model, "dimension": dimension}
                    )
                except UnexpectedResponse as error:
                    if error.status_code != 400 or client.collection_exists(self.collection):
                        raise
                    # A server older than collection metadata (Qdrant < 1.16): only the error
                    # message loses the model's name.
                    client.create_collection(self.collection, vectors_config=vectors)
            except Exception:
                if not client.collection_exists(self.collection):  # not a lost creation race
                    raise
            else:
                if not self.local:
                    self._create_payload_indexes(client)
        existing, existing_model = self._collection_facts(client)
        if existing != dimension:
            raise DimensionMismatch(
                collection=self.collection,
                backend=self.backend,
                existing_dimension=existing,
                dimension=dimension,
                existing_model=existing_model,
                model=model,
            )
        self._dimension = dimension

    def _create_payload_indexes(self, client: QdrantClient) -> None:
        for field in KEYWORD_FIELDS:
            client.create_payload_index(self.collection, field, qm.PayloadSchemaType.KEYWORD)
        for field in FLOAT_FIELDS:
            client.create_payload_index(self.collection, field, qm.PayloadSchemaType.FLOAT)

    async def add(self, records: Sequence[MemoryRecord], vectors: Sequence[Sequence[float]]) -> None:
        dimension = batch_dimension(records, vectors)
        if dimension is None:
            return
        await self.ensure(dimension)
        await self._run(self._add, list(records), [list(map(float, v)) for v in vectors])

    def _add(self, records: list[MemoryRecord], vectors: list[list[float]]) -> None:
        client = self._open()
        for start in range(0, len(records), UPSERT_BATCH):
            points = [
                qm.PointStruct(id=record.id, vector=vector, payload=point_payload(record))
                for record, vector in zip(
                    records[start : start + UPSERT_BATCH], vectors[start : start + UPSERT_BATCH], strict=True
                )
            ]
            client.upsert(self.collection, points=points, wait=True)

    async def update(
        self,
        record_id: str,
        *,
        text: str | None = None,
        vector: Sequence[float] | None = None,
        importance: float | None = None,
        last_used_at: datetime | None = None,
    ) -> MemoryRecord | None:
        if vector is not None:
            self._check_vector(vector)
        return await self._run(self._update, record_id, record_changes(text, importance, last_used_at), vector)

    def _update(self, record_id: str, changes: dict[str, Any], vector: Sequence[float] | None) -> MemoryRecord | None:
        current = self._get_many([record_id])
        if not current:
            return None
        record = current[0].model_copy(update=changes)
        record = MemoryRecord.model_validate(record.model_dump())  # validate the new values
        client = self._open()
        if changes:
            payload = point_payload(record)
            client.set_payload(
                self.collection, payload={k: payload[k] for k in changes}, points=[record.id], wait=True
            )
        if vector is not None:
            client.update_vectors(
                self.collection,
                points=[qm.PointVectors(id=record.id, vector=list(map(float, vector)))],
                wait=True,
            )
        return record

    async def touch(self, record_ids: Sequence[str], at: datetime) -> None:
        ids = valid_ids(record_ids)
        if not ids:
            return
        stamp = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)

        def run() -> None:
            if self._exists():
                self._open().set_payload(
                    self.collection, payload={"last_used_at": stamp.isoformat()}, points=ids, wait=True
                )

        await self._run(run)

    async def search(
        self, query_vector: Sequence[float], query: MemoryQuery, limit: int
    ) -> list[tuple[MemoryRecord, float]]:
        if query.scopes is not None and not query.scopes:
            return []
        self._check_vector(query_vector)
        return await self._run(self._search, list(map(float, query_vector)), query, limit)

    def _search(self, vector: list[float], query: MemoryQuery, limit: int) -> list[tuple[MemoryRecord, float]]:
        if not self._exists():
            return []
        must: list[Any] = [_unexpired(utcnow())]
        if query.scopes is not None:
            must.append(
                qm.FieldCondition(key="scope_key", match=qm.MatchAny(any=[scope_key(s, i) for s, i in query.scopes]))
            )
        if query.kinds:
            must.append(qm.FieldCondition(key="kind", match=qm.MatchAny(any=[MemoryKind(k).value for k in query.kinds])))
        response = self._open().query_points(
            self.collection,
            query=vector,
            query_filter=qm.Filter(must=must),
            limit=limit,
            with_payload=True,
            with_vectors=False,
        )
        return [
            (point_record(point.id, point.payload), float(point.score))
            for point in response.points
            if point.score >= query.min_similarity
        ]

    async def vectors(self, record_ids: Sequence[str]) -> dict[str, list[float]]:
        ids = valid_ids(record_ids)
        if not ids:
            return {}

        def run() -> dict[str, list[float]]:
            if not self._exists():
                return {}
            points = self._open().retrieve(self.collection, ids=ids, with_payload=False, with_vectors=True)
            return {str(p.id): list(p.vector) for p in points if isinstance(p.vector, list)}

        return await self._run(run)

    async def get_many(self, record_ids: Sequence[str]) -> list[MemoryRecord]:
        return await self._run(self._get_many, builtins.list(record_ids))

    def _get_many(self, record_ids: Sequence[str]) -> list[MemoryRecord]:
        ids = valid_ids(record_ids)
        if not ids or not self._exists():
            return []
        points = self._open().retrieve(self.collection, ids=ids, with_payload=True, with_vectors=False)
        by_id = {str(p.id): point_record(p.id, p.payload) for p in points}
        return [by_id[i] for i in ids if i in by_id]

    async def list(
        self,
        scope: MemoryScope | None = None,
        scope_id: str | None = None,
        kind: MemoryKind | None = None,
        limit: int = 50,
        offset: int = 0,
        include_expired: bool = True,
    ) -> builtins.list[MemoryRecord]:
        def run() -> builtins.list[MemoryRecord]:
            if limit <= 0 or not self._exists():
                return []
            must = _field_filters(scope, scope_id, kind)
            if not include_expired:
                must.append(_unexpired(utcnow()))
            points, _ = self._open().scroll(
                self.collection,
                scroll_filter=qm.Filter(must=must) if must else None,
                limit=offset + limit,
                order_by=qm.OrderBy(key="created_ts", direction=qm.Direction.DESC),
                with_payload=True,
                with_vectors=False,
            )
            return [point_record(p.id, p.payload) for p in points[offset : offset + limit]]

        return await self._run(run)

    async def delete(self, record_ids: Sequence[str]) -> int:
        ids = valid_ids(record_ids)
        if not ids:
            return 0

        def run() -> int:
            if not self._exists():
                return 0
            client = self._open()
            existing = client.retrieve(self.collection, ids=ids, with_payload=False, with_vectors=False)
            if existing:
                client.delete(
                    self.collection, points_selector=qm.PointIdsList(points=[p.id for p in existing]), wait=True
                )
            return len(existing)

        return await self._run(run)

    async def count(
        self,
        scope: MemoryScope | None = None,
        scope_id: str | None = None,
        kind: MemoryKind | None = None,
    ) -> int:
        def run() -> int:
            if not self._exists():
                return 0
            must = _field_filters(scope, scope_id, kind)
            return self._open().count(
                self.collection, count_filter=qm.Filter(must=must) if must else None, exact=True
            ).count

        return await self._run(run)

    async def close(self) -> None:
        def run() -> None:
            if self._client is not None:
                self._client.close()
                self._client = None
            self._dimension = None

        await self._run(run)


def _unexpired(now: datetime) -> qm.Filter:
    return qm.Filter(
        should=[
            qm.IsEmptyCondition(is_empty=qm.PayloadField(key="expires_ts")),
            qm.FieldCondition(key="expires_ts", range=qm.Range(gt=now.timestamp())),
        ]
    )


def _field_filters(scope: MemoryScope | None, scope_id: str | None, kind: MemoryKind | None) -> builtins.list[Any]:
    must: builtins.list[Any] = []
    if scope is not None and scope_id is not None:
        must.append(qm.FieldCondition(key="scope_key", match=qm.MatchValue(value=scope_key(scope, scope_id))))
    elif scope is not None:
        must.append(qm.FieldCondition(key="scope", match=qm.MatchValue(value=MemoryScope(scope).value)))
    elif scope_id is not None:
        must.append(qm.FieldCondition(key="scope_id", match=qm.MatchValue(value=scope_id)))
    if kind is not None:
        must.append(qm.FieldCondition(key="kind", match=qm.MatchValue(value=MemoryKind(kind).value)))
    return must
