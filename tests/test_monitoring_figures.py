"""The new monitoring figures on known inputs: parallelisation from task runs, the prompt-cache hit
rate, both in the score (and "not applicable" without data), the regression and error-spike rules,
the 7-day trends, and the whole read from a seeded store on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from activities.health_score import conditions, health_score
from activities.monitoring_figures import weekly_figures, with_performance_figures
from activities.monitoring_rows import RunRow, UsageRow
from activities.parallelism import STALE_OPEN_HOURS, parallelism
from activities.performance_alerts import performance_conditions
from activities.weekly_trends import weekly_trends
from models.monitoring import (
    ErrorRateComparison,
    HealthThresholds,
    LatencyComparison,
    MetricsSnapshot,
    ParallelismStats,
    PromptCacheStats,
    Severity,
)
from models.task_runs import TaskOutcome, TaskRunView
from models.weekly_trends import Trend
from store.engine import make_engine
from store.tables import Action, ModelUsage
from store.task_runs import TaskRunStore

T0 = datetime(2025, 8, 3, 12, 0, tzinfo=UTC)


def run(plan: str, task: str, ready: int, start: int | None, end: int | None, cap: int = 3) -> TaskRunView:
    """A task run, times in seconds after T0."""

    def at(seconds: int | None) -> datetime | None:
        return None if seconds is None else T0 + timedelta(seconds=seconds)

    return TaskRunView(plan_id=plan, task_id=task, ready_at=at(ready), started_at=at(start), ended_at=at(end), max_parallel=cap)


# --- parallelisation ------------------------------------------------------------------------------


def test_a_scheduler_that_runs_every_ready_task_scores_1_whatever_the_graph():
    diamond = [run("d", "a", 0, 0, 10), run("d", "b", 10, 10, 30), run("d", "c", 10, 10, 20), run("d", "e", 30, 30, 40)]
    chain = [run("c", "1", 0, 0, 10), run("c", "2", 10, 10, 20), run("c", "3", 20, 20, 30)]
    for runs in (diamond, chain):
        stats = parallelism(runs, T0, T0 + timedelta(minutes=5))
        assert stats.rate == 1.0 and stats.running_s == stats.attainable_s


def test_ready_tasks_run_one_by_one_lose_parallelism():
    # Three independent tasks ready at 0, run one after the other for 10 s each, limit 3:
    # runnable 3, 2, 1 over the three 10 s slices → attainable 60 task-seconds, achieved 30.
    serial = [run("s", "a", 0, 0, 10), run("s", "b", 0, 10, 20), run("s", "c", 0, 20, 30)]
    stats = parallelism(serial, T0, T0 + timedelta(minutes=1))
    assert (stats.running_s, stats.attainable_s, stats.rate) == (30.0, 60.0, 0.5)
    # With a limit of 1 the same schedule is all that was possible.
    assert parallelism([r.model_copy(update={"max_parallel": 1}) for r in serial], T0, T0 + timedelta(minutes=1)).rate == 1.0
    # Four ready at once, limit 3, all run at once: running is capped like runnable.
    burst = [run("b", str(i), 0, 0, 10) for i in range(4)]
    assert parallelism(burst, T0, T0 + timedelta(minutes=1)).rate == 1.0


def test_the_window_clips_and_a_run_never_closed_stops_counting():
    serial = [run("s", "a", 0, 0, 10), run("s", "b", 0, 10, 20), run("s", "c", 0, 20, 30)]
    late = parallelism(serial, T0 + timedelta(seconds=20), T0 + timedelta(minutes=1))  # only c runs, alone
    assert (late.attainable_s, late.rate) == (10.0, 1.0)
    assert parallelism(serial, T0 + timedelta(minutes=5), T0 + timedelta(minutes=6)).rate is None
    assert parallelism([], T0, T0 + timedelta(hours=1)) == ParallelismStats()
    # A plan terminated with a task ready, never started nor closed: it stops counting after a day.
    stuck = [run("x", "a", 0, None, None)]
    day_after = T0 + timedelta(hours=STALE_OPEN_HOURS, minutes=1)
    assert parallelism(stuck, T0, T0 + timedelta(hours=1)).rate == 0.0
    assert parallelism(stuck, day_after, day_after + timedelta(hours=1)).rate is None
    skipped = [TaskRunView(plan_id="k", task_id="t", ended_at=T0, outcome=TaskOutcome.SKIPPED)]
    assert parallelism(skipped, T0 - timedelta(hours=1), T0 + timedelta(hours=1)).rate is None


# --- the score and the alerts ---------------------------------------------------------------------


def metrics(**fields) -> MetricsSnapshot:
    return MetricsSnapshot(at=T0, window_minutes=60, **fields)


def test_prompt_cache_and_parallelism_in_the_score():
    cache = PromptCacheStats(calls=10, reporting_calls=10, prompt_tokens=1000, cached_tokens=350, hit_rate=0.35)
    plans = ParallelismStats(plans=1, task_runs=6, running_s=15, attainable_s=100, rate=0.15)
    breakdown = health_score([], metrics(prompt_cache=cache, parallelism=plans), 0.0, HealthThresholds())
    # K = 0.35 / 0.70 = 0.5, P = 0.15 / 0.30 = 0.5; L = 1 (probes fine, no call); T n/a, D n/a (no check):
    # 100 × (0.20·1 + 0.10·1 + 0.05·1 + 0.10·0.5 + 0.10·0.5) / 0.55 = 81.8
    assert (breakdown.prompt_cache, breakdown.parallelism) == (0.5, 0.5)
    assert (breakdown.prompt_cache_hit_rate, breakdown.parallelism_rate) == (0.35, 0.15)
    assert breakdown.score == 82
    full = health_score([], metrics(prompt_cache=cache.model_copy(update={"hit_rate": 0.9}),
                                    parallelism=plans.model_copy(update={"rate": 0.3})), 0.0, HealthThresholds())  # fmt: skip
    assert (full.prompt_cache, full.parallelism, full.score) == (1.0, 1.0, 100)

    found = {c.key: c for c in conditions([], metrics(prompt_cache=cache, parallelism=plans), breakdown, HealthThresholds())}
    assert found["prompt_cache:hit_rate"].severity == Severity.WARNING  # 35 %: under 50, not under 30
    assert found["parallelism:rate"].severity == Severity.CRITICAL  # 15 %: under 20
    assert "35%" in found["prompt_cache:hit_rate"].message and "15%" in found["parallelism:rate"].message


def test_cache_calls_that_report_nothing_are_not_applicable_not_100():
    ollama_only = PromptCacheStats(calls=40, reporting_calls=0)
    breakdown = health_score([], metrics(prompt_cache=ollama_only), 0.0, HealthThresholds())
    assert breakdown.prompt_cache is None
    assert breakdown.not_applicable["prompt_cache"] == (
        "none of the window's 40 model calls reported cached prompt tokens (Ollama does not report them)"
    )
    # Too few reporting calls for an alert, however bad the rate; but the score still counts them.
    few = PromptCacheStats(calls=3, reporting_calls=3, prompt_tokens=300, cached_tokens=0, hit_rate=0.0)
    assert performance_conditions(metrics(prompt_cache=few), HealthThresholds()) == []
    assert health_score([], metrics(prompt_cache=few), 0.0, HealthThresholds()).prompt_cache == 0.0


def latency(kind: str, window: float, baseline: float | None, n: int = 10, base_n: int = 50) -> LatencyComparison:
    return LatencyComparison(kind=kind, name="x", window_p50_ms=window, window_count=n, baseline_p50_ms=baseline,
                             baseline_count=base_n if baseline else 0, ratio=window / baseline if baseline else None)  # fmt: skip


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (latency("model", 1500, 1000), Severity.WARNING),  # 1.5×, +500 ms
        (latency("model", 2600, 1000), Severity.CRITICAL),  # 2.6×
        (latency("model", 1400, 1000), None),  # 1.4×
        (latency("model", 299, 100), None),  # 3× but only +199 ms: not a regression of a fast model
        (latency("model", 300, 100), Severity.CRITICAL),  # 3×, +200 ms
        (latency("tool", 1200, 600), Severity.WARNING),  # 2×, +600 ms (tools need +500 ms)
        (latency("tool", 900, 450), None),  # 2×, but only +450 ms
        (latency("model", 3000, 1000, n=4), None),  # too few calls in the window
        (latency("model", 3000, 1000, base_n=19), None),  # too thin a baseline
        (latency("model", 3000, None), None),  # no baseline at all
    ],
)
def test_regression_rule(item, expected):
    found = performance_conditions(metrics(latency_vs_baseline=[item]), HealthThresholds())
    assert [c.severity for c in found] == ([expected] if expected else [])
    if expected:
        assert found[0].key == f"regression:{item.kind}:x" and found[0].kind == "performance_regression"


@pytest.mark.parametrize(
    ("window", "baseline", "expected"),
    [
        ((10, 3), (100, 5), Severity.WARNING),  # 30 % vs 5 %: 6× and +25 points
        ((10, 4), (100, 5), Severity.CRITICAL),  # 40 % vs 5 %: +35 points
        ((10, 2), (100, 5), Severity.WARNING),  # 20 % vs 5 %: 4× and +15 points, just enough
        ((10, 3), (100, 20), None),  # 30 % vs 20 %: not twice
        ((4, 4), (100, 0), None),  # 4 runs: too few
        ((10, 9), (19, 0), None),  # baseline of 19 runs: too thin
    ],
)
def test_error_spike_rule(window, baseline, expected):
    errors = ErrorRateComparison(
        window_runs=window[0], window_failures=window[1], window_rate=window[1] / window[0],
        baseline_runs=baseline[0], baseline_failures=baseline[1], baseline_rate=baseline[1] / baseline[0],
    )  # fmt: skip
    found = performance_conditions(metrics(tool_errors_vs_baseline=errors), HealthThresholds())
    assert [c.severity for c in found] == ([expected] if expected else [])
    if expected:
        assert found[0].key == "errors:spike:tools" and found[0].kind == "error_spike"


# --- 7-day trends ---------------------------------------------------------------------------------


def test_weekly_trends_by_the_documented_rule():
    until = T0
    usage, runs = [], []
    for hour in range(0, 7 * 24, 4):  # a call and a tool run every 4 hours, 42 of each
        at = until - timedelta(days=7) + timedelta(hours=hour)
        later = hour >= 84
        usage.append(UsageRow(at, "m", 1000.0 if not later else 700.0, 100, None))  # 30 % faster later
        runs.append(RunRow(at, "t", not (later and hour % 8 == 0), 100.0))  # later: about every other run fails
    # A plan in each half, serialised the same way: parallelisation stable.
    tasks = [
        run(f"p{half}", name, start, start + 10 * k, start + 10 * (k + 1))
        for half, start in ((0, -6 * 86400), (1, -86400))
        for k, name in enumerate("abc")
    ]
    trends = weekly_trends(usage, runs, tasks, until)
    lines = {line.metric: line for line in trends.lines}
    assert lines["latency"].trend == Trend.IMPROVING and lines["latency"].change == pytest.approx(-0.3)
    assert lines["error_rate"].trend == Trend.DEGRADING  # 0 % earlier, 10 of 21 runs later
    assert lines["error_rate"].change == pytest.approx(10 / 21, abs=1e-4)
    assert lines["prompt_cache"].trend == Trend.INSUFFICIENT  # nothing reported a cache
    assert lines["parallelism"].trend == Trend.STABLE and (lines["parallelism"].earlier, lines["parallelism"].later) == (0.5, 0.5)
    assert len(trends.days) == 7 and trends.days[0].start == until - timedelta(days=7)
    assert sum(day.model_calls for day in trends.days) == 42
    assert trends.days[-1].latency_ms == 700.0 and trends.days[0].latency_ms == 1000.0


def test_too_little_data_is_insufficient_not_stable():
    usage = [UsageRow(T0 - timedelta(days=6), "m", 500.0, 10, 5), UsageRow(T0 - timedelta(days=1), "m", 5000.0, 10, 0)]
    trends = weekly_trends(usage, [], [], T0)
    assert {line.metric: line.trend for line in trends.lines} == {
        "latency": Trend.INSUFFICIENT, "prompt_cache": Trend.INSUFFICIENT,
        "parallelism": Trend.INSUFFICIENT, "error_rate": Trend.INSUFFICIENT,
    }  # fmt: skip


# --- read from a seeded store ---------------------------------------------------------------------


def test_figures_from_a_seeded_store_on_both_backends(database_url):
    engine = make_engine(database_url)
    now = datetime.now(UTC).replace(microsecond=0)
    with Session(engine) as session:
        seq = iter(range(1, 10_000))
        # Baseline (2-5 days ago): 30 calls of llama3.2 at 400 ms; 40 tool runs at 1 s, 2 failures.
        for k in range(30):
            session.add(ModelUsage(conversation_id="b", seq=next(seq), turn=1, model="llama3.2", load_duration_ms=0,
                                   prompt_eval_duration_ms=400, prompt_tokens=1000, created_at=now - timedelta(days=2, hours=k)))  # fmt: skip
        for k in range(40):
            session.add(Action(conversation_id="b", tool_call_id=f"b-{k}", turn=1, agent="a", tool="run_tests",
                               action_type="TEST_EXECUTION", args_hash="h", decision="allow", source="rule:x",
                               success=k >= 2, duration_ms=1000, created_at=now - timedelta(days=3, hours=k)))  # fmt: skip
        # The window (last hour): 6 calls at 1200 ms, 4 of them from a server that reports its cache;
        # 6 tool runs at 3 s, 3 failed.
        for k in range(6):
            session.add(ModelUsage(conversation_id="w", seq=next(seq), turn=1, model="llama3.2", load_duration_ms=200,
                                   prompt_eval_duration_ms=1000, prompt_tokens=1000, cached_prompt_tokens=600 if k < 4 else None,
                                   created_at=now - timedelta(minutes=5 + k)))  # fmt: skip
            session.add(Action(conversation_id="w", tool_call_id=f"w-{k}", turn=1, agent="a", tool="run_tests",
                               action_type="TEST_EXECUTION", args_hash="h", decision="allow", source="rule:x",
                               success=k % 2 == 0, duration_ms=3000, created_at=now - timedelta(minutes=5 + k)))  # fmt: skip
        session.commit()
    runs = TaskRunStore(engine)
    for k, task in enumerate("abc"):  # a plan that ran its three ready tasks one by one in the window
        runs.started("plan-1", task, ready_at=now - timedelta(minutes=30), started_at=now - timedelta(minutes=30 - 5 * k),
                     max_parallel=3)  # fmt: skip
        runs.started("plan-1", task, ready_at=now - timedelta(minutes=30), started_at=now - timedelta(minutes=30 - 5 * k),
                     max_parallel=3)  # a retried activity writes the same row  # fmt: skip
        runs.ended("plan-1", task, now - timedelta(minutes=25 - 5 * k), TaskOutcome.SUCCEEDED)

    figures = with_performance_figures(engine, MetricsSnapshot(at=now, window_minutes=60))
    assert figures.prompt_cache == PromptCacheStats(calls=6, reporting_calls=4, prompt_tokens=4000, cached_tokens=2400, hit_rate=0.6)
    assert (figures.parallelism.plans, figures.parallelism.task_runs, figures.parallelism.rate) == (1, 3, 0.5)
    by_kind = {(c.kind, c.name): c for c in figures.latency_vs_baseline}
    model = by_kind[("model", "llama3.2")]
    assert (model.window_p50_ms, model.baseline_p50_ms, model.ratio, model.baseline_count) == (1200.0, 400.0, 3.0, 30)
    tool = by_kind[("tool", "run_tests")]
    assert (tool.window_p50_ms, tool.baseline_p50_ms, tool.window_count) == (3000.0, 1000.0, 6)
    errors = figures.tool_errors_vs_baseline
    assert (errors.window_rate, errors.baseline_rate, errors.baseline_runs) == (0.5, 0.05, 40)
    # 3× slower model and tool, 50 % failures against 5 %; the plan's 50 % is above the 30 % warning,
    # and 4 reporting calls are too few for a cache alert.
    keys = {c.key: c.severity for c in performance_conditions(figures, HealthThresholds())}
    assert keys == {
        "regression:model:llama3.2": Severity.CRITICAL,
        "regression:tool:run_tests": Severity.CRITICAL,
        "errors:spike:tools": Severity.CRITICAL,
    }
    assert figures.weekly is not None and len(figures.weekly.days) == 7
    assert figures.weekly == weekly_figures(engine, now)
    engine.dispose()
