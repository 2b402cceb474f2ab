"""The pgvector memory store: a PostgreSQL table with a ``vector(<dimension>)`` column.

Tables (in the database of ``DAEMONFLOW_DATABASE_URL``):

- ``memory_meta``: one row per collection (table name) with the dimension and the embedding model
  it was created for. It is the source of truth for the dimension; a table found without its row
  (made by hand, say) has its dimension read from the column type and recorded.
- ``<collection>`` (``memories``): one row per memory; the SQLModel class is built at run time for
  the dimension (:func:`memory_table`). Indexes: ``(scope, scope_id)``, ``kind``, ``created_at``
  and an HNSW index on the embedding with ``vector_cosine_ops``.

The pgvector in use here (0.6, no iterative scans) filters HNSW results *after* the index scan,
which returns at most ``hnsw.ef_search`` rows, and HNSW is approximate: so a search asks for
``ef_search`` = 1000, pgvector's largest (why, with measurements: :data:`EF_SEARCH`), and, when it
still gets fewer than ``limit`` rows — a selective filter (one user's few memories among many)
starved it — repeats the query exactly (index scans off, the ``(scope, scope_id)`` bitmap index
still used): results are then never missing because of the filter. Similarity is ``1 - (a <=> b)``, the
cosine similarity, as in Qdrant.

Creating the collection runs under a transaction-scoped advisory lock, so workers starting
together on a fresh database do not race.
"""

import asyncio
import hashlib
import types
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from pgvector import Vector as PgVector
from pgvector.psycopg import register_vector
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    Table,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import registry
from sqlalchemy.pool import NullPool
from sqlmodel import Field, SQLModel

from activities.memory.one_trip_search import OneTripSearch
from activities.memory.store import (
    DimensionMismatch,
    MemoryStoreError,
    batch_dimension,
    check_collection_name,
    record_changes,
    valid_ids,
)
from models.memory import MemoryKind, MemoryQuery, MemoryRecord, MemoryScope, utcnow
from store.engine import normalize_database_url
from store.tables import UTCDateTime

T = TypeVar("T")

INSERT_BATCH = 1000
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
EF_SEARCH = 1000
"""pgvector's default is 40, its largest 1000. Top-5 hit on 100k random 384-d memories with the
recall filter (half the collection; bench.memory's data, pgvector 0.6.2, m=16,
ef_construction=64, 2 CPUs), hits among the queries whose target was visible, and search p50:

=======  ===============  ===============
ef       run 1, load ~5   run 2, load ~9
=======  ===============  ===============
100      44/57 (16 ms)
200      52/57 (26 ms)
400      55/57 (34 ms)    156/160 (64 ms)
600                       159/160 (99 ms)
800      57/57 (46 ms)    159/160 (138 ms)
1000     57/57 (66 ms)    160/160 (172 ms)
exact    57/57 (84 ms)    160/160 (185 ms)
=======  ===============  ===============

Only 1000 found every target in both runs; an exact scan costs about the same at 100k but grows
with the table, where HNSW grows slowly."""


class BinaryVector(VECTOR):
    """pgvector's column type, but bound as ``pgvector.Vector`` objects, which psycopg sends in
    pgvector's binary format (the dumper registered on every connection by ``register_vector``).
    The stock type formats each vector as text (``'[0.1,...]'``) in Python and PostgreSQL parses it
    back: about twenty times slower for 384 floats."""

    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        def process(value: Any) -> Any:
            return None if value is None else PgVector(value)

        return process


def _register_vector(dbapi_connection: Any, _record: Any) -> None:
    register_vector(dbapi_connection)
    dbapi_connection.rollback()  # the type look-ups opened a transaction; leave the connection idle


class _MetaBase(SQLModel, registry=registry()):
    """Own registry: these tables must not be created by the records store's ``create_all``
    (which may run on SQLite)."""


class MemoryMeta(_MetaBase, table=True):
    __tablename__ = "memory_meta"

    collection: str = Field(primary_key=True)
    dimension: int
    embed_model: str | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@lru_cache(maxsize=None)
def memory_table(collection: str, dimension: int) -> type[SQLModel]:
    """The SQLModel table class of ``collection`` with a ``vector(dimension)`` column."""
    check_collection_name(collection)
    base = types.new_class(f"_MemoryBase_{collection}_{dimension}", (SQLModel,), {"registry": registry()})

    class MemoryRow(base, table=True):  # type: ignore[misc, valid-type]
        __tablename__ = collection
        __table_args__ = (
            Index(f"ix_{collection}_scope", "scope", "scope_id"),
            Index(f"ix_{collection}_kind", "kind"),
            Index(f"ix_{collection}_created_at", "created_at"),
            Index(
                f"ix_{collection}_embedding_hnsw",
                "embedding",
                postgresql_using="hnsw",
                postgresql_with={"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
                postgresql_ops={"embedding": "vector_cosine_ops"},
            ),
        )

        id: str = Field(primary_key=True, max_length=36)
        text: str
        scope: str = Field(max_length=16)
        scope_id: str
        kind: str = Field(max_length=16)
        importance: float
        agent: str | None = None
        source_conversation: str | None = None
        source_turn: int | None = None
        created_at: datetime = Field(sa_type=UTCDateTime)
        last_used_at: datetime = Field(sa_type=UTCDateTime)
        expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
        embedding: Any = Field(sa_column=Column("embedding", BinaryVector(dimension), nullable=False))

    MemoryRow.__name__ = f"MemoryRow_{collection}_{dimension}"
    return MemoryRow


_RECORD_COLUMNS = (
    "id", "text", "scope", "scope_id", "kind", "importance", "agent",
    "source_conversation", "source_turn", "created_at", "last_used_at", "expires_at",
)


def _row_values(record: MemoryRecord, vector: Sequence[float]) -> dict[str, Any]:
    values = record.model_dump(include=set(_RECORD_COLUMNS))
    values["scope"] = record.scope.value
    values["kind"] = record.kind.value
    values["embedding"] = list(map(float, vector))
    return values


def _record(row: Any) -> MemoryRecord:
    mapping = row._mapping
    return MemoryRecord.model_validate({name: mapping[name] for name in _RECORD_COLUMNS})


def _lock_key(collection: str) -> int:
    digest = hashlib.blake2b(f"daemonflow-memory:{collection}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PgvectorMemoryStore(OneTripSearch):
    backend = "pgvector"

    def __init__(self, url: str, *, collection: str = "memories") -> None:
        self.url = normalize_database_url(url)
        if self.url.get_backend_name() != "postgresql":
            raise MemoryStoreError(f"the pgvector memory store needs PostgreSQL, not {self.url.get_backend_name()}")
        self.collection = check_collection_name(collection)
        self._engine: Engine | None = None
        self._dimension: int | None = None
        self._table: Table | None = None

    def __repr__(self) -> str:
        return f"PgvectorMemoryStore({self.url.render_as_string(hide_password=True)!r}, collection={self.collection!r})"

    @property
    def dimension(self) -> int | None:
        return self._dimension

    # -- plumbing

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def _open(self) -> Engine:
        if self._engine is None:
            # The extension must exist before a pooled connection registers the vector type.
            bootstrap = create_engine(self.url, poolclass=NullPool)
            try:
                with bootstrap.begin() as connection:
                    connection.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
                    MemoryMeta.metadata.create_all(connection)
            except SQLAlchemyError as error:
                raise MemoryStoreError(
                    f"cannot prepare the pgvector memory store in {self.url.render_as_string(hide_password=True)} "
                    f"(is the pgvector extension installed there?): {error}"
                ) from error
            finally:
                bootstrap.dispose()
            engine = create_engine(self.url, pool_pre_ping=True)
            event.listen(engine, "connect", _register_vector)
            self._engine = engine
        return self._engine

    def _use(self, dimension: int) -> None:
        self._dimension = dimension
        self._table = memory_table(self.collection, dimension).__table__  # type: ignore[attr-defined]

    def _known(self) -> Table | None:
        """The table if the collection exists (learning its dimension), else ``None``."""
        if self._table is not None:
            return self._table
        with self._open().connect() as connection:
            dimension = connection.execute(
                select(MemoryMeta.dimension).where(MemoryMeta.collection == self.collection)
            ).scalar_one_or_none()
        if dimension is None:
            return None
        self._use(dimension)
        return self._table

    def _column_dimension(self, connection: Connection) -> int | None:
        """The dimension of an existing ``embedding`` column (``vector(n)`` keeps n in atttypmod)."""
        return connection.execute(
            text(
                "SELECT a.atttypmod FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname = :table AND n.nspname = current_schema() AND a.attname = 'embedding' "
                "AND NOT a.attisdropped"
            ),
            {"table": self.collection},
        ).scalar_one_or_none()

    # -- MemoryStore

    async def ensure(self, dimension: int, model: str | None = None) -> None:
        if self._dimension == dimension:
            return
        await self._run(self._ensure, dimension, model)

    def _ensure(self, dimension: int, model: str | None) -> None:
        with self._open().begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(self.collection)})
            meta = connection.execute(
                select(MemoryMeta.dimension, MemoryMeta.embed_model).where(MemoryMeta.collection == self.collection)
            ).first()
            if meta is None:
                existing = self._column_dimension(connection)
                if existing is not None and existing > 0:
                    meta_dimension, meta_model = existing, None
                else:
                    memory_table(self.collection, dimension).metadata.create_all(connection)
                    meta_dimension, meta_model = dimension, model
                connection.execute(
                    pg_insert(MemoryMeta.__table__).values(  # type: ignore[attr-defined]
                        collection=self.collection, dimension=meta_dimension, embed_model=meta_model, created_at=utcnow()
                    )
                )
            else:
                meta_dimension, meta_model = meta
        if meta_dimension != dimension:
            raise DimensionMismatch(
                collection=self.collection,
                backend=self.backend,
                existing_dimension=meta_dimension,
                dimension=dimension,
                existing_model=meta_model,
                model=model,
            )
        self._use(dimension)

    async def add(self, records: Sequence[MemoryRecord], vectors: Sequence[Sequence[float]]) -> None:
        dimension = batch_dimension(records, vectors)
        if dimension is None:
            return
        await self.ensure(dimension)
        rows = [_row_values(r, v) for r, v in zip(records, vectors, strict=True)]
        await self._run(self._add, rows)

    def _add(self, rows: list[dict[str, Any]]) -> None:
        table = self._table
        assert table is not None
        statement = pg_insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.id],
            set_={name: statement.excluded[name] for name in rows[0] if name != "id"},
        )
        with self._open().begin() as connection:
            for start in range(0, len(rows), INSERT_BATCH):
                connection.execute(statement, rows[start : start + INSERT_BATCH])

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
        if importance is not None and not 0.0 <= importance <= 1.0:
            raise ValueError("importance must be between 0 and 1")
        values = record_changes(text, importance, last_used_at)
        if vector is not None:
            values["embedding"] = list(map(float, vector))

        def run() -> MemoryRecord | None:
            ids = valid_ids([record_id])
            table = self._known()
            if not ids or table is None:
                return None
            columns = [table.c[name] for name in _RECORD_COLUMNS]
            with self._open().begin() as connection:
                if values:
                    row = connection.execute(
                        update(table).where(table.c.id == ids[0]).values(**values).returning(*columns)
                    ).first()
                else:
                    row = connection.execute(select(*columns).where(table.c.id == ids[0])).first()
            return _record(row) if row is not None else None

        return await self._run(run)

    async def touch(self, record_ids: Sequence[str], at: datetime) -> None:
        ids = valid_ids(record_ids)
        if not ids:
            return

        def run() -> None:
            table = self._known()
            if table is None:
                return
            # Two recalls touching the same memories deadlocked (bench.conversation, two workers):
            # rows are locked in id order, and one another transaction holds is left to it.
            locked = select(table.c.id).where(table.c.id.in_(ids)).order_by(table.c.id).with_for_update(skip_locked=True)
            with self._open().begin() as connection:
                connection.execute(update(table).where(table.c.id.in_(locked.scalar_subquery())).values(last_used_at=at))

        await self._run(run)

    def _search(self, vector: list[float], query: MemoryQuery, limit: int, with_vectors: bool
                ) -> tuple[list[tuple[MemoryRecord, float]], dict[str, list[float]]]:
        table = self._known()
        if table is None or limit <= 0:
            return [], {}
        if len(vector) != self._dimension:
            self._check_vector(vector)
        distance = table.c.embedding.cosine_distance(vector)
        conditions = [or_(table.c.expires_at.is_(None), table.c.expires_at > utcnow())]
        if query.scopes is not None:
            pairs = [(MemoryScope(s).value, i) for s, i in query.scopes]
            conditions.append(tuple_(table.c.scope, table.c.scope_id).in_(pairs))
        if query.kinds:
            conditions.append(table.c.kind.in_([MemoryKind(k).value for k in query.kinds]))
        embedding = (table.c.embedding,) if with_vectors else ()
        statement = (
            select(*(table.c[name] for name in _RECORD_COLUMNS), *embedding, (1 - distance).label("similarity"))
            .where(*conditions)
            .order_by(distance)
            .limit(limit)
        )
        with self._open().begin() as connection:
            connection.execute(text(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}"))
            rows = connection.execute(statement).all()
            if len(rows) < limit:
                # Maybe the index scan was starved by the filter: ask again, exactly.
                connection.execute(text("SET LOCAL enable_indexscan = off"))
                rows = connection.execute(statement).all()
        kept = [row for row in rows if float(row.similarity) >= query.min_similarity]
        vectors = {row.id: [float(x) for x in row.embedding] for row in kept} if with_vectors else {}
        return [(_record(row), float(row.similarity)) for row in kept], vectors

    async def vectors(self, record_ids: Sequence[str]) -> dict[str, list[float]]:
        ids = valid_ids(record_ids)
        if not ids:
            return {}

        def run() -> dict[str, list[float]]:
            table = self._known()
            if table is None:
                return {}
            with self._open().connect() as connection:
                rows = connection.execute(select(table.c.id, table.c.embedding).where(table.c.id.in_(ids))).all()
            return {row.id: [float(x) for x in row.embedding] for row in rows}

        return await self._run(run)

    async def get_many(self, record_ids: Sequence[str]) -> list[MemoryRecord]:
        ids = valid_ids(record_ids)
        if not ids:
            return []

        def run() -> list[MemoryRecord]:
            table = self._known()
            if table is None:
                return []
            with self._open().connect() as connection:
                rows = connection.execute(
                    select(*(table.c[name] for name in _RECORD_COLUMNS)).where(table.c.id.in_(ids))
                ).all()
            by_id = {row.id: _record(row) for row in rows}
            return [by_id[i] for i in ids if i in by_id]

        return await self._run(run)

    def _filters(self, table: Table, scope: MemoryScope | None, scope_id: str | None, kind: MemoryKind | None) -> list[Any]:
        conditions: list[Any] = []
        if scope is not None:
            conditions.append(table.c.scope == MemoryScope(scope).value)
        if scope_id is not None:
            conditions.append(table.c.scope_id == scope_id)
        if kind is not None:
            conditions.append(table.c.kind == MemoryKind(kind).value)
        return conditions

    async def list(
        self,
        scope: MemoryScope | None = None,
        scope_id: str | None = None,
        kind: MemoryKind | None = None,
        limit: int = 50,
        offset: int = 0,
        include_expired: bool = True,
    ) -> list[MemoryRecord]:
        def run() -> list[MemoryRecord]:
            table = self._known()
            if table is None or limit <= 0:
                return []
            conditions = self._filters(table, scope, scope_id, kind)
            if not include_expired:
                conditions.append(or_(table.c.expires_at.is_(None), table.c.expires_at > utcnow()))
            statement = (
                select(*(table.c[name] for name in _RECORD_COLUMNS))
                .where(*conditions)
                .order_by(table.c.created_at.desc(), table.c.id)
                .limit(limit)
                .offset(max(offset, 0))
            )
            with self._open().connect() as connection:
                return [_record(row) for row in connection.execute(statement)]

        return await self._run(run)

    async def delete(self, record_ids: Sequence[str]) -> int:
        ids = valid_ids(record_ids)
        if not ids:
            return 0

        def run() -> int:
            table = self._known()
            if table is None:
                return 0
            with self._open().begin() as connection:
                return connection.execute(delete(table).where(table.c.id.in_(ids))).rowcount

        return await self._run(run)

    async def count(
        self,
        scope: MemoryScope | None = None,
        scope_id: str | None = None,
        kind: MemoryKind | None = None,
    ) -> int:
        def run() -> int:
            table = self._known()
            if table is None:
                return 0
            statement = select(func.count()).select_from(table).where(*self._filters(table, scope, scope_id, kind))
            with self._open().connect() as connection:
                return int(connection.execute(statement).scalar_one())

        return await self._run(run)

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        self._dimension = None
        self._table = None
        if engine is not None:
            await asyncio.to_thread(engine.dispose)
