"""Prometheus gauges of scheduled monitoring, on prometheus_client's default registry.

Set by ``health.record`` when a monitoring run completes, so any ``/metrics`` endpoint that serves
the default registry of a worker process exports them. They describe the whole installation (read
from the store), so every worker that ran a monitoring run reports the same figures.
"""

from __future__ import annotations

from prometheus_client import Gauge

from models.monitoring import AlertView, BudgetStatus, DependencyCheck, ScoreBreakdown, Severity
from models.weekly_trends import Trend, WeeklyTrends

HEALTH_SCORE = Gauge("daemonflow_health_score", "Health score 0-100 of the last monitoring run")
ALERTS_ACTIVE = Gauge("daemonflow_alerts_active", "Open alerts after the last monitoring run", ["severity"])
BUDGET_LEFT_RATIO = Gauge(
    "daemonflow_budget_left_ratio", "Share (0-1) of the model's token budget left in its window", ["model"]
)
BUDGET_LEFT_TOKENS = Gauge("daemonflow_budget_left_tokens", "Tokens left in the model's budget window", ["model"])
DEPENDENCY_UP = Gauge(
    "daemonflow_dependency_up", "1 ok, 0.5 degraded, 0 down, per dependency probed by monitoring", ["dependency"]
)

HEALTH_PART = Gauge(
    "daemonflow_health_part",
    "Each part of the health score, 0-1; absent while the part has no data (not applicable)",
    ["part"],
)
PROMPT_CACHE_HIT_RATIO = Gauge(
    "daemonflow_prompt_cache_hit_ratio",
    "Cached / prompt tokens of the window's model calls whose server reports its prompt cache (NaN: no data)",
)
PARALLELISM_RATIO = Gauge(
    "daemonflow_parallelism_ratio", "Achieved / attainable parallelism of plans' tasks in the window (NaN: no data)"
)
TREND = Gauge(
    "daemonflow_trend",
    "7-day trend per metric: 1 improving, 0 stable, -1 degrading; absent with insufficient data",
    ["metric"],
)
OPTIMISATION_HINTS_ACTIVE = Gauge(
    "daemonflow_optimisation_hints_active", "Optimisation hints in force after the last optimisation review"
)

_VALUE = {"ok": 1.0, "degraded": 0.5, "down": 0.0}
_TREND = {Trend.IMPROVING: 1.0, Trend.STABLE: 0.0, Trend.DEGRADING: -1.0}
_PARTS = ("dependencies", "llm", "tools", "approvals", "cache", "prompt_cache", "parallelism")


def update(score: int, alerts: list[AlertView], budgets: list[BudgetStatus], checks: list[DependencyCheck]) -> None:
    HEALTH_SCORE.set(score)
    for severity in Severity:
        ALERTS_ACTIVE.labels(severity=severity.value).set(sum(a.severity == severity for a in alerts))
    for budget in budgets:
        BUDGET_LEFT_RATIO.labels(model=budget.model).set(budget.left_pct / 100)
        BUDGET_LEFT_TOKENS.labels(model=budget.model).set(max(0, budget.budget_tokens - budget.used_tokens))
    for check in checks:
        if check.status.value in _VALUE:
            DEPENDENCY_UP.labels(dependency=check.name).set(_VALUE[check.status.value])


def _labelled(gauge: Gauge, label: str, values: dict[str, float | None]) -> None:
    """Set each labelled value; a value that is None removes its sample (no data is not zero)."""
    for name, value in values.items():
        if value is None:
            try:
                gauge.remove(name)
            except KeyError:
                pass
        else:
            gauge.labels(**{label: name}).set(value)


def update_performance(breakdown: ScoreBreakdown, weekly: WeeklyTrends | None) -> None:
    _labelled(HEALTH_PART, "part", {part: getattr(breakdown, part) for part in _PARTS})
    nan = float("nan")
    PROMPT_CACHE_HIT_RATIO.set(nan if breakdown.prompt_cache_hit_rate is None else breakdown.prompt_cache_hit_rate)
    PARALLELISM_RATIO.set(nan if breakdown.parallelism_rate is None else breakdown.parallelism_rate)
    if weekly is not None:
        _labelled(TREND, "metric", {line.metric: _TREND.get(line.trend) for line in weekly.lines})


def update_hints(active: int) -> None:
    OPTIMISATION_HINTS_ACTIVE.set(active)
