"""Archive records: one row per time a conversation or a channel archived after inactivity.

The row holds what the next run needs to revive it (its input and carried state, JSON) besides
what people read (when, how many turns or posts, its last activity), so a revival never depends on
Temporal still keeping the closed run. Writing is idempotent on ``(workflow_id, run_id)``: a
retried activity gets the row written the first time. Reviving marks the latest row (first
revival wins, a retry changes nothing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Engine, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from models.archive import ArchiveKind, ArchiveRecord, ArchiveRequest
from store.tables import UTCDateTime


class ArchiveRow(SQLModel, table=True):
    __tablename__ = "archives"
    __table_args__ = (UniqueConstraint("workflow_id", "run_id", name="uq_archives_run"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(index=True)
    subject_id: str = Field(index=True)
    workflow_id: str
    run_id: str
    turns: int = 0
    last_activity_at: datetime = Field(sa_type=UTCDateTime)
    archived_at: datetime = Field(sa_type=UTCDateTime)
    idle_s: int = 0
    input: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    carried: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    revived_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revived_run_id: str | None = None

    def record(self) -> ArchiveRecord:
        return ArchiveRecord.model_validate(self.model_dump(exclude={"input", "carried"}))


class ArchiveStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def archive(self, request: ArchiveRequest) -> ArchiveRecord:
        row = ArchiveRow(**request.model_dump(mode="json", exclude={"last_activity_at", "archived_at"}),
                         last_activity_at=request.last_activity_at, archived_at=request.archived_at)  # fmt: skip
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                session.add(row)
                session.commit()
                return row.record()
        except IntegrityError:  # a retry: the first write stands
            existing = self._by_run(request.workflow_id, request.run_id)
            assert existing is not None
            return existing.record()

    def _by_run(self, workflow_id: str, run_id: str) -> ArchiveRow | None:
        with Session(self._engine) as session:
            return session.exec(select(ArchiveRow).where(ArchiveRow.workflow_id == workflow_id,
                                                         ArchiveRow.run_id == run_id)).first()  # fmt: skip

    def latest(self, kind: ArchiveKind, subject_id: str) -> ArchiveRow | None:
        with Session(self._engine, expire_on_commit=False) as session:
            return session.exec(
                select(ArchiveRow).where(ArchiveRow.kind == kind.value, ArchiveRow.subject_id == subject_id)
                .order_by(col(ArchiveRow.id).desc())
            ).first()  # fmt: skip

    def archived(self, kind: ArchiveKind, workflow_id: str) -> bool:
        """Whether the workflow's latest archive waits for a revival (its last run archived)."""
        with Session(self._engine) as session:
            row = session.exec(
                select(ArchiveRow).where(ArchiveRow.kind == kind.value, ArchiveRow.workflow_id == workflow_id)
                .order_by(col(ArchiveRow.id).desc())
            ).first()  # fmt: skip
        return row is not None and row.revived_at is None

    def revive(self, kind: ArchiveKind, workflow_id: str, run_id: str, at: datetime) -> ArchiveRow | None:
        """The latest archive of the workflow, marked revived by ``run_id`` unless it already was."""
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.exec(
                select(ArchiveRow).where(ArchiveRow.kind == kind.value, ArchiveRow.workflow_id == workflow_id)
                .order_by(col(ArchiveRow.id).desc())
            ).first()  # fmt: skip
            if row is not None and row.revived_at is None:
                row.revived_at, row.revived_run_id = at, run_id
                session.add(row)
                session.commit()
                session.refresh(row)
            return row

    def records(self, kind: ArchiveKind | None = None, subject_id: str | None = None, limit: int = 100) -> list[ArchiveRecord]:
        """Newest first."""
        query = select(ArchiveRow).order_by(col(ArchiveRow.id).desc()).limit(limit)
        if kind is not None:
            query = query.where(ArchiveRow.kind == kind.value)
        if subject_id is not None:
            query = query.where(ArchiveRow.subject_id == subject_id)
        with Session(self._engine) as session:
            return [row.record() for row in session.exec(query)]
