"""One run of one task of a plan, as the task-plan workflow records it (``store/task_runs.py``).

Monitoring reads these rows to measure parallelisation (``models.monitoring.ParallelismStats``);
the plan workflow (issue 15 points 1-3) writes them through an activity: ``started`` when it starts
a task (with when the task became ready and the plan's parallel limit), ``ended`` when it ends.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from models.contract import Contract


class TaskOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Never started: a dependency failed (no ``started_at``; not counted as runnable)."""
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class TaskRunView(Contract):
    plan_id: str
    task_id: str
    attempt: int = 1
    agent: str | None = None
    ready_at: datetime | None = None
    """When every dependency was done (or the retry was due): from then on the task could run."""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    """None while it runs."""
    outcome: TaskOutcome | None = None
    max_parallel: int = 3
    """The plan's limit on tasks running at once when this one started."""
