"""The figures a monitoring run adds beyond usage, budgets and tools: prompt cache, parallelisation,
the window against its 7-day baseline (regression and error-spike evidence) and the 7-day trends.

One read of each table per run — model calls and tool calls of the last 7 days plus the window,
and the plans' task runs — then pure computation (``baselines.py``, ``parallelism.py``,
``weekly_trends.py``). Only the columns needed are selected. ``python -m bench.monitoring`` (SQLite,
load 1.0): 117 ms at 1 000 model and tool calls a day (14 000 rows read), 766 ms at 10 000
(141 000 rows) — in a worker thread, once every ``monitoring_interval_s`` (5 min); the figures
add ~3.6 KiB to the round's history.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from activities.baselines import error_comparison, latency_comparisons, prompt_cache
from activities.monitoring_rows import RunRow, UsageRow
from activities.parallelism import parallelism
from activities.weekly_trends import DAYS, weekly_trends
from models.monitoring import MetricsSnapshot
from models.task_runs import TaskRunView
from models.weekly_trends import WeeklyTrends
from store.tables import Action, ModelUsage
from store.task_runs import TaskRunStore

BASELINE_DAYS = 7
"""The window is compared with the same figures over the 7 days before it."""


def _usage_rows(session: Session, since: datetime, until: datetime) -> list[UsageRow]:
    query = select(
        ModelUsage.created_at,
        ModelUsage.model,
        ModelUsage.load_duration_ms,
        ModelUsage.prompt_eval_duration_ms,
        ModelUsage.prompt_tokens,
        ModelUsage.cached_prompt_tokens,
    ).where(col(ModelUsage.created_at) >= since, col(ModelUsage.created_at) <= until)
    return [
        UsageRow(at, model, None if load is None and prompt_ms is None else (load or 0) + (prompt_ms or 0), tokens, cached)
        for at, model, load, prompt_ms, tokens, cached in session.exec(query)
    ]


def _run_rows(session: Session, since: datetime, until: datetime) -> list[RunRow]:
    query = select(Action.created_at, Action.tool, Action.success, Action.duration_ms).where(
        col(Action.created_at) >= since, col(Action.created_at) <= until
    )
    return [RunRow(at, tool, success, duration) for at, tool, success, duration in session.exec(query)]


def _rows(engine: Engine, since: datetime, until: datetime) -> tuple[list[UsageRow], list[RunRow], list[TaskRunView]]:
    with Session(engine) as session:
        usage = _usage_rows(session, since, until)
        runs = _run_rows(session, since, until)
    return usage, runs, TaskRunStore(engine).overlapping(since, until)


def weekly_figures(engine: Engine, at: datetime) -> WeeklyTrends:
    """The 7 days before ``at``, computed now (``GET /monitoring/trends/7d``)."""
    return weekly_trends(*_rows(engine, at - timedelta(days=DAYS), at), at)


def with_performance_figures(engine: Engine, snapshot: MetricsSnapshot) -> MetricsSnapshot:
    """``snapshot`` with its prompt cache, parallelism, baseline comparisons and weekly trends set."""
    at = snapshot.at
    window_start = at - timedelta(minutes=snapshot.window_minutes)
    baseline_start = window_start - timedelta(days=BASELINE_DAYS)
    usage, runs, tasks = _rows(engine, min(baseline_start, at - timedelta(days=DAYS)), at)
    recent_usage = [r for r in usage if r.at >= window_start]
    past_usage = [r for r in usage if baseline_start <= r.at < window_start]
    recent_runs = [r for r in runs if r.at >= window_start]
    past_runs = [r for r in runs if baseline_start <= r.at < window_start]

    def timed(rows: list[RunRow]) -> list[tuple[str, float | None]]:
        return [(r.tool, r.duration_ms) for r in rows if r.success is not None]

    return snapshot.model_copy(
        update={
            "prompt_cache": prompt_cache(recent_usage),
            "parallelism": parallelism(tasks, window_start, at),
            "latency_vs_baseline": [
                *latency_comparisons(
                    "model", [(r.model, r.first_token_ms) for r in recent_usage], [(r.model, r.first_token_ms) for r in past_usage]
                ),
                *latency_comparisons("tool", timed(recent_runs), timed(past_runs)),
            ],
            "tool_errors_vs_baseline": error_comparison(recent_runs, past_runs),
            "weekly": weekly_trends(usage, runs, tasks, at),
        }
    )
