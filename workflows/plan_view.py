"""How a plan reads to a person, pure: the counts by state and the Web UI's current-details line
(``4/9 done · running: build, test · waiting: deploy``)."""

from __future__ import annotations

from collections.abc import Sequence

from models.plan import FINISHED, CarriedPlan, PlanState, TaskState, TaskStatus

NAMES_SHOWN = 6
BUSY = (TaskState.RUNNING, TaskState.AWAITING_APPROVAL)


def counts(tasks: Sequence[TaskStatus]) -> dict[str, int]:
    """Every state, in ``TaskState`` order (zeros included: a stable shape for clients)."""
    return {state.value: sum(1 for t in tasks if t.state == state) for state in TaskState}


def _names(tasks: Sequence[TaskStatus]) -> str:
    names = [t.spec.id for t in tasks[:NAMES_SHOWN]]
    return ", ".join(names) + (f" +{len(tasks) - NAMES_SHOWN}" if len(tasks) > NAMES_SHOWN else "")


def describe(state: PlanState, plan: CarriedPlan, reason: str | None) -> str:
    tasks = plan.tasks
    done = sum(1 for t in tasks if t.state in FINISHED)
    parts = [f"{done}/{len(tasks)} done"]
    if state in (PlanState.ENDED, PlanState.FAILED, PlanState.SUCCEEDED):
        failed = [t for t in tasks if t.state in (TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED)]
        parts.insert(0, state.value + (f": {reason}" if reason else ""))
        if failed:
            parts.append(f"not done: {_names(failed)}")
        return " · ".join(parts)
    if state == PlanState.PAUSED:
        parts.insert(0, f"paused: {plan.pause_reason}" if plan.pause_reason else "paused")
    running = [t for t in tasks if t.state in BUSY]
    approvals = [t for t in running if t.state == TaskState.AWAITING_APPROVAL]
    waiting = [t for t in tasks if t.state in (TaskState.WAITING, TaskState.READY, TaskState.RETRY_WAIT)]
    if running:
        parts.append(f"running: {_names(running)}")
    if approvals:
        calls = [f"{t.spec.id} ({', '.join(t.waiting_calls) or 'a tool call'})" for t in approvals]
        parts.append(f"awaiting approval: {', '.join(calls)}")
    if waiting:
        parts.append(f"waiting: {_names(waiting)}")
    return " · ".join(parts)
