"""``daemonflow monitor``, ``daemonflow analytics AGENT`` and ``daemonflow cache clean``.

``monitor`` prints the last monitoring run's report from the store (``--run`` runs a round first
and waits for it; it needs a worker on the task queue). ``analytics`` reads the action registry
directly, no worker needed. ``cache clean`` runs ``CacheCleanupWorkflow`` now (``--dry-run``: only
show what would go).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from activities.analytics import agent_analytics
from activities.health import active_alerts, latest_report, trends
from cli.common import CliError
from cli.run_now import run_now
from config.settings import Settings
from models.analytics import AgentAnalytics
from models.cache import CleanupResult
from models.monitoring import HealthReport, MetricsSnapshot, ScoreBreakdown, UsageTrends
from models.weekly_trends import TrendLine, WeeklyTrends
from store.agent_hints import AgentHintStore
from store.engine import make_engine
from workers.schedules import CACHE_CLEANUP, MONITORING, cleanup_input, monitoring_input
from workflows.cache_cleanup import CacheCleanupWorkflow
from workflows.monitoring import MonitoringWorkflow


async def monitor(args: argparse.Namespace, settings: Settings) -> int:
    if args.run:
        await run_now(settings, MonitoringWorkflow.run, monitoring_input(settings), MONITORING, "monitoring round")
    engine = make_engine(settings.effective_database_url)
    if args.alerts:
        alerts = active_alerts(engine, include_resolved=True)
        if args.json:
            print(json.dumps([a.model_dump(mode="json") for a in alerts], indent=2))
        else:
            print("\n".join(_alert_line(a) for a in alerts) or "no alerts ever")
        return 0
    if args.trends:
        data = trends(engine, settings, datetime.now(UTC))
        print(data.model_dump_json(indent=2) if args.json else format_trends(data))
        return 0
    report = latest_report(engine)
    if report is None:
        raise CliError(
            "no monitoring run recorded yet: start a worker (schedules apply at start), or "
            "`daemonflow monitor --run` with a worker running"
        )
    if args.week:
        weekly = report.metrics.weekly
        print((weekly.model_dump_json(indent=2) if weekly else "null") if args.json else format_weekly(weekly))
        return 0
    if args.json:
        print(report.model_dump_json(indent=2))
        return 0
    hints = AgentHintStore(engine).list(active_only=True)
    print(format_report(report))
    print(f"optimisation hints in force: {len(hints)}" + (" (`daemonflow optimisations list`)" if hints else ""))
    return 0


def _alert_line(alert) -> str:
    state = f"resolved {alert.resolved_at:%Y-%m-%d %H:%M}" if alert.resolved_at else "ACTIVE"
    return (
        f"[{alert.severity.value:<8}] {alert.key:<28} {state:<24} since {alert.first_seen:%Y-%m-%d %H:%M} "
        f"×{alert.occurrences}  {alert.message}"
    )


PARTS = (
    ("dependencies", "dependencies"), ("llm", "model"), ("tools", "tools"), ("approvals", "approvals"),
    ("cache", "cache size"), ("prompt_cache", "prompt cache"), ("parallelism", "parallelism"),
)  # fmt: skip


def _parts_lines(b: ScoreBreakdown) -> list[str]:
    shown = [f"{label} {'n/a' if getattr(b, name) is None else f'{getattr(b, name):.2f}'}" for name, label in PARTS]
    lines = ["  " + " · ".join(shown)]
    if b.not_applicable:
        labels = dict(PARTS)
        lines.append("  not applicable (left out of the score): "
                     + "; ".join(f"{labels.get(name, name)}: {why}" for name, why in b.not_applicable.items()))  # fmt: skip
    return lines


def _performance_lines(metrics: MetricsSnapshot) -> list[str]:
    cache, plans, errors = metrics.prompt_cache, metrics.parallelism, metrics.tool_errors_vs_baseline
    lines = []
    if cache.hit_rate is not None:
        lines.append(f"prompt cache: {cache.hit_rate:.0%} of {cache.prompt_tokens} prompt tokens from the server's cache "
                     f"({cache.reporting_calls} of {cache.calls} calls reported it)")  # fmt: skip
    if plans.rate is not None:
        lines.append(f"parallelism: {plans.rate:.0%} ({plans.plans} plans, {plans.task_runs} task runs: "
                     f"{plans.running_s:.0f} s run of {plans.attainable_s:.0f} s attainable)")  # fmt: skip
    compared = [c for c in metrics.latency_vs_baseline if c.ratio is not None]
    if compared:
        lines.append("vs the 7 days before (median ms, window / baseline):")
        lines.extend(f"  {c.kind:<5} {c.name:<16} {c.window_p50_ms:>8.0f} / {c.baseline_p50_ms:<8.0f} ×{c.ratio:.2f} "
                     f"({c.window_count} / {c.baseline_count})" for c in compared)  # fmt: skip
    if errors.window_rate is not None and errors.baseline_rate is not None:
        lines.append(f"tool errors: {errors.window_rate:.0%} of {errors.window_runs} runs in the window, "
                     f"{errors.baseline_rate:.0%} of {errors.baseline_runs} over the 7 days before")  # fmt: skip
    if metrics.weekly is not None:
        lines.append("7-day trends: " + ", ".join(_trend_text(line) for line in metrics.weekly.lines))
    return lines


def _trend_text(line: TrendLine) -> str:
    label = {"latency": "latency", "prompt_cache": "prompt cache", "parallelism": "parallelism", "error_rate": "error rate"}
    if line.change is None:
        return f"{label.get(line.metric, line.metric)} {line.trend.value}"
    change = f"{line.change:+.0%}" if line.metric == "latency" else f"{line.change * 100:+.0f} pts"
    return f"{label.get(line.metric, line.metric)} {line.trend.value} ({change})"


def format_weekly(weekly: WeeklyTrends | None) -> str:
    if weekly is None:
        return "no 7-day figures in this report"
    lines = [f"7 days to {weekly.until:%Y-%m-%d %H:%M} UTC: " + ", ".join(_trend_text(x) for x in weekly.lines)]

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    for day in weekly.days:
        latency = "-" if day.latency_ms is None else f"{day.latency_ms:.0f} ms"
        lines.append(f"  {day.start:%m-%d %H:%M}  calls {day.model_calls:>5}  first token {latency:>8}  "
                     f"prompt cache {pct(day.prompt_cache_hit_rate):>4}  parallelism {pct(day.parallelism):>4}  "
                     f"tool runs {day.tool_runs:>5}  errors {pct(day.error_rate):>4}")  # fmt: skip
    return "\n".join(lines)


def format_report(report: HealthReport) -> str:
    b = report.breakdown
    lines = [
        f"health {report.score}/100 · {report.status.value} · {report.at:%Y-%m-%d %H:%M:%S} UTC",
        *_parts_lines(b),
        "checks:",
    ]
    for check in report.checks:
        latency = f"{check.latency_ms:.0f} ms" if check.latency_ms is not None else "-"
        lines.append(f"  {check.name:<11} {check.status.value:<9} {latency:>8}  {check.detail}")
    metrics = report.metrics
    if metrics.usage:
        lines.append("model usage:")
        for usage in metrics.usage:
            first = f", first token {usage.avg_first_token_ms:.0f} ms" if usage.avg_first_token_ms is not None else ""
            lines.append(
                f"  {usage.model:<16} {usage.calls} calls, {usage.tokens} tokens in {usage.window_hours:g} h{first}"
            )
    if metrics.budgets:
        lines.append("budgets:")
        for budget in metrics.budgets:
            lines.append(
                f"  {budget.model:<16} {budget.left_pct:5.1f}% left ({budget.used_tokens}/{budget.budget_tokens} "
                f"in {budget.window_hours:g} h) {budget.level.value}"
            )
    if metrics.agents:
        lines.append(f"agents (last {metrics.window_minutes} min):")
        for agent in metrics.agents:
            rate = f"{agent.success_rate:.0%}" if agent.success_rate is not None else "-"
            lines.append(
                f"  {agent.agent:<12} running {agent.running_conversations}, tasks {agent.tasks_completed} ok / "
                f"{agent.tasks_failed} failed ({rate}){'; ' + agent.current_task if agent.current_task else ''}"
            )
    approvals, cache = metrics.approvals, metrics.cache
    lines.append(
        f"approvals: {approvals.pending} pending"
        + (f", oldest {approvals.oldest_wait_s / 60:.0f} min" if approvals.oldest_wait_s else "")
    )
    lines.append(
        f"cache: {cache.entries} entries, {cache.total_bytes / 1e6:.1f} MB of {cache.threshold_bytes / 1e6:.0f} MB"
    )
    lines.extend(_performance_lines(metrics))
    lines.append(f"alerts ({len(report.alerts)} active):")
    lines.extend(f"  {_alert_line(a)}" for a in report.alerts)
    return "\n".join(lines)


def format_trends(data: UsageTrends) -> str:
    lines = [f"usage since {data.since:%H:%M} UTC, {data.bucket_minutes}-minute buckets; score {data.score_trend}"]
    for bucket in data.buckets:
        score = f"{bucket.avg_score:.0f}" if bucket.avg_score is not None else "-"
        lines.append(
            f"  {bucket.start:%H:%M}  calls {bucket.model_calls:>4}  tokens {bucket.tokens:>8}  "
            f"actions {bucket.actions:>4} (failed {bucket.action_failures})  score {score}"
        )
    return "\n".join(lines)


async def analytics(args: argparse.Namespace, settings: Settings) -> int:
    until = args.until or datetime.now(UTC)
    since = args.since or until - timedelta(hours=args.hours)
    if since >= until:
        raise CliError("the frame is empty: --since must be before --until")
    result = agent_analytics(make_engine(settings.effective_database_url), args.agent, since, until)
    print(result.model_dump_json(indent=2) if args.json else format_analytics(result))
    return 0


def _turns_line(a: AgentAnalytics) -> list[str]:
    t = a.turns
    if not t.turns:
        return []
    steps = f"; answered turns took up to {t.max_answered_steps} steps (p50 {t.p50_answered_steps:g})" if t.answered else ""
    return [f"turns: {t.turns}, {t.out_of_steps} ran out of steps ({t.out_of_steps_tokens} of {t.tokens} tokens){steps}"]


def format_analytics(a: AgentAnalytics) -> str:
    frame = f"{a.since:%Y-%m-%d %H:%M} → {a.until:%Y-%m-%d %H:%M} UTC"
    if not a.actions:
        return "\n".join([f"{a.agent}: no tool calls, {frame}", *_turns_line(a)])
    rate = f"{a.success_rate:.0%}" if a.success_rate is not None else "-"
    lines = [
        f"{a.agent}: {a.actions} actions in {a.conversations} conversations, {frame}, success {rate}",
        "most used: " + ", ".join(f"{c.name} {c.count}" for c in a.frequency[:8]),
        "decisions: " + ", ".join(f"{c.name} {c.count}" for c in a.by_decision),
    ]
    if a.sequences:
        lines.append("sequences: " + "; ".join(f"{' → '.join(s.tools)} ×{s.count}" for s in a.sequences[:5]))
    tp = a.time_patterns
    lines.append(f"peak hours (UTC): {', '.join(tp.peak_hours)}; mean duration {tp.avg_duration_ms or 0:.0f} ms")
    for outcome in a.outcomes:
        if outcome.failures or outcome.denied:
            lines.append(f"  {outcome.tool}: {outcome.failures}/{outcome.runs} failed, {outcome.denied} denied")
    perf = a.performance
    lines.append(f"trends: success {perf.success_trend}, duration {perf.duration_trend}")
    lines.extend(_turns_line(a))
    if a.anomalies:
        lines.append("anomalies:")
        lines.extend(f"  [{x.kind}] {x.message}" for x in a.anomalies)
    if a.suggestions:
        lines.append("suggestions:")
        for s in a.suggestions:
            lines.append(f"  ({s.impact}) {s.message}")
            lines.extend(f"      - {e}" for e in s.evidence[:3])
    return "\n".join(lines)


async def cache(args: argparse.Namespace, settings: Settings) -> int:
    result: CleanupResult = await run_now(
        settings, CacheCleanupWorkflow.run, cleanup_input(settings, dry_run=args.dry_run), CACHE_CLEANUP, "cache cleanup"
    )
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    verb = "would delete" if result.dry_run else "deleted"
    print(f"cache: {result.index.entries} entries, {result.index.total_bytes / 1e6:.1f} MB")
    for planned in result.planned:
        if result.dry_run or planned.key in result.deleted:
            print(f"  {verb} {planned.key} ({planned.size_bytes / 1e6:.2f} MB, {planned.reason.value})")
    for failure in result.failed:
        print(f"  kept {failure.key}: {failure.error}")
    if result.protected:
        print(f"  {len(result.protected)} entries of running conversations left alone")
    if result.containers_removed:
        print(f"  removed containers: {', '.join(result.containers_removed)}")
    return 0
