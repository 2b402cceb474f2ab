"""The health score (0-100), the overall status and the alert conditions: pure functions, no I/O.

Kept apart from the activities that gather the inputs so that the formula can be tested on known
inputs and read in one place. The formula (also in docs/ARCHITECTURE.md §7):

    score = round(100 × Σ wᵢ·Pᵢ / Σ wᵢ)      over the parts Pᵢ that apply (each 0..1)

    part              weight   P
    D dependencies    0.30     mean over the checks that ran of ok = 1, degraded = ½, down = 0
    L model server    0.20     mean of latency and (1 − error rate), each when it has data
    T tools           0.15     success rate of the tool calls that ran in the window
    A approvals       0.10     ½·backlog + ½·wait
    C cache size      0.05     1 within the cache threshold, 0 at twice it
    K prompt cache    0.10     hit rate / 0.70, at most 1 (penalty below 70 %, seed 004)
    P parallelisation 0.10     rate / 0.30, at most 1 (penalty below 30 %, seed 004)

A part with no data in the window is *not applicable*: it is left out of both sums (the others
weigh proportionally more) and ``ScoreBreakdown.not_applicable`` says why — never a silent 1.
The weights sum to 1, so with every part applicable the score is the plain weighted sum, and it
always lies in 0..100.

- **L**: latency is the mean time to first token (load + prompt evaluation) of the window's model
  calls: 1 up to ``llm_latency_warning_ms``, 0 from ``llm_latency_critical_ms``, linear between.
  The error rate is the share of monitoring runs of the trend window, this one included, whose
  model-server probes failed (any provider) (the store records successful model calls only).
- **A**: backlog is 1 − pending/``approval_backlog_critical`` (floored at 0); wait is 1 up to
  ``approval_wait_warning_s`` for the oldest pending approval, 0 from ``approval_wait_critical_s``.
- **K**: cached / prompt tokens of the window's model calls whose server reports its prompt
  cache (``models.monitoring.PromptCacheStats``); Ollama does not, so with Ollama alone K is not
  applicable.
- **P**: achieved / attainable parallelism of the plans' tasks (``activities/parallelism.py``).

Status: ``critical`` when the score is under 50 or any critical condition holds, ``degraded`` under
80 or with any warning, else ``healthy``.
"""

from __future__ import annotations

from activities.performance_alerts import performance_conditions
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

WEIGHTS = {
    "dependencies": 0.30,
    "llm": 0.20,
    "tools": 0.15,
    "approvals": 0.10,
    "cache": 0.05,
    "prompt_cache": 0.10,
    "parallelism": 0.10,
}
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


def _rising(value: float, full_at: float) -> float:
    """``value / full_at``, at most 1 (1 from ``full_at``, a penalty below it)."""
    return 1.0 if full_at <= 0 else min(1.0, max(0.0, value) / full_at)


def llm_latency_ms(metrics: MetricsSnapshot) -> float | None:
    """Call-weighted mean time to first token over the window's model calls."""
    weighted = [(u.avg_first_token_ms, u.calls) for u in metrics.usage if u.avg_first_token_ms is not None and u.calls]
    calls = sum(c for _, c in weighted)
    return sum(ms * c for ms, c in weighted) / calls if calls else None


def _model_server(latency: float | None, error_rate: float | None, thresholds: HealthThresholds) -> float | None:
    halves = []
    if latency is not None:
        halves.append(_falling(latency, thresholds.llm_latency_warning_ms, thresholds.llm_latency_critical_ms))
    if error_rate is not None:
        halves.append(1.0 - error_rate)
    return sum(halves) / len(halves) if halves else None


def _parts(
    checks: list[DependencyCheck], metrics: MetricsSnapshot, latency: float | None, error_rate: float | None,
    thresholds: HealthThresholds,
) -> tuple[dict[str, float | None], dict[str, str]]:  # fmt: skip
    """Every part's value, None where it has no data, and why."""
    counted = [CHECK_VALUE[c.status] for c in checks if c.status != CheckStatus.SKIPPED]
    backlog = max(0.0, 1.0 - metrics.approvals.pending / max(thresholds.approval_backlog_critical, 1))
    wait = _falling(metrics.approvals.oldest_wait_s, thresholds.approval_wait_warning_s, thresholds.approval_wait_critical_s)
    size = metrics.cache
    over = size.threshold_bytes > 0 and size.total_bytes > size.threshold_bytes
    hit_rate, rate = metrics.prompt_cache.hit_rate, metrics.parallelism.rate
    parts: dict[str, float | None] = {
        "dependencies": sum(counted) / len(counted) if counted else None,
        "llm": _model_server(latency, error_rate, thresholds),
        "tools": metrics.tools.success_rate,
        "approvals": 0.5 * backlog + 0.5 * wait,
        "cache": max(0.0, 2.0 - size.total_bytes / size.threshold_bytes) if over else 1.0,
        "prompt_cache": None if hit_rate is None else _rising(hit_rate, thresholds.prompt_cache_full_at),
        "parallelism": None if rate is None else _rising(rate, thresholds.parallelism_full_at),
    }
    calls = metrics.prompt_cache.calls
    reasons = {
        "dependencies": "no dependency check ran",
        "llm": "no model call and no probe of the model server in the window",
        "tools": "no tool call ran in the window",
        "prompt_cache": "no model call in the window" if not calls else
        f"none of the window's {calls} model calls reported cached prompt tokens (Ollama does not report them)",
        "parallelism": "no task of a plan could run in the window",
    }  # fmt: skip
    return parts, {name: reasons[name] for name, value in parts.items() if value is None}


def health_score(
    checks: list[DependencyCheck], metrics: MetricsSnapshot, llm_error_rate: float | None, thresholds: HealthThresholds
) -> ScoreBreakdown:
    latency = llm_latency_ms(metrics)
    error_rate = None if llm_error_rate is None else min(max(llm_error_rate, 0.0), 1.0)
    parts, not_applicable = _parts(checks, metrics, latency, error_rate, thresholds)
    applicable = {name: value for name, value in parts.items() if value is not None}
    weight = sum(WEIGHTS[name] for name in applicable)
    score = round(100 * sum(WEIGHTS[name] * value for name, value in applicable.items()) / weight) if weight else 100
    return ScoreBreakdown(
        score=max(0, min(100, score)),
        **{name: None if value is None else round(value, 4) for name, value in parts.items()},
        llm_error_rate=round(error_rate or 0.0, 4),
        llm_latency_ms=None if latency is None else round(latency, 1),
        prompt_cache_hit_rate=metrics.prompt_cache.hit_rate,
        parallelism_rate=metrics.parallelism.rate,
        not_applicable=not_applicable,
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
    return found + performance_conditions(metrics, thresholds)


def overall_status(score: int, found: list[AlertCondition]) -> HealthStatus:
    if score < 50 or any(c.severity == Severity.CRITICAL for c in found):
        return HealthStatus.CRITICAL
    if score < 80 or found:
        return HealthStatus.DEGRADED
    return HealthStatus.HEALTHY
