"""The window against its baseline: medians of latency and tool run time, the tool error rate, and
the prompt-cache figures of the window (pure, no I/O; the rows come from ``activities/monitoring_figures.py``).

These are the *evidence* of the performance-regression and error-spike alerts; whether an alert
opens is decided with the thresholds in ``activities/health_score.py``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable

from activities.monitoring_rows import RunRow, UsageRow, cache_figures, failure_rate
from models.monitoring import ErrorRateComparison, LatencyComparison, PromptCacheStats


def _by_name(pairs: Iterable[tuple[str, float | None]]) -> dict[str, list[float]]:
    grouped: dict[str, list[float]] = defaultdict(list)
    for name, value in pairs:
        if value is not None:
            grouped[name].append(value)
    return grouped


def latency_comparisons(
    kind: str, window: Iterable[tuple[str, float | None]], baseline: Iterable[tuple[str, float | None]]
) -> list[LatencyComparison]:
    """One comparison per name with values in the window: its median there against its median in
    the baseline (``ratio`` None without baseline values)."""
    now, before = _by_name(window), _by_name(baseline)
    found = []
    for name, values in sorted(now.items()):
        past = before.get(name, [])
        window_p50 = statistics.median(values)
        baseline_p50 = statistics.median(past) if past else None
        found.append(
            LatencyComparison(
                kind=kind,
                name=name,
                window_p50_ms=round(window_p50, 1),
                window_count=len(values),
                baseline_p50_ms=None if baseline_p50 is None else round(baseline_p50, 1),
                baseline_count=len(past),
                ratio=round(window_p50 / baseline_p50, 3) if baseline_p50 else None,
            )
        )
    return found


def error_comparison(window: Iterable[RunRow], baseline: Iterable[RunRow]) -> ErrorRateComparison:
    window_rate, runs, failures = failure_rate(window)
    baseline_rate, past_runs, past_failures = failure_rate(baseline)
    return ErrorRateComparison(
        window_runs=runs,
        window_failures=failures,
        window_rate=window_rate,
        baseline_runs=past_runs,
        baseline_failures=past_failures,
        baseline_rate=baseline_rate,
    )


def prompt_cache(rows: list[UsageRow]) -> PromptCacheStats:
    """The window's prompt-cache figures (``PromptCacheStats``)."""
    figures = cache_figures(rows)
    return PromptCacheStats(
        calls=len(rows),
        reporting_calls=figures.reporting_calls,
        prompt_tokens=figures.prompt_tokens,
        cached_tokens=figures.cached_tokens,
        hit_rate=figures.rate,
    )
