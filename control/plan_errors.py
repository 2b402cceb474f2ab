"""What can go wrong when talking to a task plan (``control/plans.py``), as domain errors; the API
maps them to problems (``api/errors.py``), the CLI to messages and exit codes."""

from __future__ import annotations

from control.errors import ControlError


class PlanNotFound(ControlError):
    def __init__(self, ref: str, looked_for: str) -> None:
        super().__init__(f"no plan {ref!r} (looked for workflow id {looked_for!r})")
        self.ref = ref


class PlanExists(ControlError):
    def __init__(self, plan_id: str) -> None:
        super().__init__(f"plan id {plan_id!r} is already used; choose another or leave it out")
        self.plan_id = plan_id


class PlanInvalid(ControlError):
    """The plan (or the tasks to add) is not a valid DAG, or names what does not exist."""


class PlanOver(ControlError):
    """The plan has ended (or is ending): it takes no more tasks, cancels or priorities."""


class TaskNotFound(ControlError):
    """The plan has no task of that id."""


class TaskNotChangeable(ControlError):
    """The task is already over (cancel) or already started (reprioritise)."""
