"""Monitoring runs on the dev server over a seeded store: performance-regression, error-spike and
parallelisation alerts open, then resolve once the data recovers; the prompt-cache and
parallelisation parts of the score; retention deletes old health snapshots only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from prometheus_client import REGISTRY
from sqlmodel import Session, select

from models.monitoring import AlertCondition, HealthReport, Severity
from models.task_runs import TaskOutcome
from store.engine import make_engine
from store.monitoring import Alert, HealthSnapshot, MonitoringStore
from store.tables import Action, ModelUsage
from store.task_runs import TaskRunStore
from tests.monitoring_support import env_of, monitoring_round, schedule_settings, schedule_worker
from tests.test_cli import daemonflow

SEQ = count(1)


def calls(session: Session, at: datetime, n: int, first_token_ms: float, cached: int | None = None) -> None:
    for k in range(n):
        session.add(ModelUsage(conversation_id="seeded", seq=next(SEQ), turn=1, model="llama3.2", load_duration_ms=0,
                               prompt_eval_duration_ms=first_token_ms, prompt_tokens=1000, cached_prompt_tokens=cached,
                               created_at=at - timedelta(minutes=k)))  # fmt: skip


def tool_runs(session: Session, at: datetime, n: int, failures: int, duration_ms: float) -> None:
    for k in range(n):
        session.add(Action(conversation_id="seeded", tool_call_id=f"{next(SEQ)}", turn=1, agent="developer",
                           tool="run_tests", action_type="TEST_EXECUTION", args_hash="h", decision="allow",
                           source="rule:x", success=k >= failures, duration_ms=duration_ms,
                           created_at=at - timedelta(minutes=k)))  # fmt: skip


def plan(store: TaskRunStore, plan_id: str, now: datetime, ready_min: int, start_min: int, end_min: int) -> None:
    """Three tasks ready ``ready_min`` minutes ago, run together from ``start_min`` to ``end_min`` ago."""
    for task in ("a", "b", "c"):
        store.started(plan_id, task, now - timedelta(minutes=ready_min), now - timedelta(minutes=start_min), max_parallel=3)
        store.ended(plan_id, task, now - timedelta(minutes=end_min), TaskOutcome.SUCCEEDED)


PERFORMANCE_ALERTS = {"regression:model:llama3.2", "regression:tool:run_tests", "errors:spike:tools", "parallelism:rate"}


async def test_performance_alerts_open_and_resolve(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url)
    engine = make_engine(settings.effective_database_url)
    monitoring = MonitoringStore(engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        # The 7 days before: llama3.2 answers in 400 ms, run_tests takes 1 s and fails 2 times in 40.
        calls(session, now - timedelta(days=2), 30, 400)
        tool_runs(session, now - timedelta(days=3), 40, 2, 1000)
        # The last hour: 1200 ms (4 calls from a server reporting 600 cached tokens of 1000, 2 from
        # one that does not say), run_tests takes 3 s and fails 3 times in 6.
        calls(session, now - timedelta(minutes=5), 4, 1200, cached=600)
        calls(session, now - timedelta(minutes=9), 2, 1200)
        tool_runs(session, now - timedelta(minutes=5), 6, 3, 3000)
        session.commit()
    tasks = TaskRunStore(engine)
    plan(tasks, "stalled", now, ready_min=20, start_min=10, end_min=9)  # ready 20 min, ran 1 min: 9 %

    async with schedule_worker(temporal_env.client, settings):
        slow = await monitoring_round(temporal_env.client, settings)
        report = monitoring.latest_report()
        assert report is not None and PERFORMANCE_ALERTS <= set(slow.opened)
        severities = {a.key: a.severity for a in report.alerts}
        assert severities["regression:model:llama3.2"] == Severity.CRITICAL  # 3× its 7-day median
        assert severities["errors:spike:tools"] == Severity.CRITICAL  # 50 % against 5 %
        assert severities["parallelism:rate"] == Severity.CRITICAL  # 9 % < 20 %
        b = report.breakdown
        assert (b.prompt_cache_hit_rate, b.prompt_cache) == (0.6, pytest.approx(0.6 / 0.7, abs=1e-4))
        assert b.parallelism_rate == pytest.approx(3 / 33, abs=1e-3) and b.parallelism == pytest.approx(b.parallelism_rate / 0.3, abs=1e-3)
        assert "prompt_cache" not in b.not_applicable and "parallelism" not in b.not_applicable
        assert report.metrics.prompt_cache.reporting_calls == 4 and report.metrics.prompt_cache.calls == 6
        assert REGISTRY.get_sample_value("daemonflow_prompt_cache_hit_ratio") == 0.6
        assert REGISTRY.get_sample_value("daemonflow_health_part", {"part": "parallelism"}) == b.parallelism

        # Recovery: many fast calls and good runs in the window, and a plan that used its slots.
        later = datetime.now(UTC)
        with Session(engine) as session:
            calls(session, later, 30, 400, cached=900)
            tool_runs(session, later, 40, 0, 1000)
            session.commit()
        plan(tasks, "busy", later, ready_min=30, start_min=30, end_min=10)
        recovered = await monitoring_round(temporal_env.client, settings)

    assert PERFORMANCE_ALERTS <= set(recovered.resolved), recovered
    assert not PERFORMANCE_ALERTS & {a.key for a in monitoring.alerts(active_only=True)}
    history = {a.key: a for a in monitoring.alerts() if a.key in PERFORMANCE_ALERTS}
    assert set(history) == PERFORMANCE_ALERTS and all(a.resolved_at is not None for a in history.values())
    assert history["regression:model:llama3.2"].kind == "performance_regression"
    assert history["errors:spike:tools"].kind == "error_spike"
    latest = monitoring.latest_report()
    assert latest is not None and latest.breakdown.parallelism == 1.0 and latest.score > report.score


async def test_without_plans_or_cache_reports_the_parts_are_not_applicable(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url)
    engine = make_engine(settings.effective_database_url)
    with Session(engine) as session:
        calls(session, datetime.now(UTC), 3, 300)  # Ollama's calls: no cached count
        session.commit()
    async with schedule_worker(temporal_env.client, settings):
        await monitoring_round(temporal_env.client, settings)
    report = MonitoringStore(engine).latest_report()
    assert report is not None
    b = report.breakdown
    assert (b.prompt_cache, b.parallelism, b.tools) == (None, None, None)
    assert b.not_applicable == {
        "tools": "no tool call ran in the window",
        "prompt_cache": "none of the window's 3 model calls reported cached prompt tokens (Ollama does not report them)",
        "parallelism": "no task of a plan could run in the window",
    }
    assert 0 <= report.score <= 100
    assert {line.metric for line in report.metrics.weekly.lines} == {"latency", "prompt_cache", "parallelism", "error_rate"}

    shown = await daemonflow(env_of(settings), tmp_path, "monitor")
    assert shown.code == 0, shown.err
    assert "tools n/a · approvals 1.00 · cache size 1.00 · prompt cache n/a · parallelism n/a" in shown.out
    assert "not applicable (left out of the score): tools: no tool call ran in the window; prompt cache: none of" in shown.out
    assert "7-day trends: latency insufficient data, prompt cache insufficient data" in shown.out
    assert "optimisation hints in force: 0" in shown.out
    week = await daemonflow(env_of(settings), tmp_path, "monitor", "--week")
    assert week.code == 0 and len(week.out.strip().splitlines()) == 8  # the trend line and 7 days


async def test_retention_deletes_old_health_snapshots_only(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url, history_max_days=90)
    engine = make_engine(settings.effective_database_url)
    monitoring = MonitoringStore(engine)
    now = datetime.now(UTC)
    old_report = None
    async with schedule_worker(temporal_env.client, settings):
        await monitoring_round(temporal_env.client, settings)
        old_report = monitoring.latest_report()
        assert old_report is not None
        for days in (200, 91, 89, 10):
            monitoring.save_snapshot(old_report.model_copy(update={"at": now - timedelta(days=days), "run_id": f"aged-{days}"}), True)
        alert = AlertCondition(key="old:episode", kind="test", severity=Severity.WARNING, message="long ago")
        monitoring.sync_alerts([alert], now - timedelta(days=200))
        result = await monitoring_round(temporal_env.client, settings)
    assert result.pruned_snapshots == 2
    with Session(engine) as session:
        kept = sorted(run_id for run_id in session.exec(select(HealthSnapshot.run_id)) if run_id.startswith("aged-"))
        assert kept == ["aged-10", "aged-89"]
        assert session.exec(select(Alert).where(Alert.key == "old:episode")).first() is not None  # alerts are kept
    assert isinstance(monitoring.latest_report(), HealthReport)
