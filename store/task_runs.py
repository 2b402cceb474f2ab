"""``task_runs``: one row per run of a plan's task, written by the task-plan workflow, read by monitoring.

**For the plan workflow** (issue 15 points 1-3): record every task attempt through an activity
that calls ``TaskRunStore.started`` when it starts the task and ``ended`` when it is over, and
``skipped`` for a task that will never run (a dependency failed). The columns:

- ``plan_id``, ``task_id``, ``attempt`` (1, 2… — one row per attempt if the plan retries a task
  itself; one row with attempt 1 if Temporal retries the activity): unique, so a retried
  activity writes the same row again (idempotent).
- ``ready_at``: when the task could have started — its last dependency done, or its retry due.
  Monitoring compares this with ``started_at``: a task that waited with a slot free is
  parallelism lost.
- ``started_at``, ``ended_at`` (NULL while running), ``outcome`` (``models.task_runs.TaskOutcome``).
- ``max_parallel``: the plan's limit on tasks running at once (3 by default) when it started.
- ``agent``: who did the task, if an agent did.

Monitoring's parallelisation rate (``activities/parallelism.py``) is computed from these rows only.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, UniqueConstraint, or_
from sqlmodel import Field, Session, SQLModel, col, select

from models.task_runs import TaskOutcome, TaskRunView
from store.tables import UTCDateTime, utcnow


class TaskRun(SQLModel, table=True):
    __tablename__ = "task_runs"
    __table_args__ = (UniqueConstraint("plan_id", "task_id", "attempt", name="uq_task_runs_plan_task_attempt"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(index=True)
    task_id: str
    attempt: int = 1
    agent: str | None = None
    ready_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    outcome: str | None = None
    max_parallel: int = 3
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def _view(row: TaskRun) -> TaskRunView:
    return TaskRunView(
        plan_id=row.plan_id,
        task_id=row.task_id,
        attempt=row.attempt,
        agent=row.agent,
        ready_at=row.ready_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        outcome=TaskOutcome(row.outcome) if row.outcome else None,
        max_parallel=row.max_parallel,
    )


class TaskRunStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _row(self, session: Session, plan_id: str, task_id: str, attempt: int) -> TaskRun:
        row = session.exec(
            select(TaskRun).where(TaskRun.plan_id == plan_id, TaskRun.task_id == task_id, TaskRun.attempt == attempt)
        ).first()
        return row or TaskRun(plan_id=plan_id, task_id=task_id, attempt=attempt)

    def started(
        self,
        plan_id: str,
        task_id: str,
        ready_at: datetime,
        started_at: datetime,
        max_parallel: int,
        attempt: int = 1,
        agent: str | None = None,
    ) -> None:
        """The task starts (again, if the activity is retried: the same row is written)."""
        with Session(self._engine) as session:
            row = self._row(session, plan_id, task_id, attempt)
            row.ready_at, row.started_at, row.max_parallel, row.agent = ready_at, started_at, max_parallel, agent
            session.add(row)
            session.commit()

    def ended(self, plan_id: str, task_id: str, ended_at: datetime, outcome: TaskOutcome, attempt: int = 1) -> None:
        with Session(self._engine) as session:
            row = self._row(session, plan_id, task_id, attempt)
            row.ended_at, row.outcome = ended_at, outcome.value
            session.add(row)
            session.commit()

    def skipped(self, plan_id: str, task_id: str, at: datetime) -> None:
        """A task that will never run (a dependency failed): no ``ready_at``, no ``started_at``."""
        self.ended(plan_id, task_id, at, TaskOutcome.SKIPPED)

    def overlapping(self, since: datetime, until: datetime) -> list[TaskRunView]:
        """Runs that could run at some time in ``[since, until)``: ready before ``until``, not ended before ``since``."""
        with Session(self._engine) as session:
            query = select(TaskRun).where(
                col(TaskRun.ready_at).is_not(None),
                col(TaskRun.ready_at) < until,
                or_(col(TaskRun.ended_at).is_(None), col(TaskRun.ended_at) > since),
            )
            return [_view(row) for row in session.exec(query.order_by(col(TaskRun.id)))]
