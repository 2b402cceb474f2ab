"""Seven-day trends of latency, prompt-cache hit rate, parallelisation and error rate (pure, no I/O).

The rule, one for all four metrics: the last 7 days are cut in two halves of 3.5 days and the
metric is computed over each half (from the rows, not averaged from days). Each half needs enough
data (``MIN_SAMPLES``), else the trend is "insufficient data". Then:

- **latency** (mean time to first token of model calls): relative change; within ±15 % stable,
  lower is improving;
- **prompt cache** (cached / prompt tokens of calls whose server reports it), **parallelisation**
  (``activities/parallelism.py``) and **error rate** (failed / run tool calls): change in rate
  points; within ±5 points stable; a higher cache hit rate or parallelisation is improving, a
  higher error rate degrading.

Daily figures (7 days of 24 h counted back from the report's time, oldest first) come with it for charts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from activities.monitoring_rows import RunRow, UsageRow, cache_figures, failure_rate, mean_first_token
from activities.parallelism import parallelism
from models.task_runs import TaskRunView
from models.weekly_trends import DayFigures, Trend, TrendLine, WeeklyTrends

DAYS = 7
MIN_SAMPLES = {"latency": 10, "prompt_cache": 10, "parallelism": 3, "error_rate": 10}
TOLERANCE = {"latency": 0.15, "prompt_cache": 0.05, "parallelism": 0.05, "error_rate": 0.05}
HIGHER_IS_BETTER = {"latency": False, "prompt_cache": True, "parallelism": True, "error_rate": False}
RULES = {
    "latency": "mean time to first token, later 3.5 days vs earlier: within ±15 % stable; lower is better",
    "prompt_cache": "cached / prompt tokens, later 3.5 days vs earlier: within ±5 points stable; higher is better",
    "parallelism": "achieved / attainable task parallelism, later vs earlier: within ±5 points stable; higher is better",
    "error_rate": "failed / run tool calls, later 3.5 days vs earlier: within ±5 points stable; lower is better",
}


def _cache(rows: list[UsageRow]) -> tuple[float | None, int]:
    figures = cache_figures(rows)
    return figures.rate, figures.reporting_calls


def _errors(rows: list[RunRow]) -> tuple[float | None, int]:
    rate, runs, _ = failure_rate(rows)
    return rate, runs


def _line(metric: str, earlier: tuple[float | None, int], later: tuple[float | None, int]) -> TrendLine:
    line = TrendLine(metric=metric, trend=Trend.INSUFFICIENT, earlier=earlier[0], later=later[0], rule=RULES[metric])
    enough = min(earlier[1], later[1]) >= MIN_SAMPLES[metric]
    if not enough or earlier[0] is None or later[0] is None:
        return line
    if metric == "latency":
        if earlier[0] <= 0:
            return line
        change = (later[0] - earlier[0]) / earlier[0]
    else:
        change = later[0] - earlier[0]
    line.change = round(change, 4)
    if abs(change) <= TOLERANCE[metric]:
        line.trend = Trend.STABLE
    else:
        line.trend = Trend.IMPROVING if (change > 0) == HIGHER_IS_BETTER[metric] else Trend.DEGRADING
    return line


def _in(rows: list[Any], start: datetime, end: datetime) -> list[Any]:
    return [r for r in rows if start <= r.at < end]


def weekly_trends(usage: list[UsageRow], runs: list[RunRow], tasks: list[TaskRunView], until: datetime) -> WeeklyTrends:
    since = until - timedelta(days=DAYS)
    days = []
    for index in range(DAYS):
        start, end = since + timedelta(days=index), since + timedelta(days=index + 1)
        day_usage, day_runs = _in(usage, start, end), _in(runs, start, end)
        days.append(
            DayFigures(
                start=start,
                model_calls=len(day_usage),
                latency_ms=mean_first_token(day_usage)[0],
                prompt_cache_hit_rate=_cache(day_usage)[0],
                parallelism=parallelism(tasks, start, end).rate,
                tool_runs=_errors(day_runs)[1],
                error_rate=_errors(day_runs)[0],
            )
        )
    middle = since + timedelta(days=DAYS / 2)
    halves = ((since, middle), (middle, until))

    def measure(metric: str, of: Callable[[datetime, datetime], tuple[float | None, int]]) -> TrendLine:
        return _line(metric, of(*halves[0]), of(*halves[1]))

    def plans(start: datetime, end: datetime) -> tuple[float | None, int]:
        stats = parallelism(tasks, start, end)
        return stats.rate, stats.task_runs

    lines = [
        measure("latency", lambda s, e: mean_first_token(_in(usage, s, e))),
        measure("prompt_cache", lambda s, e: _cache(_in(usage, s, e))),
        measure("parallelism", plans),
        measure("error_rate", lambda s, e: _errors(_in(runs, s, e))),
    ]
    return WeeklyTrends(since=since, until=until, days=days, lines=lines)
