"""The cache index and the record of every deletion the cache cleanup made.

The index is rebuilt from what exists (files, ``tool_runs`` rows, Docker volumes) on every cleanup
run, keyed by ``key``; entries that disappeared are dropped. Deletions are never forgotten:
each one is a ``cache_deletions`` row (what, whose, how big, why, when, by which run).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Field, Session, SQLModel, col, select

from models.cache import CacheEntryView, CacheKind, PlannedDeletion
from store.tables import UTCDateTime, utcnow


class CacheEntry(SQLModel, table=True):
    __tablename__ = "cache_entries"

    key: str = Field(primary_key=True)
    kind: str = Field(index=True)
    conversation_id: str | None = Field(default=None, index=True)
    agent: str | None = None
    size_bytes: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    preview: str = ""
    indexed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CacheDeletion(SQLModel, table=True):
    __tablename__ = "cache_deletions"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True)
    kind: str
    conversation_id: str | None = None
    size_bytes: int = 0
    reason: str
    run_id: str = ""
    deleted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)



def _view(row: CacheEntry) -> CacheEntryView:
    return CacheEntryView(
        key=row.key,
        kind=CacheKind(row.kind),
        conversation_id=row.conversation_id,
        agent=row.agent,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        preview=row.preview,
    )


class CacheStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def replace_index(self, entries: list[CacheEntryView], now: datetime) -> None:
        """Make the index exactly ``entries`` (upsert them, drop keys no longer found)."""
        keys = {e.key for e in entries}
        with Session(self._engine) as session:
            existing = {row.key: row for row in session.exec(select(CacheEntry))}
            for key, row in existing.items():
                if key not in keys:
                    session.delete(row)
            for entry in entries:
                row = existing.get(entry.key) or CacheEntry(key=entry.key, kind=entry.kind.value)
                row.kind = entry.kind.value
                row.conversation_id, row.agent = entry.conversation_id, entry.agent
                row.size_bytes, row.preview = entry.size_bytes, entry.preview[:200]
                row.created_at, row.last_used_at, row.indexed_at = entry.created_at, entry.last_used_at, now
                session.add(row)
            session.commit()

    def entries(self) -> list[CacheEntryView]:
        """The indexed entries, newest use first: ``cache.plan`` keeps the head of this order."""
        with Session(self._engine) as session:
            query = select(CacheEntry).order_by(col(CacheEntry.last_used_at).desc(), col(CacheEntry.key))
            return [_view(row) for row in session.exec(query)]

    def totals(self) -> tuple[int, int, datetime | None]:
        """(entries, total bytes, when last indexed)."""
        with Session(self._engine) as session:
            rows = list(session.exec(select(CacheEntry.size_bytes, CacheEntry.indexed_at)))
        return len(rows), sum(size for size, _ in rows), max((at for _, at in rows), default=None)

    def record_deletion(self, planned: PlannedDeletion, run_id: str, now: datetime) -> None:
        with Session(self._engine) as session:
            session.add(
                CacheDeletion(
                    key=planned.key,
                    kind=planned.kind.value,
                    conversation_id=planned.conversation_id,
                    size_bytes=planned.size_bytes,
                    reason=planned.reason.value,
                    run_id=run_id,
                    deleted_at=now,
                )
            )
            row = session.get(CacheEntry, planned.key)
            if row is not None:
                session.delete(row)
            session.commit()

    def deletions(self, limit: int = 100) -> list[CacheDeletion]:
        with Session(self._engine, expire_on_commit=False) as session:
            return list(session.exec(select(CacheDeletion).order_by(col(CacheDeletion.id).desc()).limit(limit)))


__all__ = ["CacheDeletion", "CacheEntry", "CacheStore"]
