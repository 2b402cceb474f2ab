"""``agent_hints``: per-agent settings applied by the optimisation review, and their journal.

A row is one application of one hint: the agent, the kind (``models.optimisation.HintKind``), the
value and the value it replaced, when and by which review run, why, on which evidence, when it
lapses, and — once reverted — when, by whom and why. The hints in force are the rows not reverted
and not expired; ``active_key`` (``agent:kind`` while in force, NULL once reverted) keeps at most
one per agent and kind even if two reviews race, as ``alerts.open_key`` does for alerts.

What reads them: ``transcript.open`` (``activities/transcript.py``) asks ``step_budget(agent)``
when a conversation opens and lowers the template's ``max_steps_per_turn`` with it, so every new
conversation of the agent stops a turn after that many model steps. Running conversations keep
the budget they opened with (it is part of their carried template), so a hint never changes a
history being replayed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Engine, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from models.optimisation import AgentHintView, HintKind, HintProposal
from store.tables import UTCDateTime, utcnow

REVIEW = "optimisation-review"
"""``applied_by`` / ``reverted_by`` of what the review itself does."""


class HintNotFound(LookupError):
    pass


class HintAlreadyReverted(Exception):
    def __init__(self, hint: AgentHintView) -> None:
        super().__init__(f"hint #{hint.id} was already reverted at {hint.reverted_at} by {hint.reverted_by}")
        self.hint = hint


class AgentHint(SQLModel, table=True):
    __tablename__ = "agent_hints"
    __table_args__ = (UniqueConstraint("active_key", name="uq_agent_hints_active_key"),)

    id: int | None = Field(default=None, primary_key=True)
    agent: str = Field(index=True)
    kind: str
    value: int
    previous: int
    active_key: str | None = None
    """``agent:kind`` while the hint is in force, NULL once reverted."""
    applied_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    applied_by: str = REVIEW
    run_id: str = ""
    reason: str = Field(default="", sa_type=Text)
    evidence: list[str] = Field(default_factory=list, sa_type=JSON)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    reverted_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    reverted_by: str | None = None
    revert_reason: str | None = None


def _view(row: AgentHint) -> AgentHintView:
    return AgentHintView(
        id=row.id or 0,
        agent=row.agent,
        kind=HintKind(row.kind),
        value=row.value,
        previous=row.previous,
        applied_at=row.applied_at,
        applied_by=row.applied_by,
        run_id=row.run_id,
        reason=row.reason,
        evidence=list(row.evidence or []),
        revert=f"daemonflow optimisations revert {row.id}  |  POST /optimisations/{row.id}/revert",
        expires_at=row.expires_at,
        reverted_at=row.reverted_at,
        reverted_by=row.reverted_by,
        revert_reason=row.revert_reason,
    )


class AgentHintStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- what the product reads --

    def step_budget(self, agent: str, now: datetime | None = None) -> int | None:
        """The agent's step budget hint in force now, or None."""
        now = now or utcnow()
        with Session(self._engine) as session:
            return session.exec(
                select(AgentHint.value).where(
                    AgentHint.active_key == f"{agent}:{HintKind.MAX_STEPS_PER_TURN.value}", col(AgentHint.expires_at) > now
                )
            ).first()

    # -- the review --

    def apply(self, proposal: HintProposal, at: datetime, run_id: str) -> AgentHintView | None:
        """Put a hint in force; None when the agent already has one of that kind (another review
        won). Idempotent per review run: a retried call returns the hint it applied."""
        with Session(self._engine, expire_on_commit=False) as session:
            done = session.exec(
                select(AgentHint).where(
                    AgentHint.run_id == run_id, AgentHint.agent == proposal.agent, AgentHint.kind == proposal.kind.value
                )
            ).first()
            if done is not None:
                return _view(done)
            row = AgentHint(
                agent=proposal.agent,
                kind=proposal.kind.value,
                value=proposal.value,
                previous=proposal.previous,
                active_key=f"{proposal.agent}:{proposal.kind.value}",
                applied_at=at,
                run_id=run_id,
                reason=proposal.reason,
                evidence=proposal.evidence,
                expires_at=proposal.expires_at,
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:
                return None
            return _view(row)

    def expire(self, hint_id: int, at: datetime) -> bool:
        """A hint past its expiry goes out of force; False if a person reverted it first."""
        with Session(self._engine) as session:
            row = session.get(AgentHint, hint_id)
            if row is None or row.reverted_at is not None:
                return row is not None and row.reverted_by == REVIEW  # a retry: already expired by a review
            row.reverted_at, row.reverted_by, row.active_key = at, REVIEW, None
            row.revert_reason = f"expired (applied {row.applied_at:%Y-%m-%d %H:%M} UTC, until {row.expires_at:%Y-%m-%d %H:%M} UTC)"
            session.add(row)
            session.commit()
            return True

    # -- operators --

    def revert(self, hint_id: int, by: str, reason: str | None = None, at: datetime | None = None) -> AgentHintView:
        """Take a hint out of force now; ``HintNotFound`` / ``HintAlreadyReverted`` otherwise."""
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.get(AgentHint, hint_id)
            if row is None:
                raise HintNotFound(f"no optimisation #{hint_id}")
            if row.reverted_at is not None:
                raise HintAlreadyReverted(_view(row))
            row.reverted_at, row.reverted_by, row.revert_reason, row.active_key = at or utcnow(), by, reason, None
            session.add(row)
            session.commit()
            return _view(row)

    def get(self, hint_id: int) -> AgentHintView | None:
        with Session(self._engine) as session:
            row = session.get(AgentHint, hint_id)
            return _view(row) if row else None

    def list(self, active_only: bool = False, agent: str | None = None, limit: int = 100) -> list[AgentHintView]:
        """Newest first: the hints in force (not reverted), or the whole journal."""
        with Session(self._engine) as session:
            query = select(AgentHint).order_by(col(AgentHint.id).desc())
            if active_only:
                query = query.where(col(AgentHint.active_key).is_not(None))
            if agent is not None:
                query = query.where(AgentHint.agent == agent)
            return [_view(row) for row in session.exec(query.limit(limit))]

    def reverted_by_operators(self, since: datetime) -> list[AgentHintView]:
        """Hints a person reverted at or after ``since`` (the review's cooldown)."""
        with Session(self._engine) as session:
            query = select(AgentHint).where(col(AgentHint.reverted_at) >= since, AgentHint.reverted_by != REVIEW)
            return [_view(row) for row in session.exec(query.order_by(col(AgentHint.id)))]
