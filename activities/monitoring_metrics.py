"""Prometheus gauges of scheduled monitoring, on prometheus_client's default registry.

Set by ``health.record`` when a monitoring run completes, so any ``/metrics`` endpoint that serves
the default registry of a worker process exports them. They describe the whole installation (read
from the store), so every worker that ran a monitoring run reports the same figures.
"""

from __future__ import annotations

from prometheus_client import Gauge

from models.monitoring import AlertView, BudgetStatus, DependencyCheck, Severity

HEALTH_SCORE = Gauge("daemonflow_health_score", "Health score 0-100 of the last monitoring run")
ALERTS_ACTIVE = Gauge("daemonflow_alerts_active", "Open alerts after the last monitoring run", ["severity"])
BUDGET_LEFT_RATIO = Gauge(
    "daemonflow_budget_left_ratio", "Share (0-1) of the model's token budget left in its window", ["model"]
)
BUDGET_LEFT_TOKENS = Gauge("daemonflow_budget_left_tokens", "Tokens left in the model's budget window", ["model"])
DEPENDENCY_UP = Gauge(
    "daemonflow_dependency_up", "1 ok, 0.5 degraded, 0 down, per dependency probed by monitoring", ["dependency"]
)

_VALUE = {"ok": 1.0, "degraded": 0.5, "down": 0.0}


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
