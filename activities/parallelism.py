"""The parallelisation rate of plans over a time window, from their task runs (pure, no I/O).

Definition (also in docs/ARCHITECTURE.md): per plan, at each instant of the window,

- *runnable* = its task runs between ``ready_at`` (every dependency done, or the retry due) and
  their end: the tasks that could be running;
- *running* = its task runs between ``started_at`` and their end;
- *cap* = the plan's ``max_parallel`` (the largest its runs recorded; at least 1).

``attainable = ∫ min(runnable, cap) dt`` and ``achieved = ∫ min(running, cap, runnable) dt``; the
rate is ``Σ achieved / Σ attainable`` over the plans. It is 1 when every task that could run did,
whatever the graph's shape — a chain of dependent tasks is not "unparallel", it has nothing to run
beside — and falls when ready tasks wait while slots are free (a scheduler that serialises, too
few workers, a slow queue). No runnable time in the window: not applicable (``rate`` None).

A run with no end yet counts up to the window's end, but at most ``STALE_OPEN_HOURS`` after it
became ready: a plan that was terminated without closing its rows must not count for ever.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from models.monitoring import ParallelismStats
from models.task_runs import TaskRunView

STALE_OPEN_HOURS = 24


def _clip(start: datetime, end: datetime, since: datetime, until: datetime) -> tuple[datetime, datetime] | None:
    start, end = max(start, since), min(end, until)
    return (start, end) if start < end else None


def _plan_seconds(runs: list[TaskRunView], since: datetime, until: datetime) -> tuple[float, float]:
    """(achieved, attainable) seconds of one plan's runs in ``[since, until)``."""
    cap = max(1, max(run.max_parallel for run in runs))
    events: list[tuple[datetime, int, int]] = []  # (time, Δrunnable, Δrunning)
    for run in runs:
        if run.ready_at is None:
            continue
        end = run.ended_at or min(until, run.ready_at + timedelta(hours=STALE_OPEN_HOURS))
        ready = min(run.ready_at, run.started_at) if run.started_at else run.ready_at
        runnable = _clip(ready, end, since, until)
        if runnable:
            events += [(runnable[0], 1, 0), (runnable[1], -1, 0)]
        running = _clip(run.started_at, end, since, until) if run.started_at else None
        if running:
            events += [(running[0], 0, 1), (running[1], 0, -1)]
    events.sort(key=lambda event: event[0])
    achieved = attainable = 0.0
    runnable_now = running_now = 0
    previous: datetime | None = None
    for at, d_runnable, d_running in events:
        if previous is not None and at > previous:
            seconds = (at - previous).total_seconds()
            possible = min(runnable_now, cap)
            attainable += possible * seconds
            achieved += min(running_now, possible) * seconds
        runnable_now, running_now, previous = runnable_now + d_runnable, running_now + d_running, at
    return achieved, attainable


def parallelism(runs: Iterable[TaskRunView], since: datetime, until: datetime) -> ParallelismStats:
    by_plan: dict[str, list[TaskRunView]] = defaultdict(list)
    for run in runs:
        by_plan[run.plan_id].append(run)
    stats = ParallelismStats()
    for plan_runs in by_plan.values():
        achieved, attainable = _plan_seconds(plan_runs, since, until)
        if attainable <= 0:
            continue
        stats.plans += 1
        stats.task_runs += len(plan_runs)
        stats.running_s += achieved
        stats.attainable_s += attainable
    stats.running_s, stats.attainable_s = round(stats.running_s, 3), round(stats.attainable_s, 3)
    stats.rate = round(stats.running_s / stats.attainable_s, 4) if stats.attainable_s > 0 else None
    return stats
