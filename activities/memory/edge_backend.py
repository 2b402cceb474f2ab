"""The embedded memory store: Qdrant Edge (``qdrant-edge-py``), the Qdrant engine in-process.

The default when no Qdrant server is configured. Layout under ``<var_dir>/qdrant-edge/``:

- ``<collection>/``: one Edge shard per collection (``edge_config.json``, ``wal/``, ``segments/``)
  and ``daemonflow.json`` — the dimension and the embedding model the collection was made for,
  and, once done, the record of the one-time copy from ``var/qdrant``
  (:mod:`activities.memory.edge_migration`);
- ``.lock``: held (``flock``) by the one process that has the store open, with its pid.

Points are those of :mod:`activities.memory.points`, with payload indexes on every filtered field
(keyword: ``scope_key``, ``scope``, ``scope_id``, ``kind``; range: ``created_ts``,
``expires_ts``), so a recall's scope and expiry filter is an index look-up, not a payload scan.

**Search is the engine's exact search.** Measured on 100k random 384-d memories with the recall
filter (bench data; 2 CPUs, load ~2.5): exact search p50 9.8 ms with every target found (50/50);
after building the HNSW graph, the filtered HNSW search found 32/50 with the default ``ef``, 36 at
128, 47 at 256 and 49 at 512 (2.8 ms). Building that graph took 99 s — and Qdrant Edge builds it
only in ``optimize()``, which holds the Python GIL all along (a thread ticking every ms ticked
once in 14 s of optimizing 20k points): a worker doing it would stop answering Temporal. So the
store never optimizes, every search is exact (``SearchParams(exact=True)``), top-5 hit is 100 %
by construction and a search costs ~0.1 ms per 1k memories; past a few hundred thousand memories
a Qdrant server (which indexes in the background) or pgvector is the better home.

**One process.** The WAL of an Edge shard admits one process, and fails with an opaque
``WouldBlock``; this store takes ``.lock`` first (``flock``, so a second store in the same process
is refused too) and raises :class:`~activities.memory.store.StoreLocked`, which sends
``daemonflow memory`` through the worker that holds it. The store opens lazily, on the first call
that needs it; :meth:`EdgeMemoryStore.close` flushes, closes the shard and releases the lock.

**Persistence.** Every update is in the shard's write-ahead log when ``update`` returns: a process
killed without closing finds it again at the next load (tested). ``flush()`` writes the segments,
so that the next load need not replay the WAL (replaying 30k unflushed points took 1.9 s; loading
them flushed 0.1 s). Its cost grows with what changed (30–40 ms after one write, 0.15 s for 30k
new points; measured at load ~10), so it runs as the Qdrant server's does: after a write at most
every ``FLUSH_INTERVAL_S`` seconds, and at close.

Calls run on one dedicated thread (state and shard are used by one thread at a time); each
holds the GIL while the engine works, ~10 ms for a search at 100k memories.
"""

from __future__ import annotations

import asyncio
import builtins
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import qdrant_edge as qe

from activities.memory.edge_migration import LocalPoint, copy_local_collection, has_local_collection
from activities.memory.points import FLOAT_FIELDS, KEYWORD_FIELDS, point_payload, point_record, scope_key
from activities.memory.one_trip_search import OneTripSearch
from activities.memory.store import (
    DimensionMismatch,
    MemoryStoreError,
    StoreLocked,
    batch_dimension,
    check_collection_name,
    record_changes,
    valid_ids,
)
from models.memory import MemoryKind, MemoryQuery, MemoryRecord, MemoryScope, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

UPSERT_BATCH = 1000
FLUSH_INTERVAL_S = 5.0
"""A write flushes the shard when the last flush is this old (the Qdrant server's default interval)."""
META_FILE = "daemonflow.json"
LOCK_FILE = ".lock"
EXACT = qe.SearchParams(exact=True)


class EdgeMemoryStore(OneTripSearch):
    backend = "qdrant-edge"

    def __init__(self, root: Path | str, *, collection: str = "memories", legacy_path: Path | str | None = None) -> None:
        """``root``: the folder of all embedded collections (``<var_dir>/qdrant-edge``);
        ``legacy_path``: an old qdrant-client local-mode folder to copy from once (``<var_dir>/qdrant``)."""
        self.root = Path(root)
        self.collection = check_collection_name(collection)
        self.path = self.root / self.collection
        self.legacy_path = Path(legacy_path) if legacy_path is not None else None
        self._lock_fd: int | None = None
        self._shard: qe.EdgeShard | None = None
        self._meta: dict[str, Any] = {}
        self._flushed_at = 0.0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant-edge")

    @property
    def dimension(self) -> int | None:
        return self._meta.get("dimension") if self._shard is not None else None

    def __repr__(self) -> str:
        return f"EdgeMemoryStore(root={str(self.root)!r}, collection={self.collection!r})"

    # -- plumbing (all on the store's thread)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open(self) -> None:
        """Take the lock, load the shard if it exists, copy an old local-mode collection once."""
        if self._lock_fd is not None:
            return
        self._lock_fd = _lock(self.root)
        self._flushed_at = time.monotonic()
        try:
            self._meta = self._read_meta()
            if (self.path / "edge_config.json").exists():
                self._shard = qe.EdgeShard.load(str(self.path))
                self._meta.setdefault("dimension", self._config_dimension())
                self._ensure_indexes()
            if self.legacy_path is not None and "migrated_from" not in self._meta:
                self._migrate(self.legacy_path)
        except BaseException:
            self._release()
            raise

    def _exists(self) -> bool:
        self._open()
        return self._shard is not None

    def _shard_or_fail(self) -> qe.EdgeShard:
        if self._shard is None:
            raise MemoryStoreError(f"memory collection {self.collection!r} was not created (call ensure first)")
        return self._shard

    def _read_meta(self) -> dict[str, Any]:
        try:
            return json.loads((self.path / META_FILE).read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            raise MemoryStoreError(f"cannot read {self.path / META_FILE}: {error}") from None

    def _write_meta(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.path / f"{META_FILE}.tmp"
        temporary.write_text(json.dumps(self._meta, indent=2) + "\n")
        os.replace(temporary, self.path / META_FILE)

    def _config_dimension(self) -> int:
        """The vector size from the shard's own config (a shard whose ``daemonflow.json`` is gone)."""
        config = json.loads((self.path / "edge_config.json").read_text())
        return int(config["vectors"][""]["size"])

    def _ensure_indexes(self) -> None:
        shard = self._shard_or_fail()
        present = set(shard.info().payload_schema)
        for field in KEYWORD_FIELDS:
            if field not in present:
                shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Keyword))
        for field in FLOAT_FIELDS:
            if field not in present:
                shard.update(qe.UpdateOperation.create_field_index(field, qe.PayloadSchemaType.Float))

    def _wrote(self) -> None:
        if time.monotonic() - self._flushed_at >= FLUSH_INTERVAL_S:
            self._shard_or_fail().flush()
            self._flushed_at = time.monotonic()

    def _release(self) -> None:
        if self._shard is not None:
            self._shard.close()  # flushes
            self._shard = None
        self._meta = {}
        if self._lock_fd is not None:
            _unlock(self._lock_fd)
            self._lock_fd = None

    # -- creating, and the one-time copy of an old local-mode collection

    def _create(self, dimension: int, model: str | None) -> None:
        """``daemonflow.json`` first, then the shard: a crash in between leaves a dimension with
        no shard, which the next :meth:`_create` completes."""
        if "dimension" not in self._meta:
            self._meta.update(dimension=dimension, embed_model=model)
            self._write_meta()
        if self._shard is None:
            config = qe.EdgeConfig(vectors=qe.EdgeVectorParams(size=self._meta["dimension"], distance=qe.Distance.Cosine))
            self._shard = qe.EdgeShard.create(str(self.path), config)
            self._ensure_indexes()

    def _check_dimension(self, dimension: int, model: str | None) -> None:
        existing = self._meta["dimension"]
        if existing != dimension:
            raise DimensionMismatch(
                collection=self.collection, backend=self.backend, existing_dimension=existing,
                dimension=dimension, existing_model=self._meta.get("embed_model"), model=model,
            )

    def prepare(self, dimension: int, embed_model: str | None) -> None:
        """Migration target: the collection for the old one's vectors (see edge_migration)."""
        self._create(dimension, embed_model)
        self._check_dimension(dimension, embed_model)

    def write(self, points: list[LocalPoint]) -> None:
        """Migration target: one page of the old collection's points, verbatim."""
        shard = self._shard_or_fail()
        shard.update(qe.UpdateOperation.upsert_points([qe.Point(p.id, p.vector, p.payload) for p in points]))

    def _migrate(self, source: Path) -> None:
        if not has_local_collection(source, self.collection):
            return
        try:
            copied = copy_local_collection(source, self.collection, self)
        except DimensionMismatch as error:
            raise MemoryStoreError(
                f"cannot copy collection {self.collection!r} of the old store {source} "
                f"({error.dimension}-dimensional vectors) into {self.path}, which holds "
                f"{error.existing_dimension}-dimensional ones: move {source} away, or set "
                "DAEMONFLOW_MEMORY_COLLECTION to another name"
            ) from None
        if copied:
            shard = self._shard_or_fail()
            held = shard.count(qe.CountRequest(exact=True))
            if held < copied:
                raise MemoryStoreError(f"copying {source} lost points: {copied} read, {held} held; nothing recorded, retried at next open")
            shard.flush()
        self._meta["migrated_from"] = {"path": str(source), "points": copied, "at": utcnow().isoformat()}
        self._write_meta()
        log.info("memory: copied %d memories of collection %r from %s (qdrant-client local mode) into %s "
                 "(Qdrant Edge); %s is left as it was", copied, self.collection, source, self.path, source)

    # -- MemoryStore

    async def ensure(self, dimension: int, model: str | None = None) -> None:
        if self.dimension == dimension:
            return
        await self._run(self._ensure, dimension, model)

    def _ensure(self, dimension: int, model: str | None) -> None:
        self._open()
        self._create(dimension, model)
        self._check_dimension(dimension, model)

    async def add(self, records: Sequence[MemoryRecord], vectors: Sequence[Sequence[float]]) -> None:
        dimension = batch_dimension(records, vectors)
        if dimension is None:
            return
        await self.ensure(dimension)
        await self._run(self._add, builtins.list(records), [builtins.list(map(float, v)) for v in vectors])

    def _add(self, records: builtins.list[MemoryRecord], vectors: builtins.list[builtins.list[float]]) -> None:
        shard = self._shard_or_fail()
        for start in range(0, len(records), UPSERT_BATCH):
            points = [
                qe.Point(record.id, vector, point_payload(record))
                for record, vector in zip(records[start : start + UPSERT_BATCH], vectors[start : start + UPSERT_BATCH], strict=True)
            ]
            shard.update(qe.UpdateOperation.upsert_points(points))
            self._wrote()

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
        record = MemoryRecord.model_validate(current[0].model_copy(update=changes).model_dump())  # validates
        shard = self._shard_or_fail()
        if changes:
            payload = point_payload(record)
            shard.update(qe.UpdateOperation.set_payload([record.id], {k: payload[k] for k in changes}))
        if vector is not None:
            shard.update(qe.UpdateOperation.update_vectors([qe.PointVectors(record.id, builtins.list(map(float, vector)))]))
        self._wrote()
        return record

    async def touch(self, record_ids: Sequence[str], at: datetime) -> None:
        ids = valid_ids(record_ids)
        if not ids:
            return
        stamp = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)

        def run() -> None:
            # Only ids that exist: Edge refuses the whole call for one missing id (after applying
            # it to the others); the store's one thread makes "look, then write" race-free.
            existing = self._existing(ids)
            if existing:
                self._shard_or_fail().update(qe.UpdateOperation.set_payload(existing, {"last_used_at": stamp.isoformat()}))
                self._wrote()

        await self._run(run)

    def _existing(self, ids: builtins.list[str]) -> builtins.list[str]:
        if not ids or not self._exists():
            return []
        return [str(p.id) for p in self._shard_or_fail().retrieve(ids, False, False)]

    def _search(self, vector: builtins.list[float], query: MemoryQuery, limit: int, with_vectors: bool
                ) -> tuple[builtins.list[tuple[MemoryRecord, float]], dict[str, builtins.list[float]]]:
        if limit <= 0 or not self._exists():
            return [], {}
        self._check_vector(vector)
        must: builtins.list[Any] = [_unexpired(utcnow())]
        if query.scopes is not None:
            must.append(qe.FieldCondition(key="scope_key", match=qe.MatchAny(any=[scope_key(s, i) for s, i in query.scopes])))
        if query.kinds:
            must.append(qe.FieldCondition(key="kind", match=qe.MatchAny(any=[MemoryKind(k).value for k in query.kinds])))
        points = self._shard_or_fail().query(
            qe.QueryRequest(
                limit=limit, query=qe.Query.Nearest(vector), filter=qe.Filter(must=must),
                with_payload=True, with_vector=with_vectors, params=EXACT,
            )
        )
        kept = [p for p in points if p.score >= query.min_similarity]
        vectors = {str(p.id): v for p in kept if isinstance(v := p.vector, builtins.list)} if with_vectors else {}
        return [(point_record(p.id, p.payload), float(p.score)) for p in kept], vectors

    async def vectors(self, record_ids: Sequence[str]) -> dict[str, builtins.list[float]]:
        ids = valid_ids(record_ids)

        def run() -> dict[str, builtins.list[float]]:
            if not ids or not self._exists():
                return {}
            points = self._shard_or_fail().retrieve(ids, False, True)
            return {str(p.id): builtins.list(p.vector) for p in points if isinstance(p.vector, builtins.list)}

        return await self._run(run)

    async def get_many(self, record_ids: Sequence[str]) -> builtins.list[MemoryRecord]:
        return await self._run(self._get_many, builtins.list(record_ids))

    def _get_many(self, record_ids: Sequence[str]) -> builtins.list[MemoryRecord]:
        ids = valid_ids(record_ids)
        if not ids or not self._exists():
            return []
        by_id = {str(p.id): point_record(p.id, p.payload) for p in self._shard_or_fail().retrieve(ids, True, False)}
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
            points, _ = self._shard_or_fail().scroll(
                qe.ScrollRequest(
                    limit=max(offset, 0) + limit, filter=qe.Filter(must=must) if must else None, with_payload=True,
                    with_vector=False, order_by=qe.OrderBy("created_ts", direction=qe.Direction.Desc),
                )
            )
            return [point_record(p.id, p.payload) for p in points[max(offset, 0) : max(offset, 0) + limit]]

        return await self._run(run)

    async def delete(self, record_ids: Sequence[str]) -> int:
        ids = valid_ids(record_ids)

        def run() -> int:
            existing = self._existing(ids)
            if existing:
                self._shard_or_fail().update(qe.UpdateOperation.delete_points(existing))
                self._wrote()
            return len(existing)

        return await self._run(run)

    async def count(self, scope: MemoryScope | None = None, scope_id: str | None = None, kind: MemoryKind | None = None) -> int:
        def run() -> int:
            if not self._exists():
                return 0
            must = _field_filters(scope, scope_id, kind)
            return self._shard_or_fail().count(qe.CountRequest(exact=True, filter=qe.Filter(must=must) if must else None))

        return await self._run(run)

    async def close(self) -> None:
        await self._run(self._release)


def _lock(root: Path) -> int:
    """Hold ``root/.lock`` for this store (``flock``: per open file, so also against a second
    store in this process); returns the descriptor. The file says which pid holds it."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise StoreLocked(
            f"the embedded memory store {root} (Qdrant Edge) is open in another process (pid {holder}: a running "
            "worker?); it admits one process at a time: go through that process, stop it, or use a Qdrant server "
            "(DAEMONFLOW_QDRANT_URL) or pgvector for shared access"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _unlock(fd: int) -> None:
    os.ftruncate(fd, 0)
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _unexpired(now: datetime) -> qe.Filter:
    return qe.Filter(
        should=[
            qe.IsEmptyCondition("expires_ts"),
            qe.FieldCondition(key="expires_ts", range=qe.RangeFloat(gt=now.timestamp())),
        ]
    )


def _field_filters(scope: MemoryScope | None, scope_id: str | None, kind: MemoryKind | None) -> builtins.list[Any]:
    must: builtins.list[Any] = []
    if scope is not None and scope_id is not None:
        must.append(qe.FieldCondition(key="scope_key", match=qe.MatchValue(scope_key(scope, scope_id))))
    elif scope is not None:
        must.append(qe.FieldCondition(key="scope", match=qe.MatchValue(MemoryScope(scope).value)))
    elif scope_id is not None:
        must.append(qe.FieldCondition(key="scope_id", match=qe.MatchValue(scope_id)))
    if kind is not None:
        must.append(qe.FieldCondition(key="kind", match=qe.MatchValue(MemoryKind(kind).value)))
    return must
