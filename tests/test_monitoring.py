"""Scheduled monitoring: the score formula on known inputs, budgets, alerts that open once and
resolve, the webhook, gauges and trends — on the real dev server with a real (fake) Ollama that
goes down and comes back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlmodel import Session

from activities.health import budget_level
from activities.health_score import conditions, health_score, overall_status
from models.monitoring import (
    AlertCondition,
    ApprovalStats,
    BudgetLevel,
    CacheStats,
    CheckStatus,
    DependencyCheck,
    HealthStatus,
    HealthThresholds,
    MetricsSnapshot,
    ModelUsageStats,
    MonitoringInput,
    MonitoringResult,
    Severity,
    TokenBudget,
    ToolStats,
)
from store.engine import make_engine
from store.monitoring import MonitoringStore, usage_trends
from store.tables import Action, ModelUsage
from tests.fakes.openai_compatible import FakeOpenAI
from tests.monitoring_support import schedule_settings, schedule_worker, webhook
from workflows.monitoring import MonitoringWorkflow

NOW = datetime(2025, 8, 3, 16, 50, tzinfo=UTC)
NAMES = ["ollama", "memory", "docker", "store", "temporal", "disk", "filesystem"]


def checks(down: tuple[str, ...] = (), degraded: tuple[str, ...] = ()) -> list[DependencyCheck]:
    def status(name: str) -> CheckStatus:
        return CheckStatus.DOWN if name in down else CheckStatus.DEGRADED if name in degraded else CheckStatus.OK

    return [DependencyCheck(name=n, status=status(n), detail="x") for n in NAMES]


# --- the formula, pure ----------------------------------------------------------------------------


def test_score_is_100_when_everything_is_fine():
    breakdown = health_score(checks(), MetricsSnapshot(at=NOW, window_minutes=60), 0.0, HealthThresholds())
    assert breakdown.score == 100
    assert conditions(checks(), MetricsSnapshot(at=NOW, window_minutes=60), breakdown, HealthThresholds()) == []
    assert overall_status(100, []) == HealthStatus.HEALTHY


def test_score_formula_on_known_inputs():
    metrics = MetricsSnapshot(
        at=NOW,
        window_minutes=60,
        usage=[ModelUsageStats(model="m", window_hours=24, calls=4, avg_first_token_ms=3_500)],
        tools=ToolStats(runs=10, failures=2),
        approvals=ApprovalStats(pending=5, oldest_wait_s=2_250),
        cache=CacheStats(total_bytes=750_000_000, threshold_bytes=500_000_000),
    )
    thresholds = HealthThresholds()  # latency 2000/5000 ms, backlog 3/10, wait 900/3600 s
    breakdown = health_score(checks(down=("ollama",)), metrics, 0.25, thresholds)
    # D = 6/7; L = ½·0.5 (3500 ms halfway 2000→5000) + ½·(1 − 0.25) = 0.625; T = 0.8;
    # A = ½·(1 − 5/10) + ½·0.5 (2250 s halfway 900→3600) = 0.5; C = 2 − 750/500 = 0.5
    assert breakdown.dependencies == pytest.approx(6 / 7, abs=1e-4)
    assert (breakdown.llm, breakdown.tools, breakdown.approvals, breakdown.cache) == (0.625, 0.8, 0.5, 0.5)
    # No prompt-cache report and no plan: K and P are left out, the others weigh 0.80 together.
    # 100 × (0.30·6/7 + 0.20·0.625 + 0.15·0.8 + 0.10·0.5 + 0.05·0.5) / 0.80 = 72.1
    assert (breakdown.prompt_cache, breakdown.parallelism) == (None, None)
    assert set(breakdown.not_applicable) == {"prompt_cache", "parallelism"}
    assert breakdown.score == 72

    found = {c.key: c.severity for c in conditions(checks(down=("ollama",)), metrics, breakdown, thresholds)}
    assert found == {
        "dependency:ollama": Severity.CRITICAL,
        "llm:latency": Severity.WARNING,
        "llm:errors": Severity.WARNING,
        "approvals:backlog": Severity.WARNING,
        "approvals:wait": Severity.WARNING,
        "cache:size": Severity.WARNING,
    }
    assert overall_status(breakdown.score, [AlertCondition(key="k", kind="k", severity=Severity.WARNING, message="")]) == HealthStatus.DEGRADED
    assert overall_status(90, [AlertCondition(key="k", kind="k", severity=Severity.CRITICAL, message="")]) == HealthStatus.CRITICAL


def test_score_floor_and_degraded_checks():
    everything_down = checks(down=tuple(NAMES))
    metrics = MetricsSnapshot(at=NOW, window_minutes=60, tools=ToolStats(runs=4, failures=4))
    breakdown = health_score(everything_down, metrics, 1.0, HealthThresholds())
    # D = 0, L = 0 (every probe failed; no model call, so latency is left out of L), T = 0;
    # only approvals (nothing pending) and the cache (empty) still count: (0.10 + 0.05) / 0.80
    assert (breakdown.dependencies, breakdown.llm, breakdown.tools) == (0.0, 0.0, 0.0)
    assert breakdown.score == round(100 * 0.15 / 0.80)
    half = health_score(checks(degraded=("disk",)), MetricsSnapshot(at=NOW, window_minutes=60), 0.0, HealthThresholds())
    assert half.dependencies == pytest.approx(6.5 / 7, abs=1e-4)


def test_parts_without_data_are_left_out_not_counted_as_full():
    quiet = health_score([], MetricsSnapshot(at=NOW, window_minutes=60), None, HealthThresholds())
    assert (quiet.dependencies, quiet.llm, quiet.tools, quiet.prompt_cache, quiet.parallelism) == (None,) * 5
    assert set(quiet.not_applicable) == {"dependencies", "llm", "tools", "prompt_cache", "parallelism"}
    assert "no tool call ran" in quiet.not_applicable["tools"]
    assert quiet.score == 100  # approvals and cache size, both measured and fine


@pytest.mark.parametrize(
    ("left", "level"),
    [(100, BudgetLevel.OK), (30.01, BudgetLevel.OK), (30, BudgetLevel.WARNING), (10.01, BudgetLevel.WARNING),
     (10, BudgetLevel.CRITICAL), (0, BudgetLevel.CRITICAL)],
)  # fmt: skip
def test_budget_thresholds(left, level):
    assert budget_level(left, HealthThresholds()) == level


# --- on the dev server ----------------------------------------------------------------------------


async def run_round(client, settings) -> MonitoringResult:
    return await client.execute_workflow(
        MonitoringWorkflow.run,
        MonitoringInput(window_minutes=60),
        id=f"{settings.schedule_id_prefix}monitoring-{uuid.uuid4().hex[:6]}",
        task_queue=settings.task_queue,
        execution_timeout=timedelta(minutes=2),
    )


async def test_ollama_down_raises_one_alert_and_recovery_resolves_it(temporal_env, temporal_address, fake_ollama, tmp_path):
    with webhook() as hook:
        settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url, alert_webhook_url=hook.url)
        store = MonitoringStore(make_engine(settings.effective_database_url))
        async with schedule_worker(temporal_env.client, settings):
            healthy = await run_round(temporal_env.client, settings)
            assert "dependency:ollama" not in healthy.opened

            fake_ollama.down()
            first = await run_round(temporal_env.client, settings)
            second = await run_round(temporal_env.client, settings)
            assert "dependency:ollama" in first.opened
            assert "dependency:ollama" not in second.opened  # de-duplicated while it lasts
            active = {a.key: a for a in store.alerts(active_only=True)}
            assert active["dependency:ollama"].severity == Severity.CRITICAL
            assert active["dependency:ollama"].occurrences == 2
            report = store.latest_report()
            assert report is not None and report.score < healthy.score
            assert next(c for c in report.checks if c.name == "ollama").status == CheckStatus.DOWN
            assert any(a.key == "dependency:ollama" for a in report.alerts)

            fake_ollama.up()
            recovered = await run_round(temporal_env.client, settings)
            assert "dependency:ollama" in recovered.resolved
            assert "dependency:ollama" not in {a.key for a in store.alerts(active_only=True)}
            history = [a for a in store.alerts() if a.key == "dependency:ollama"]
            assert len(history) == 1 and history[0].resolved_at is not None

        assert hook.events("dependency:ollama") == ["opened", "resolved"]
        assert REGISTRY.get_sample_value("daemonflow_health_score") == recovered.score
        # Probes failed in two of the four rounds: the error rate keeps the score down for a while.
        assert store.latest_report().breakdown.llm_error_rate == 0.5


async def test_on_an_openai_compatible_server_the_model_servers_are_checked_not_ollama(
    temporal_env, temporal_address, fake_openai, tmp_path
):
    """``DAEMONFLOW_LLM_PROVIDER=openai`` with nothing at ``OLLAMA_HOST``: the checks are the chat
    server (``openai``) and the separate embedding server (``openai-embeddings``); Ollama is not a
    dependency, so it raises no alert, and the LLM error rate follows these servers."""
    with FakeOpenAI(models=["bge-small"]) as embeddings:
        embeddings.owned_by = "vllm"  # lists exactly what it serves: a missing model is certain
        settings = schedule_settings(
            tmp_path, temporal_address, "http://127.0.0.1:9", llm_provider="openai", openai_base_url=fake_openai.url,
            model="smollm2", embed_base_url=embeddings.url, embed_model="nomic-embed-text",
        )
        store = MonitoringStore(make_engine(settings.effective_database_url))
        async with schedule_worker(temporal_env.client, settings):
            first = await run_round(temporal_env.client, settings)
            fake_openai.down()
            second = await run_round(temporal_env.client, settings)
    assert not [key for key in first.opened + second.opened if "ollama" in key]
    assert "dependency:openai" not in first.opened and "dependency:openai" in second.opened
    assert "dependency:openai-embeddings" in first.opened
    report = store.latest_report()
    by_name = {c.name: c for c in report.checks}
    assert {"openai", "openai-embeddings"} <= set(by_name) and "ollama" not in by_name
    assert by_name["openai"].status == CheckStatus.DOWN and fake_openai.url in by_name["openai"].detail
    embed = by_name["openai-embeddings"]
    assert embed.status == CheckStatus.DEGRADED and f"vLLM at {embeddings.url} answers but has no nomic-embed-text" in embed.detail
    assert report.breakdown.llm_error_rate == 0.5  # one round of two could not reach a model server


async def test_budgets_raise_warning_and_critical_alerts(temporal_env, temporal_address, fake_ollama, tmp_path):
    budgets = {name: TokenBudget(window_hours=24, tokens=1_000) for name in ("llama3.2", "big", "fine")}
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url, token_budgets=budgets)
    engine = make_engine(settings.effective_database_url)
    now = datetime.now(UTC)
    used = {"llama3.2": 700, "big": 950, "fine": 100}
    with Session(engine) as session:
        for seq, (model, tokens) in enumerate(used.items(), start=1):
            session.add(ModelUsage(conversation_id="c", seq=seq, turn=1, model=model, prompt_tokens=tokens // 2,
                                   completion_tokens=tokens - tokens // 2, created_at=now - timedelta(hours=1)))
        # outside the 24 h window: not counted
        session.add(ModelUsage(conversation_id="c", seq=10, turn=1, model="fine", prompt_tokens=5_000,
                               created_at=now - timedelta(hours=30)))
        session.commit()  # fmt: skip
    async with schedule_worker(temporal_env.client, settings):
        result = await run_round(temporal_env.client, settings)
    store = MonitoringStore(engine)
    active = {a.key: a for a in store.alerts(active_only=True)}
    assert active["budget:llama3.2"].severity == Severity.WARNING  # 30 % left
    assert active["budget:big"].severity == Severity.CRITICAL  # 5 % left
    assert "budget:fine" not in active
    assert {"budget:llama3.2", "budget:big"} <= set(result.opened)
    budgets_seen = {b.model: b for b in store.latest_report().metrics.budgets}
    assert (budgets_seen["fine"].used_tokens, budgets_seen["fine"].left_pct) == (100, 90.0)
    assert REGISTRY.get_sample_value("daemonflow_budget_left_ratio", {"model": "big"}) == pytest.approx(0.05)
    assert REGISTRY.get_sample_value("daemonflow_alerts_active", {"severity": "critical"}) >= 1


def test_alert_store_and_trends_on_both_backends(database_url):
    engine = make_engine(database_url)
    store = MonitoringStore(engine)
    warn = AlertCondition(key="budget:m", kind="budget", severity=Severity.WARNING, message="25 % left")
    crit = warn.model_copy(update={"severity": Severity.CRITICAL, "message": "5 % left"})
    opened = store.sync_alerts([warn], NOW)
    assert [a.key for a in opened.opened] == ["budget:m"]
    escalated = store.sync_alerts([crit], NOW + timedelta(minutes=5))
    assert not escalated.opened and [a.severity for a in escalated.escalated] == [Severity.CRITICAL]
    resolved = store.sync_alerts([], NOW + timedelta(minutes=10))
    assert [a.key for a in resolved.resolved] == ["budget:m"] and resolved.active == []
    again = store.sync_alerts([warn], NOW + timedelta(minutes=15))
    assert [a.key for a in again.opened] == ["budget:m"]  # a new episode is a new alert
    assert len(store.alerts()) == 2 and len(store.alerts(active_only=True)) == 1

    with Session(engine) as session:
        for minute, tokens in ((5, 100), (25, 300), (80, 50)):
            session.add(ModelUsage(conversation_id="t", seq=minute, turn=1, model="m", prompt_tokens=tokens,
                                   created_at=NOW - timedelta(minutes=90) + timedelta(minutes=minute)))
        session.add(Action(conversation_id="t", tool_call_id="1-0", turn=1, agent="a", tool="run", action_type="X",
                           args_hash="h", decision="allow", source="rule:x", success=False,
                           created_at=NOW - timedelta(minutes=3)))
        session.commit()  # fmt: skip
    trends = usage_trends(engine, NOW, minutes=90, bucket_minutes=30)
    assert [b.tokens for b in trends.buckets] == [400, 0, 50]
    assert trends.buckets[0].tokens_by_model == {"m": 400}
    assert (trends.buckets[-1].actions, trends.buckets[-1].action_failures) == (1, 1)
