"""What ``TaskPlanWorkflow`` hands its activities (``activities/plans.py``) and gets back."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.conversation import Contract
from models.plan import TaskSpec
from models.task_runs import TaskOutcome


class CheckTasks(Contract):
    tasks: list[TaskSpec]


class CheckedTasks(Contract):
    max_parallel: int
    """The worker's ``DAEMONFLOW_PLAN_MAX_PARALLEL``: the limit of a plan that sets none."""
    refused: dict[str, str] = Field(default_factory=dict)
    """Task id → why it cannot run here (unknown agent template, a tool its template does not offer)."""


class TaskRunRecord(Contract):
    """One ``task_runs`` write: ``started`` (with ``ready_at``, ``max_parallel``, ``agent``),
    ``ended`` (with ``outcome``) or ``skipped``."""

    plan_id: str
    task_id: str
    attempt: int = 1
    at: datetime
    ready_at: datetime | None = None
    max_parallel: int = 3
    agent: str | None = None
    outcome: TaskOutcome | None = None
