"""Relevance records: every agent's score and decision for every post, its outcome, and feedback.

``relevance_scores`` has one row per (channel, message, agent), unique, so recording a post again
(a retried activity) changes nothing. ``relevance_feedback`` has one row per (score, person): a
person who changes their mind updates their row, and several people may each give theirs.
Decisions and outcomes are stored as plain strings, so a decision added later (``reflect``) is a
new value, not a schema change. Paging is by id (newest first), which new rows never disturb.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Engine, ForeignKey, Index, Integer, Text, UniqueConstraint, case, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Column, Field, Session, SQLModel, col, select

from models.relevance_records import (
    HISTOGRAM_BUCKETS,
    AgentRelevanceStats,
    Feedback,
    FeedbackRecord,
    Outcome,
    RecordOutcome,
    RelevanceAnalytics,
    ScorePage,
    ScoreRecord,
)
from models.relevance_scoring import Decision, FactorScore, PostRelevance, SimilarityMethod
from store.tables import UTCDateTime, utcnow


class RelevanceScoreRow(SQLModel, table=True):
    __tablename__ = "relevance_scores"
    __table_args__ = (
        UniqueConstraint("channel_id", "message_id", "agent", name="uq_relevance_scores_post_agent"),
        Index("ix_relevance_scores_agent_id", "agent", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel_id: str = Field(index=True)
    message_id: str
    agent: str
    score: float
    decision: str
    high_priority: bool = False
    forced: str | None = None
    gate: float = 1.0
    boost: float = 0.0
    method: str = SimilarityMethod.EMBEDDING.value
    explanation: str = Field(sa_type=Text)
    factors: list[dict[str, Any]] = Field(sa_type=JSON)
    outcome: str | None = None
    outcome_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class RelevanceFeedbackRow(SQLModel, table=True):
    __tablename__ = "relevance_feedback"
    __table_args__ = (UniqueConstraint("score_id", "person", name="uq_relevance_feedback_score_person"),)

    id: int | None = Field(default=None, primary_key=True)
    score_id: int = Field(sa_column=Column(Integer, ForeignKey("relevance_scores.id"), nullable=False, index=True))
    person: str
    feedback: str
    note: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UnknownScore(LookupError):
    """No relevance score has that id."""


def _feedback_view(row: RelevanceFeedbackRow) -> FeedbackRecord:
    return FeedbackRecord(score_id=row.score_id, person=row.person, feedback=Feedback(row.feedback),
                          note=row.note, at=row.updated_at)


def _score_view(row: RelevanceScoreRow, feedback: list[FeedbackRecord]) -> ScoreRecord:
    return ScoreRecord(
        id=row.id or 0,
        channel_id=row.channel_id,
        message_id=row.message_id,
        agent=row.agent,
        score=row.score,
        decision=Decision(row.decision),
        high_priority=row.high_priority,
        forced=row.forced,
        gate=row.gate,
        boost=row.boost,
        method=SimilarityMethod(row.method),
        explanation=row.explanation,
        factors=[FactorScore.model_validate(item) for item in row.factors],
        outcome=Outcome(row.outcome) if row.outcome else None,
        outcome_at=row.outcome_at,
        at=row.created_at,
        feedback=feedback,
    )


def _bucket() -> Any:
    """The histogram bucket of ``score`` as SQL, the same on SQLite and PostgreSQL (no floor())."""
    whens = [(col(RelevanceScoreRow.score) < (i + 1) / HISTOGRAM_BUCKETS, i) for i in range(HISTOGRAM_BUCKETS - 1)]
    return case(*whens, else_=HISTOGRAM_BUCKETS - 1)


class RelevanceStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- writing

    def record_post(self, post: PostRelevance, at: datetime) -> list[int]:
        """Store every score of ``post`` (rows already there are kept as they are); their ids, in
        ``post.scores`` order."""
        try:
            return self._insert_missing(post, at)
        except IntegrityError:  # a concurrent retry wrote some rows between our read and our write
            return self._insert_missing(post, at)

    def _insert_missing(self, post: PostRelevance, at: datetime) -> list[int]:
        with Session(self._engine, expire_on_commit=False) as session:
            existing = {
                row.agent: row
                for row in session.exec(select(RelevanceScoreRow).where(
                    RelevanceScoreRow.channel_id == post.channel_id, RelevanceScoreRow.message_id == post.message_id))
            }
            rows = []
            for score in post.scores:
                row = existing.get(score.agent)
                if row is None:
                    row = RelevanceScoreRow(
                        channel_id=post.channel_id, message_id=post.message_id, agent=score.agent,
                        score=score.score, decision=score.decision.value, high_priority=score.high_priority,
                        forced=score.forced, gate=score.gate, boost=score.boost, method=score.method.value,
                        explanation=score.explanation,
                        factors=[f.model_dump(mode="json") for f in score.factors], created_at=at,
                    )
                    session.add(row)
                rows.append(row)
            session.commit()
            return [row.id or 0 for row in rows]

    def set_outcome(self, channel_id: str, message_id: str, agent: str, outcome: Outcome, at: datetime) -> bool:
        """Fill in what came of a decision (the latest call wins); ``False`` if no such score."""
        with Session(self._engine) as session:
            row = session.exec(select(RelevanceScoreRow).where(
                RelevanceScoreRow.channel_id == channel_id, RelevanceScoreRow.message_id == message_id,
                RelevanceScoreRow.agent == agent)).first()
            if row is None:
                return False
            row.outcome, row.outcome_at = outcome.value, at
            session.add(row)
            session.commit()
            return True

    def set_outcomes(self, outcomes: Iterable[RecordOutcome]) -> int:
        """``set_outcome`` for each, in one transaction; how many found their score."""
        found = 0
        with Session(self._engine) as session:
            for item in outcomes:
                row = session.exec(select(RelevanceScoreRow).where(
                    RelevanceScoreRow.channel_id == item.channel_id, RelevanceScoreRow.message_id == item.message_id,
                    RelevanceScoreRow.agent == item.agent)).first()
                if row is not None:
                    row.outcome, row.outcome_at = item.outcome.value, item.at
                    session.add(row)
                    found += 1
            session.commit()
        return found

    def record_feedback(
        self, score_id: int, person: str, feedback: Feedback, at: datetime, note: str | None = None
    ) -> tuple[FeedbackRecord, bool]:
        """A person's feedback on a score: ``(record, created)``. Giving it again updates the same
        row (``created`` False), so a double click or a retried request counts once."""
        for _ in range(2):
            with Session(self._engine, expire_on_commit=False) as session:
                if session.get(RelevanceScoreRow, score_id) is None:
                    raise UnknownScore(f"no relevance score with id {score_id}")
                row = session.exec(select(RelevanceFeedbackRow).where(
                    RelevanceFeedbackRow.score_id == score_id, RelevanceFeedbackRow.person == person)).first()
                created = row is None
                if row is None:
                    row = RelevanceFeedbackRow(score_id=score_id, person=person, feedback=feedback.value,
                                               note=note, created_at=at, updated_at=at)
                else:
                    row.feedback, row.note, row.updated_at = feedback.value, note, at
                session.add(row)
                try:
                    session.commit()
                except IntegrityError:  # the same person's first feedback, twice at once: update it
                    continue
                return _feedback_view(row), created
        raise RuntimeError("feedback kept colliding")  # pragma: no cover - two rounds always settle

    # -- reading

    def get(self, score_id: int) -> ScoreRecord | None:
        with Session(self._engine) as session:
            row = session.get(RelevanceScoreRow, score_id)
            return _score_view(row, self._feedback_of(session, [score_id]).get(score_id, [])) if row else None

    def scores_of(
        self, agent: str, *, limit: int = 50, before: int | None = None, channel_id: str | None = None
    ) -> ScorePage:
        """An agent's scores, newest first, ``limit`` at a time; ``before`` is the previous page's
        ``next_before``."""
        query = select(RelevanceScoreRow).where(RelevanceScoreRow.agent == agent)
        if channel_id is not None:
            query = query.where(RelevanceScoreRow.channel_id == channel_id)
        return self._page(query, limit, before)

    def scores_in(self, channel_id: str, *, limit: int = 50, before: int | None = None) -> ScorePage:
        """A channel's scores, every agent's, newest first, paged like ``scores_of``."""
        return self._page(select(RelevanceScoreRow).where(RelevanceScoreRow.channel_id == channel_id), limit, before)

    def _page(self, query: Any, limit: int, before: int | None) -> ScorePage:
        limit = max(1, min(limit, 500))
        if before is not None:
            query = query.where(col(RelevanceScoreRow.id) < before)
        with Session(self._engine) as session:
            rows = list(session.exec(query.order_by(col(RelevanceScoreRow.id).desc()).limit(limit + 1)))
            page = rows[:limit]
            feedback = self._feedback_of(session, [row.id or 0 for row in page])
            items = [_score_view(row, feedback.get(row.id or 0, [])) for row in page]
        return ScorePage(items=items, next_before=page[-1].id if len(rows) > limit else None)

    @staticmethod
    def _feedback_of(session: Session, score_ids: list[int]) -> dict[int, list[FeedbackRecord]]:
        found: dict[int, list[FeedbackRecord]] = defaultdict(list)
        if score_ids:
            query = select(RelevanceFeedbackRow).where(col(RelevanceFeedbackRow.score_id).in_(score_ids))
            for row in session.exec(query.order_by(col(RelevanceFeedbackRow.id))):
                found[row.score_id].append(_feedback_view(row))
        return found

    def analytics(self, since: datetime, until: datetime, channel_id: str | None = None) -> RelevanceAnalytics:
        """Per agent over ``[since, until)``: decisions, intervention rate, mean score, score
        histogram, outcomes and feedback; plus the histogram of all scores. Four grouped queries,
        whatever the number of rows."""
        scores = RelevanceScoreRow
        window = [col(scores.created_at) >= since, col(scores.created_at) < until]
        if channel_id is not None:
            window.append(scores.channel_id == channel_id)
        bucketed = select(scores.agent, _bucket().label("bucket")).where(*window).subquery()
        tally = _Tally()
        with Session(self._engine) as session:
            tally.decisions(session.exec(select(
                scores.agent, scores.decision, func.count(), func.sum(scores.score), func.count(scores.forced),
            ).where(*window).group_by(scores.agent, scores.decision)))
            tally.histograms(session.exec(select(
                bucketed.c.agent, bucketed.c.bucket, func.count()).group_by(bucketed.c.agent, bucketed.c.bucket)))
            tally.outcomes(session.exec(select(scores.agent, scores.outcome, func.count()).where(
                *window, col(scores.outcome).is_not(None)).group_by(scores.agent, scores.outcome)))
            tally.feedback(session.exec(select(scores.agent, RelevanceFeedbackRow.feedback, func.count()).join(
                RelevanceFeedbackRow, col(RelevanceFeedbackRow.score_id) == col(scores.id),
            ).where(*window).group_by(scores.agent, RelevanceFeedbackRow.feedback)))
        agents = tally.stats()
        return RelevanceAnalytics(
            since=since, until=until, channel_id=channel_id, scored=sum(a.scored for a in agents),
            histogram=[sum(a.histogram[i] for a in agents) for i in range(HISTOGRAM_BUCKETS)], agents=agents,
        )


class _Tally:
    """Per-agent counts from the analytics queries' rows."""

    def __init__(self) -> None:
        self._decisions: dict[str, dict[Decision, int]] = defaultdict(dict)
        self._forced: dict[str, int] = defaultdict(int)
        self._totals: dict[str, float] = defaultdict(float)
        self._histograms: dict[str, list[int]] = defaultdict(lambda: [0] * HISTOGRAM_BUCKETS)
        self._outcomes: dict[str, dict[Outcome, int]] = defaultdict(dict)
        self._feedback: dict[str, dict[Feedback, int]] = defaultdict(dict)

    def decisions(self, rows: Iterable[tuple[str, str, int, float | None, int]]) -> None:
        for agent, decision, count, total, forced in rows:
            self._decisions[agent][Decision(decision)] = count
            self._totals[agent] += float(total or 0.0)
            self._forced[agent] += forced

    def histograms(self, rows: Iterable[tuple[str, int, int]]) -> None:
        for agent, bucket, count in rows:
            self._histograms[agent][int(bucket)] += count

    def outcomes(self, rows: Iterable[tuple[str, str, int]]) -> None:
        for agent, outcome, count in rows:
            self._outcomes[agent][Outcome(outcome)] = count

    def feedback(self, rows: Iterable[tuple[str, str, int]]) -> None:
        for agent, verdict, count in rows:
            self._feedback[agent][Feedback(verdict)] = count

    def stats(self) -> list[AgentRelevanceStats]:
        stats = []
        for agent in sorted(self._decisions):
            decisions = self._decisions[agent]
            scored = sum(decisions.values())
            stats.append(AgentRelevanceStats(
                agent=agent, scored=scored, decisions=decisions, forced=self._forced[agent],
                intervention_rate=round(decisions.get(Decision.INTERVENE, 0) / scored, 4),
                mean_score=round(self._totals[agent] / scored, 4), histogram=self._histograms[agent],
                outcomes=self._outcomes[agent], feedback=self._feedback[agent],
            ))
        return stats


__all__ = ["RelevanceFeedbackRow", "RelevanceScoreRow", "RelevanceStore", "UnknownScore"]
