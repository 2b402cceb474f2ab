"""``analytics_snapshots``: each pattern analysis's per-agent analytics, kept ``history_max_days``.

One row per (pattern analysis run, agent), unique, so a retried ``analytics.snapshot`` writes it
once. The summary columns (actions, anomalies, suggestions, turns…) serve listings without
reading the JSON; ``data`` holds the whole ``AgentAnalytics``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Engine, UniqueConstraint, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, delete, select

from models.analytics import AgentAnalytics
from models.analytics_snapshots import SnapshotSummary, SnapshotView
from store.tables import UTCDateTime, utcnow


class AnalyticsSnapshot(SQLModel, table=True):
    __tablename__ = "analytics_snapshots"
    __table_args__ = (UniqueConstraint("run_id", "agent", name="uq_analytics_snapshots_run_agent"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    agent: str = Field(index=True)
    since: datetime = Field(sa_type=UTCDateTime)
    until: datetime = Field(sa_type=UTCDateTime)
    actions: int = 0
    conversations: int = 0
    anomalies: int = 0
    suggestions: int = 0
    turns: int = 0
    out_of_steps: int = 0
    data: dict[str, Any] = Field(sa_type=JSON)
    """The whole ``AgentAnalytics``."""


def _summary(row: AnalyticsSnapshot) -> SnapshotSummary:
    return SnapshotSummary(
        id=row.id or 0,
        run_id=row.run_id,
        at=row.created_at,
        agent=row.agent,
        since=row.since,
        until=row.until,
        actions=row.actions,
        conversations=row.conversations,
        anomalies=row.anomalies,
        suggestions=row.suggestions,
        turns=row.turns,
        out_of_steps=row.out_of_steps,
    )


def _view(row: AnalyticsSnapshot) -> SnapshotView:
    return SnapshotView(**_summary(row).model_dump(), analytics=AgentAnalytics.model_validate(row.data))


class AnalyticsSnapshotStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save(self, run_id: str, at: datetime, analytics: AgentAnalytics) -> SnapshotSummary:
        """Store one agent's analytics for this run; a second call for the same run and agent returns the first."""
        existing = self._of_run(run_id, analytics.agent)
        if existing is not None:
            return existing
        row = AnalyticsSnapshot(
            run_id=run_id,
            created_at=at,
            agent=analytics.agent,
            since=analytics.since,
            until=analytics.until,
            actions=analytics.actions,
            conversations=analytics.conversations,
            anomalies=len(analytics.anomalies),
            suggestions=len(analytics.suggestions),
            turns=analytics.turns.turns,
            out_of_steps=analytics.turns.out_of_steps,
            data=analytics.model_dump(mode="json"),
        )
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                session.add(row)
                session.commit()
        except IntegrityError:  # the same run and agent written by a retry racing this one
            found = self._of_run(run_id, analytics.agent)
            if found is None:
                raise
            return found
        return _summary(row)

    def _of_run(self, run_id: str, agent: str) -> SnapshotSummary | None:
        with Session(self._engine) as session:
            row = session.exec(
                select(AnalyticsSnapshot).where(AnalyticsSnapshot.run_id == run_id, AnalyticsSnapshot.agent == agent)
            ).first()
            return _summary(row) if row else None

    def list(self, agent: str | None = None, limit: int = 50, before: int | None = None) -> list[SnapshotSummary]:
        """Newest first; ``before`` (an id) pages back."""
        with Session(self._engine) as session:
            query = select(AnalyticsSnapshot).order_by(col(AnalyticsSnapshot.id).desc())
            if agent is not None:
                query = query.where(AnalyticsSnapshot.agent == agent)
            if before is not None:
                query = query.where(col(AnalyticsSnapshot.id) < before)
            return [_summary(row) for row in session.exec(query.limit(limit))]

    def get(self, snapshot_id: int) -> SnapshotView | None:
        with Session(self._engine) as session:
            row = session.get(AnalyticsSnapshot, snapshot_id)
            return _view(row) if row else None

    def latest_per_agent(self, since: datetime) -> list[SnapshotView]:
        """Each agent's newest snapshot taken at or after ``since``, by agent name."""
        with Session(self._engine) as session:
            newest = (
                select(func.max(AnalyticsSnapshot.id))
                .where(col(AnalyticsSnapshot.created_at) >= since)
                .group_by(AnalyticsSnapshot.agent)
            )
            rows = session.exec(select(AnalyticsSnapshot).where(col(AnalyticsSnapshot.id).in_(newest)))
            return sorted((_view(row) for row in rows), key=lambda view: view.agent)

    def delete_before(self, cutoff: datetime) -> int:
        """Retention: delete snapshots taken before ``cutoff``; how many went."""
        with Session(self._engine) as session:
            result = session.exec(delete(AnalyticsSnapshot).where(col(AnalyticsSnapshot.created_at) < cutoff))
            session.commit()
            return result.rowcount or 0
