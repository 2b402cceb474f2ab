"""Monitoring records: alerts (one row per episode of a condition) and one health snapshot per run.

An alert is de-duplicated while its condition lasts: the open row for a key is updated (last seen,
severity, message, occurrences) instead of a new row being added, and it is resolved, not deleted,
when the condition clears, so the table is also the alert history. ``open_key`` holds the key
while the alert is open and NULL once resolved; its unique constraint makes "one open alert per
key" hold even if two runs race (NULLs never collide, on SQLite and PostgreSQL alike).

The read side (``latest_report``, ``alerts``, ``usage_trends``) returns the models of
``models.monitoring`` so that the CLI and the HTTP API show exactly what a run recorded.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Engine, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, delete, select

from models.monitoring import (
    AlertChanges,
    AlertCondition,
    AlertView,
    HealthReport,
    Severity,
    TrendBucket,
    UsageTrends,
)
from store.tables import Action, ModelUsage, UTCDateTime, utcnow


class Alert(SQLModel, table=True):
    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("open_key", name="uq_alerts_open_key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True)
    open_key: str | None = None
    """``key`` while the alert is open, NULL once resolved (see the module docstring)."""
    kind: str
    severity: str
    message: str
    first_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    occurrences: int = 1
    notified_severity: str | None = None
    """The severity last POSTed to the webhook (None: not yet, or the POST failed)."""


class HealthSnapshot(SQLModel, table=True):
    __tablename__ = "health_snapshots"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    run_id: str = ""
    score: int
    status: str
    model_servers_ok: bool | None = Field(default=None, sa_column_kwargs={"name": "ollama_ok"})
    """Whether this run's model-server probes all answered (any provider): the LLM error rate is
    computed from these. The column keeps its first name, ``ollama_ok``, so existing databases
    keep their rows."""
    report: dict[str, Any] = Field(sa_type=JSON)
    """The whole ``HealthReport``."""



def _view(row: Alert) -> AlertView:
    return AlertView(
        id=row.id or 0,
        key=row.key,
        kind=row.kind,
        severity=Severity(row.severity),
        message=row.message,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        resolved_at=row.resolved_at,
        occurrences=row.occurrences,
    )


class MonitoringStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- alerts --

    def sync_alerts(self, found: list[AlertCondition], now: datetime) -> AlertChanges:
        """Open, refresh, escalate and resolve alerts so that the open ones are exactly ``found``."""
        changes = AlertChanges()
        wanted = {c.key: c for c in found}
        with Session(self._engine, expire_on_commit=False) as session:
            open_rows = {row.key: row for row in session.exec(select(Alert).where(col(Alert.open_key).is_not(None)))}
            for key, row in open_rows.items():
                if key not in wanted:
                    row.resolved_at, row.open_key = now, None
                    session.add(row)
                    changes.resolved.append(_view(row))
            for key, condition in wanted.items():
                row = open_rows.get(key)
                if row is None:
                    row = Alert(
                        key=key,
                        open_key=key,
                        kind=condition.kind,
                        severity=condition.severity.value,
                        message=condition.message,
                        first_seen=now,
                        last_seen=now,
                    )
                    session.add(row)
                    session.flush()
                    changes.opened.append(_view(row))
                    continue
                escalated = row.severity != condition.severity.value
                row.severity, row.message, row.last_seen = condition.severity.value, condition.message, now
                row.occurrences += 1
                session.add(row)
                if escalated:
                    changes.escalated.append(_view(row))
            try:
                session.commit()
            except IntegrityError:
                # Another run opened the same alert in between; its rows win, ours are retried once.
                session.rollback()
                return self.sync_alerts(found, now)
        changes.active = self.alerts(active_only=True)
        return changes

    def mark_notified(self, alert_id: int, severity: str | None) -> None:
        with Session(self._engine) as session:
            row = session.get(Alert, alert_id)
            if row is not None:
                row.notified_severity = severity
                session.add(row)
                session.commit()

    def alerts(self, active_only: bool = False, limit: int = 100) -> list[AlertView]:
        """Alerts, newest first: the open ones only, or the history."""
        with Session(self._engine) as session:
            query = select(Alert).order_by(col(Alert.last_seen).desc(), col(Alert.id).desc())
            if active_only:
                query = query.where(col(Alert.open_key).is_not(None))
            return [_view(row) for row in session.exec(query.limit(limit))]

    # -- snapshots --

    def save_snapshot(self, report: HealthReport, model_servers_ok: bool | None) -> None:
        with Session(self._engine) as session:
            session.add(
                HealthSnapshot(
                    created_at=report.at,
                    run_id=report.run_id,
                    score=report.score,
                    status=report.status.value,
                    model_servers_ok=model_servers_ok,
                    report=report.model_dump(mode="json"),
                )
            )
            session.commit()

    def latest_report(self) -> HealthReport | None:
        """The last monitoring run's report, or None before the first run."""
        with Session(self._engine) as session:
            row = session.exec(select(HealthSnapshot).order_by(col(HealthSnapshot.id).desc()).limit(1)).first()
            return HealthReport.model_validate(row.report) if row else None

    def delete_snapshots_before(self, cutoff: datetime) -> int:
        """Retention (``history_max_days``): delete health snapshots taken before ``cutoff``; how
        many went. Alerts are the alert history and are kept."""
        with Session(self._engine) as session:
            result = session.exec(delete(HealthSnapshot).where(col(HealthSnapshot.created_at) < cutoff))
            session.commit()
            return result.rowcount or 0

    def model_server_probes(self, since: datetime) -> list[bool]:
        with Session(self._engine) as session:
            query = select(HealthSnapshot.model_servers_ok).where(
                col(HealthSnapshot.created_at) >= since, col(HealthSnapshot.model_servers_ok).is_not(None)
            )
            return [bool(ok) for ok in session.exec(query)]

    def scores(self, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
        with Session(self._engine) as session:
            query = (
                select(HealthSnapshot.created_at, HealthSnapshot.score)
                .where(col(HealthSnapshot.created_at) >= since, col(HealthSnapshot.created_at) <= until)
                .order_by(col(HealthSnapshot.created_at))
            )
            return [(at, score) for at, score in session.exec(query)]


def usage_trends(engine: Engine, now: datetime, minutes: int = 90, bucket_minutes: int = 10) -> UsageTrends:
    """Model calls, tokens (per model), tool calls, failures and the health score over the last
    ``minutes``, in ``bucket_minutes`` buckets, oldest first: the data of a usage chart."""
    store = MonitoringStore(engine)
    bucket_minutes = max(1, min(bucket_minutes, minutes))
    count = -(-minutes // bucket_minutes)
    since = now - timedelta(minutes=bucket_minutes * count)
    buckets = [TrendBucket(start=since + timedelta(minutes=bucket_minutes * i)) for i in range(count)]

    def slot(at: datetime) -> TrendBucket | None:
        index = int((at - since).total_seconds() // (bucket_minutes * 60))
        return buckets[index] if 0 <= index < count else None

    with Session(engine) as session:
        usage = session.exec(
            select(ModelUsage).where(col(ModelUsage.created_at) >= since, col(ModelUsage.created_at) <= now)
        )
        for row in usage:
            bucket = slot(row.created_at)
            if bucket is not None:
                tokens = (row.prompt_tokens or 0) + (row.completion_tokens or 0)
                bucket.model_calls += 1
                bucket.tokens += tokens
                bucket.tokens_by_model[row.model] = bucket.tokens_by_model.get(row.model, 0) + tokens
        actions = session.exec(
            select(Action.created_at, Action.success).where(col(Action.created_at) >= since, col(Action.created_at) <= now)
        )
        for at, success in actions:
            bucket = slot(at)
            if bucket is not None:
                bucket.actions += 1
                bucket.action_failures += success is False
    scores: dict[int, list[int]] = defaultdict(list)
    timeline = store.scores(since, now)
    for at, score in timeline:
        bucket = slot(at)
        if bucket is not None:
            scores[buckets.index(bucket)].append(score)
    for index, values in scores.items():
        buckets[index].avg_score = round(sum(values) / len(values), 1)
    return UsageTrends(
        since=since, until=now, bucket_minutes=bucket_minutes, buckets=buckets, score_trend=_trend([s for _, s in timeline])
    )


def _trend(values: list[int], tolerance: float = 5.0) -> str:
    """improving / degrading / stable: mean of the later half against the earlier half (± ``tolerance`` points)."""
    if len(values) < 2:
        return "stable"
    half = len(values) // 2
    earlier, later = values[:half], values[half:]
    delta = sum(later) / len(later) - sum(earlier) / len(earlier)
    return "improving" if delta > tolerance else "degrading" if delta < -tolerance else "stable"
