"""The health score (0-100), the overall status and the alert conditions: pure functions, no I/O.

Kept apart from the activities that gather the inputs so that the formula can be tested on known
inputs and read in one place. The formula (also in docs/ARCHITECTURE.md §7):

    score = round(100 × (0.35·D + 0.20·L + 0.20·T + 0.15·A + 0.10·C))

- **D, dependencies**: mean over the checks that ran (skipped ones are left out) of
  ok = 1, degraded = 0.5, down = 0. A dependency is the biggest weight: nothing works without it.
- **L, model server**: ½·latency + ½·(1 − error rate). Latency is the mean time to first token
  (load + prompt evaluation) of the window's model calls: 1 up to ``llm_latency_warning_ms``,
  0 from ``llm_latency_critical_ms``, linear between (1 when there were no calls). The error rate
  is the share of monitoring runs of the trend window, this one included, whose model-server
  probes failed (any provider) (the store records successful model calls only, so failures are observed by probing).
- **T, tools**: success rate of the tool calls that ran in the window (1 when none ran).
- **A, approvals**: ½·backlog + ½·wait. Backlog is 1 − pending/``approval_backlog_critical``
  (floored at 0); wait is 1 up to ``approval_wait_warning_s`` for the oldest pending approval, 0
  from ``approval_wait_critical_s``, linear between.
- **C, cache**: 1 while the indexed cache is within its threshold, falling linearly to 0 at twice
  the threshold.

Status: ``critical`` when the score is under 50 or any critical condition holds, ``degraded`` under
80 or with any warning, else ``healthy``.
"""

from __future__ import annotations

from models.monitoring import (
    AlertCondition,
    BudgetLevel,
    CheckStatus,
    DependencyCheck,
    HealthStatus,
    HealthThresholds,
    MetricsSnapshot,
    ScoreBreakdown,
    Severity,
)

WEIGHTS = {"dependencies": 0.35, "llm": 0.20, "tools": 0.20, "approvals": 0.15, "cache": 0.10}
CHECK_VALUE = {CheckStatus.OK: 1.0, CheckStatus.DEGRADED: 0.5, CheckStatus.DOWN: 0.0}
MIN_TOOL_RUNS_FOR_ALERT = 5
"""Fewer runs than this never raise a tool-failure alert: one failed call is not a pattern."""


def _falling(value: float | None, good: float, bad: float) -> float:
    """1 up to ``good``, 0 from ``bad``, linear between; 1 when there is no value."""
    if value is None or value <= good:
        return 1.0
    if value >= bad or bad <= good:
        return 0.0
    return 1.0 - (value - good) / (bad - good)


def llm_latency_ms(metrics: MetricsSnapshot) -> float | None:
    """Call-weighted mean time to first token over the window's model calls."""
    weighted = [(u.avg_first_token_ms, u.calls) for u in metrics.usage if u.avg_first_token_ms is not None and u.calls]
    calls = sum(c for _, c in weighted)
    return sum(ms * c for ms, c in weighted) / calls if calls else None


def health_score(
    checks: list[DependencyCheck], metrics: MetricsSnapshot, llm_error_rate: float, thresholds: HealthThresholds
) -> ScoreBreakdown:
    counted = [CHECK_VALUE[c.status] for c in checks if c.status != CheckStatus.SKIPPED]
    dependencies = sum(counted) / len(counted) if counted else 1.0

    latency = llm_latency_ms(metrics)
    error_rate = min(max(llm_error_rate, 0.0), 1.0)
    llm = 0.5 * _falling(latency, thresholds.llm_latency_warning_ms, thresholds.llm_latency_critical_ms) + 0.5 * (
        1.0 - error_rate
    )

    rate = metrics.tools.success_rate
    tools = 1.0 if rate is None else rate

    backlog = max(0.0, 1.0 - metrics.approvals.pending / max(thresholds.approval_backlog_critical, 1))
    wait = _falling(metrics.approvals.oldest_wait_s, thresholds.approval_wait_warning_s, thresholds.approval_wait_critical_s)
    approvals = 0.5 * backlog + 0.5 * wait

    cache_stats = metrics.cache
    if cache_stats.threshold_bytes <= 0 or cache_stats.total_bytes <= cache_stats.threshold_bytes:
        cache = 1.0
    else:
        cache = max(0.0, 2.0 - cache_stats.total_bytes / cache_stats.threshold_bytes)

    parts = {"dependencies": dependencies, "llm": llm, "tools": tools, "approvals": approvals, "cache": cache}
    score = round(100 * sum(WEIGHTS[name] * value for name, value in parts.items()))
    return ScoreBreakdown(
        score=max(0, min(100, score)),
        **{name: round(value, 4) for name, value in parts.items()},
        llm_error_rate=round(error_rate, 4),
        llm_latency_ms=None if latency is None else round(latency, 1),
    )


def conditions(
    checks: list[DependencyCheck], metrics: MetricsSnapshot, breakdown: ScoreBreakdown, thresholds: HealthThresholds
) -> list[AlertCondition]:
    """Every alert condition that holds now; the store de-duplicates them into alerts."""
    found: list[AlertCondition] = []

    def add(key: str, kind: str, severity: Severity, message: str) -> None:
        found.append(AlertCondition(key=key, kind=kind, severity=severity, message=message))

    for check in checks:
        if check.status == CheckStatus.DOWN:
            add(f"dependency:{check.name}", "dependency", Severity.CRITICAL, f"{check.name} is down: {check.detail}")
        elif check.status == CheckStatus.DEGRADED:
            add(f"dependency:{check.name}", "dependency", Severity.WARNING, f"{check.name} is degraded: {check.detail}")

    for budget in metrics.budgets:
        if budget.level != BudgetLevel.OK:
            add(
                f"budget:{budget.model}",
                "budget",
                Severity(budget.level.value),
                f"{budget.model}: {budget.left_pct:.1f}% of its token budget left "
                f"({budget.used_tokens}/{budget.budget_tokens} tokens in {budget.window_hours:g} h)",
            )

    latency = breakdown.llm_latency_ms
    if latency is not None and latency > thresholds.llm_latency_warning_ms:
        severity = Severity.CRITICAL if latency >= thresholds.llm_latency_critical_ms else Severity.WARNING
        add("llm:latency", "llm", severity, f"model time to first token averages {latency:.0f} ms")
    if breakdown.llm_error_rate >= thresholds.llm_error_rate_warning:
        add("llm:errors", "llm", Severity.WARNING, f"{breakdown.llm_error_rate:.0%} of recent model-server probes failed")

    rate = metrics.tools.success_rate
    if rate is not None and metrics.tools.runs >= MIN_TOOL_RUNS_FOR_ALERT and rate < thresholds.tool_success_warning:
        severity = Severity.CRITICAL if rate < thresholds.tool_success_critical else Severity.WARNING
        add(
            "tools:failures",
            "tools",
            severity,
            f"tool success rate {rate:.0%} ({metrics.tools.failures} of {metrics.tools.runs} runs failed)",
        )

    pending = metrics.approvals.pending
    if pending >= thresholds.approval_backlog_warning:
        severity = Severity.CRITICAL if pending >= thresholds.approval_backlog_critical else Severity.WARNING
        add("approvals:backlog", "approvals", severity, f"{pending} conversations wait for an approval")
    oldest = metrics.approvals.oldest_wait_s
    if oldest is not None and oldest >= thresholds.approval_wait_warning_s:
        severity = Severity.CRITICAL if oldest >= thresholds.approval_wait_critical_s else Severity.WARNING
        add("approvals:wait", "approvals", severity, f"an approval has waited {oldest / 60:.0f} min")

    cache = metrics.cache
    if cache.threshold_bytes and cache.total_bytes > cache.threshold_bytes:
        add(
            "cache:size",
            "cache",
            Severity.WARNING,
            f"cache holds {cache.total_bytes / 1e6:.0f} MB, over its {cache.threshold_bytes / 1e6:.0f} MB threshold",
        )
    return found


def overall_status(score: int, found: list[AlertCondition]) -> HealthStatus:
    if score < 50 or any(c.severity == Severity.CRITICAL for c in found):
        return HealthStatus.CRITICAL
    if score < 80 or found:
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY
