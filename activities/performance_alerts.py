"""Alert conditions on performance (pure): prompt cache, parallelisation, regressions, error spikes.

The rules (thresholds in ``models.monitoring.HealthThresholds``; also in docs/ARCHITECTURE.md):

- ``prompt_cache:hit_rate`` — the window's prompt-cache hit rate under 50 % (warning) or 30 %
  (critical), over at least 5 model calls whose server reported its cache (seed 004).
- ``parallelism:rate`` — plans' parallelisation under 30 % (warning) or 20 % (critical), over
  at least 3 task runs (seed 004).
- ``regression:model:<model>`` / ``regression:tool:<tool>`` — *performance regression*: the median
  time to first token of a model (or the median run time of a tool) over the window is at least
  1.5× (warning) or 2.5× (critical) its median over the 7 days before the window, and slower by at
  least 200 ms (models) or 500 ms (tools), with at least 5 calls in the window and 20 in the
  baseline. Medians, so one slow call does not raise it.
- ``errors:spike:tools`` — *error spike*: the window's tool failure rate is at least twice the
  7-day baseline's and 15 points above it (warning), or three times and 30 points above
  (critical), over at least 5 runs in the window and 20 in the baseline. Without a baseline the
  absolute ``tools:failures`` alert still applies.

Each alert resolves by itself at the first monitoring run where its rule no longer holds.
"""

from __future__ import annotations

from models.monitoring import (
    AlertCondition,
    ErrorRateComparison,
    HealthThresholds,
    LatencyComparison,
    MetricsSnapshot,
    Severity,
)


def _low_rate(
    key: str, kind: str, rate: float | None, samples: int, minimum: int, warning: float, critical: float, what: str
) -> list[AlertCondition]:
    if rate is None or samples < minimum or rate >= warning:
        return []
    severity = Severity.CRITICAL if rate < critical else Severity.WARNING
    limit = critical if severity == Severity.CRITICAL else warning
    return [AlertCondition(key=key, kind=kind, severity=severity, message=f"{what} {rate:.0%} (under {limit:.0%})")]


def _regression(item: LatencyComparison, thresholds: HealthThresholds) -> AlertCondition | None:
    base = item.baseline_p50_ms
    if (
        base is None or item.ratio is None or item.window_count < thresholds.regression_min_window
        or item.baseline_count < thresholds.baseline_min_samples or item.ratio < thresholds.regression_warning_ratio
        or item.window_p50_ms - base < thresholds.regression_min_delta_ms.get(item.kind, 0.0)
    ):  # fmt: skip
        return None
    severity = Severity.CRITICAL if item.ratio >= thresholds.regression_critical_ratio else Severity.WARNING
    measure = "time to first token" if item.kind == "model" else "run time"
    return AlertCondition(
        key=f"regression:{item.kind}:{item.name}",
        kind="performance_regression",
        severity=severity,
        message=f"{item.kind} {item.name}: median {measure} {item.window_p50_ms:.0f} ms over the window "
        f"({item.window_count} calls), {item.ratio:.1f}× its 7-day median of {base:.0f} ms ({item.baseline_count} calls)",
    )


def _spike(errors: ErrorRateComparison, thresholds: HealthThresholds) -> AlertCondition | None:
    now, base = errors.window_rate, errors.baseline_rate
    if now is None or base is None or errors.window_runs < thresholds.regression_min_window:
        return None
    if errors.baseline_runs < thresholds.baseline_min_samples:
        return None

    def holds(factor: float, points: float) -> bool:
        return now >= factor * base and now - base >= points

    if holds(thresholds.spike_critical_factor, thresholds.spike_critical_points):
        severity = Severity.CRITICAL
    elif holds(thresholds.spike_warning_factor, thresholds.spike_warning_points):
        severity = Severity.WARNING
    else:
        return None
    return AlertCondition(
        key="errors:spike:tools",
        kind="error_spike",
        severity=severity,
        message=f"tool calls fail at {now:.0%} over the window ({errors.window_failures} of {errors.window_runs}), "
        f"against {base:.0%} over the 7 days before ({errors.baseline_failures} of {errors.baseline_runs})",
    )


def performance_conditions(metrics: MetricsSnapshot, thresholds: HealthThresholds) -> list[AlertCondition]:
    cache, plans = metrics.prompt_cache, metrics.parallelism
    found = [
        *_low_rate("prompt_cache:hit_rate", "cache", cache.hit_rate, cache.reporting_calls,
                   thresholds.min_cache_calls_for_alert, thresholds.prompt_cache_warning, thresholds.prompt_cache_critical,
                   f"model prompt-cache hit rate over {cache.reporting_calls} calls"),
        *_low_rate("parallelism:rate", "parallelism", plans.rate, plans.task_runs, thresholds.min_task_runs_for_alert,
                   thresholds.parallelism_warning, thresholds.parallelism_critical,
                   f"plans ran {plans.task_runs} tasks at a parallelisation of"),
    ]  # fmt: skip
    found += [c for c in (_regression(item, thresholds) for item in metrics.latency_vs_baseline) if c]
    spike = _spike(metrics.tool_errors_vs_baseline, thresholds)
    return found + ([spike] if spike else [])
