"""Monitoring activities: probe the dependencies, gather usage and agent figures, record the report.

Three activities so that each step shows (and retries) on its own in the Web UI:

- ``health.check`` probes every dependency concurrently, each with a timeout, and never fails: a
  dependency that does not answer is a ``down`` check, which is the point of monitoring. The model
  servers are the ones the settings use (``activities/llm/probe.py``), each named by its provider:
  ``ollama`` or ``openai`` for the chat server, ``…-embeddings`` for a separate embedding server.
- ``health.metrics`` reads model usage, budgets, the action registry, Temporal visibility (running
  conversations and their state, pending approvals) and the cache index.
- ``health.record`` scores (``activities.health_score``), opens/refreshes/resolves alerts, stores
  the snapshot, deletes snapshots older than ``history_max_days``, sets the Prometheus gauges and
  POSTs alert changes to the webhook.

``health.metrics`` also reads the prompt cache, the plans' parallelisation, the window against its
7-day baseline and the 7-day trends (``activities/monitoring_figures.py``).

The read side for the CLI and the HTTP API is ``latest_report`` / ``active_alerts`` /
``trends`` below: plain functions over the store that return ``models.monitoring`` models.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import shutil
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.client import Client

from activities import health_score, monitoring_metrics
from activities.analytics import DENIED
from activities.cache import ScheduledActivities
from activities.llm.probe import ModelServer, is_model_server_check, model_servers, probe_model_server, verdict
from activities.monitoring_figures import with_performance_figures
from config.settings import Settings
from control.conversations import Conversations
from control.errors import ControlError
from control.visibility import ConversationFilter, ConversationItem
from models.monitoring import (
    AgentSummary,
    AlertView,
    ApprovalStats,
    BudgetLevel,
    BudgetStatus,
    CacheStats,
    CheckStatus,
    DependencyCheck,
    HealthReport,
    HealthThresholds,
    MetricsRequest,
    MetricsSnapshot,
    ModelUsageStats,
    MonitoringResult,
    RecordInput,
    ToolStats,
    UsageTrends,
)
from store.monitoring import MonitoringStore, usage_trends
from store.tables import Action, ModelUsage

log = logging.getLogger("daemonflow.monitoring")

MAX_APPROVAL_QUERIES = 10
"""Awaiting conversations asked for their oldest pending approval per run (the rest are counted)."""
MAX_LISTED_CONVERSATIONS = 2000
APPROVAL_QUERY_TIMEOUT_S = 3.0
MODEL_SERVER_STATUS = {"ok": CheckStatus.OK, "missing": CheckStatus.DEGRADED, "down": CheckStatus.DOWN}


def thresholds_from(settings: Settings) -> HealthThresholds:
    return HealthThresholds(
        llm_latency_warning_ms=settings.llm_latency_warning_ms,
        llm_latency_critical_ms=settings.llm_latency_critical_ms,
        approval_backlog_warning=settings.approval_backlog_warning,
        approval_backlog_critical=settings.approval_backlog_critical,
        approval_wait_warning_s=settings.approval_wait_warning_s,
        approval_wait_critical_s=settings.approval_wait_critical_s,
        budget_warning_pct=settings.budget_warning_pct,
        budget_critical_pct=settings.budget_critical_pct,
        prompt_cache_warning=settings.prompt_cache_warning_pct / 100,
        prompt_cache_critical=settings.prompt_cache_critical_pct / 100,
        parallelism_warning=settings.parallelism_warning_pct / 100,
        parallelism_critical=settings.parallelism_critical_pct / 100,
    )


def budget_level(left_pct: float, thresholds: HealthThresholds) -> BudgetLevel:
    """Critical at or under ``budget_critical_pct`` left, warning at or under ``budget_warning_pct``."""
    if left_pct <= thresholds.budget_critical_pct:
        return BudgetLevel.CRITICAL
    if left_pct <= thresholds.budget_warning_pct:
        return BudgetLevel.WARNING
    return BudgetLevel.OK


# --- read side (CLI, API) -----------------------------------------------------------------------


def latest_report(engine: Engine) -> HealthReport | None:
    """``GET /monitoring/report``: the last run's report (score, checks, usage, budgets, agents, alerts)."""
    return MonitoringStore(engine).latest_report()


def active_alerts(engine: Engine, include_resolved: bool = False, limit: int = 100) -> list[AlertView]:
    """``GET /monitoring/alerts``: open alerts, or the history with ``include_resolved``."""
    return MonitoringStore(engine).alerts(active_only=not include_resolved, limit=limit)


def trends(engine: Engine, settings: Settings, now: datetime, bucket_minutes: int = 10) -> UsageTrends:
    """``GET /monitoring/trends``: usage over the last ``monitoring_trend_minutes`` (90 by default)."""
    return usage_trends(engine, now, settings.monitoring_trend_minutes, bucket_minutes)


# --- activities ---------------------------------------------------------------------------------


class HealthActivities(ScheduledActivities):
    def __init__(
        self, settings: Settings, engine: Engine, docker_client: Any | None = None, client: Client | None = None
    ) -> None:
        super().__init__(settings, engine, docker_client, client)
        self._monitoring = MonitoringStore(engine)

    # -- health.check --

    @activity.defn(name="health.check")
    async def check(self, at: datetime) -> list[DependencyCheck]:
        """Every dependency probed at once; a probe that fails or times out is a ``down`` check.

        ``at`` is not read: it stays in the signature so that recorded histories still replay.
        """
        probes: dict[str, Callable[[], Awaitable[tuple[CheckStatus, str]]]] = {
            **{server.name: functools.partial(self._model_server, server) for server in model_servers(self._settings)},
            "memory": self._memory,
            "docker": self._docker_engine,
            "store": self._store,
            "temporal": self._temporal,
            "disk": self._disk,
            "filesystem": self._filesystem,
        }
        return list(await asyncio.gather(*(self._timed(name, probe) for name, probe in probes.items())))

    async def _timed(self, name: str, probe: Callable[[], Awaitable[tuple[CheckStatus, str]]]) -> DependencyCheck:
        started = time.perf_counter()
        try:
            status, detail = await asyncio.wait_for(probe(), timeout=self._settings.health_check_timeout_s)
        except TimeoutError:
            status, detail = CheckStatus.DOWN, f"no answer within {self._settings.health_check_timeout_s:g}s"
        except Exception as err:  # noqa: BLE001 - any failure of a probe is what it reports
            status, detail = CheckStatus.DOWN, f"{type(err).__name__}: {err}"[:500]
        latency = None if status == CheckStatus.SKIPPED else round((time.perf_counter() - started) * 1000, 1)
        return DependencyCheck(name=name, status=status, latency_ms=latency, detail=detail)

    async def _model_server(self, server: ModelServer) -> tuple[CheckStatus, str]:
        """Down when it does not answer, degraded when it surely lacks a model the settings name."""
        probe = await probe_model_server(server, self._settings.health_check_timeout_s)
        state, detail = verdict(probe, server.wanted)
        return MODEL_SERVER_STATUS[state], detail

    async def _memory(self) -> tuple[CheckStatus, str]:
        settings = self._settings
        if settings.memory_backend == "pgvector":
            if self._engine.dialect.name != "postgresql":
                return CheckStatus.DOWN, "memory backend pgvector needs a PostgreSQL DATABASE_URL"

            def probe() -> str | None:
                with self._engine.connect() as connection:
                    return connection.execute(
                        text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                    ).scalar()

            version = await asyncio.to_thread(probe)
            if version is None:
                return CheckStatus.DOWN, "the pgvector extension is not installed in the database"
            return CheckStatus.OK, f"pgvector {version}"
        if settings.qdrant_url:
            headers = {"api-key": settings.qdrant_api_key} if settings.qdrant_api_key else {}
            async with httpx.AsyncClient(timeout=settings.health_check_timeout_s, headers=headers) as http:
                (await http.get(settings.qdrant_url.rstrip("/") + "/readyz")).raise_for_status()
            return CheckStatus.OK, f"Qdrant at {settings.qdrant_url} ready"
        # The embedded engine (Qdrant Edge) admits one process: probe the directory, never open it.
        path = settings.embedded_memory_dir
        target = path if path.exists() else _existing_parent(path)
        if not os.access(target, os.W_OK):
            return CheckStatus.DOWN, f"embedded memory directory {path} is not writable"
        return CheckStatus.OK, f"embedded Qdrant Edge at {path}" + ("" if path.exists() else " (not created yet)")

    async def _docker_engine(self) -> tuple[CheckStatus, str]:
        def probe() -> str:
            client = self._docker
            if client is None:
                import docker

                client = docker.from_env(timeout=int(self._settings.health_check_timeout_s) or 1)
            try:
                client.ping()
                return str(client.version().get("Version", "?"))
            finally:
                if client is not self._docker:
                    client.close()

        return CheckStatus.OK, f"Docker engine {await asyncio.to_thread(probe)}"

    async def _store(self) -> tuple[CheckStatus, str]:
        def probe() -> None:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        await asyncio.to_thread(probe)
        return CheckStatus.OK, f"{self._engine.dialect.name} records store"

    async def _temporal(self) -> tuple[CheckStatus, str]:
        timeout = timedelta(seconds=self._settings.health_check_timeout_s)
        if not await self._client.service_client.check_health(timeout=timeout):
            return CheckStatus.DOWN, "the frontend answers but reports the workflow service unavailable"
        return CheckStatus.OK, f"Temporal at {self._settings.temporal_address}, namespace {self._client.namespace}"

    async def _disk(self) -> tuple[CheckStatus, str]:
        path = _existing_parent(self._settings.var_dir)
        usage = shutil.disk_usage(path)
        free_pct = usage.free / usage.total * 100 if usage.total else 0.0
        detail = f"{usage.free / 1e9:.1f} GB free ({free_pct:.0f}%) on the volume of {path}"
        if free_pct <= self._settings.disk_free_critical_pct:
            return CheckStatus.DOWN, detail
        if free_pct <= self._settings.disk_free_warning_pct:
            return CheckStatus.DEGRADED, detail
        return CheckStatus.OK, detail

    async def _filesystem(self) -> tuple[CheckStatus, str]:
        def probe() -> str:
            var_dir = self._settings.var_dir
            var_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=var_dir, prefix=".daemonflow-probe-") as probe_file:
                probe_file.write(b"ok")
                probe_file.flush()
                os.fsync(probe_file.fileno())
            return f"{var_dir} is writable"

        return CheckStatus.OK, await asyncio.to_thread(probe)

    # -- health.metrics --

    @activity.defn(name="health.metrics")
    async def metrics(self, request: MetricsRequest) -> MetricsSnapshot:
        snapshot = await asyncio.to_thread(self._store_metrics, request)
        running, approvals = await self._visibility()
        agents = {a.agent: a for a in snapshot.agents}
        for agent, conversations in running.items():
            summary = agents.setdefault(agent, AgentSummary(agent=agent))
            summary.running_conversations = len(conversations)
            summary.states = dict(Counter(c.state or "unknown" for c in conversations))
            latest = max(conversations, key=lambda c: (c.started_at is not None, c.started_at, c.workflow_id))
            last_tool = summary.current_task
            summary.current_task = f"{latest.state or 'unknown'} in {latest.workflow_id}" + (
                f" (last tool: {last_tool})" if last_tool else ""
            )
        snapshot.agents = sorted(agents.values(), key=lambda a: a.agent)
        snapshot.approvals.pending = approvals.pending
        snapshot.approvals.oldest_wait_s = approvals.oldest_wait_s
        return snapshot

    def _store_metrics(self, request: MetricsRequest) -> MetricsSnapshot:
        at, settings = request.at, self._settings
        thresholds = thresholds_from(settings)
        window_start = at - timedelta(minutes=request.window_minutes)
        with Session(self._engine) as session:
            usage_since = at - timedelta(hours=settings.usage_window_hours)
            usage_rows = list(session.exec(select(ModelUsage).where(col(ModelUsage.created_at) >= usage_since)))
            budgets = []
            for model, budget in sorted(settings.token_budgets.items()):
                since = at - timedelta(hours=budget.window_hours)
                used = sum(
                    (r.prompt_tokens or 0) + (r.completion_tokens or 0)
                    for r in usage_rows
                    if r.model == model and r.created_at >= since
                )
                if since < usage_since:  # a budget window longer than the usage window: read it whole
                    used = _tokens_since(session, model, since)
                left_pct = max(0.0, (budget.tokens - used) / budget.tokens * 100)
                budgets.append(
                    BudgetStatus(
                        model=model,
                        window_hours=budget.window_hours,
                        budget_tokens=budget.tokens,
                        used_tokens=used,
                        left_pct=round(left_pct, 2),
                        level=budget_level(left_pct, thresholds),
                    )
                )
            actions = list(
                session.exec(select(Action).where(col(Action.created_at) >= window_start).order_by(col(Action.id)))
            )
        latency_rows = [r for r in usage_rows if r.created_at >= window_start]
        usage = [
            _usage_stats(model, settings.usage_window_hours, rows, [r for r in latency_rows if r.model == model])
            for model, rows in sorted(_group(usage_rows, lambda r: r.model).items())
        ]
        tools = ToolStats(
            runs=sum(a.success is not None for a in actions),
            failures=sum(a.success is False for a in actions),
            denied=sum(a.decision in DENIED for a in actions),
        )
        agents = []
        for agent, rows in sorted(_group(actions, lambda a: a.agent).items()):
            done, failed = sum(a.success is True for a in rows), sum(a.success is False for a in rows)
            agents.append(
                AgentSummary(
                    agent=agent,
                    tasks_completed=done,
                    tasks_failed=failed,
                    success_rate=round(done / (done + failed), 4) if done + failed else None,
                    current_task=rows[-1].tool,
                )
            )
        waits = [a.approval_wait_ms for a in actions if a.approval_wait_ms is not None]
        entries, total, indexed_at = self._cache.totals()
        snapshot = MetricsSnapshot(
            at=at,
            window_minutes=request.window_minutes,
            usage=usage,
            budgets=budgets,
            agents=agents,
            tools=tools,
            approvals=ApprovalStats(avg_wait_s=round(sum(waits) / len(waits) / 1000, 1) if waits else None),
            cache=CacheStats(
                entries=entries,
                total_bytes=total,
                threshold_bytes=int(settings.cache_threshold_mb * 1e6),
                indexed_at=indexed_at,
            ),
        )
        return with_performance_figures(self._engine, snapshot)

    async def _visibility(self) -> tuple[dict[str, list[ConversationItem]], ApprovalStats]:
        """Running conversations of this task queue per agent, and the approvals waiting in them."""
        conversations = Conversations(self._client, self._settings.task_queue, APPROVAL_QUERY_TIMEOUT_S)
        listed = await conversations.matching(ConversationFilter(running=True), MAX_LISTED_CONVERSATIONS)
        running: dict[str, list[ConversationItem]] = defaultdict(list)
        for item in listed:
            running[item.agent or "unknown"].append(item)
        awaiting = [item for item in listed if item.awaiting_approval]
        requested: list[datetime] = []
        for item in awaiting[:MAX_APPROVAL_QUERIES]:
            try:
                pending = await conversations.of_workflow(item.workflow_id).pending_approvals()
            except ControlError as err:  # a conversation that cannot answer is still counted
                log.info("could not ask %s for its pending approvals: %s", item.workflow_id, err)
                continue
            requested += [p.requested_at for p in pending if p.requested_at]
        oldest = round(time.time() - min(requested).timestamp(), 1) if requested else None
        return running, ApprovalStats(pending=len(awaiting), oldest_wait_s=oldest)

    # -- health.record --

    @activity.defn(name="health.record")
    async def record(self, request: RecordInput) -> MonitoringResult:
        return await asyncio.to_thread(self._record, request)

    def _record(self, request: RecordInput) -> MonitoringResult:
        settings, at = self._settings, request.at
        thresholds = thresholds_from(settings)
        servers = [c for c in request.checks if is_model_server_check(c.name)]
        servers_ok = all(c.status != CheckStatus.DOWN for c in servers) if servers else None
        probes = self._monitoring.model_server_probes(at - timedelta(minutes=settings.monitoring_trend_minutes))
        if servers_ok is not None:
            probes.append(servers_ok)
        error_rate = probes.count(False) / len(probes) if probes else None
        breakdown = health_score.health_score(request.checks, request.metrics, error_rate, thresholds)
        found = health_score.conditions(request.checks, request.metrics, breakdown, thresholds)
        status = health_score.overall_status(breakdown.score, found)
        changes = self._monitoring.sync_alerts(found, at)
        report = HealthReport(
            at=at,
            run_id=request.run_id,
            score=breakdown.score,
            status=status,
            breakdown=breakdown,
            checks=request.checks,
            metrics=request.metrics,
            alerts=changes.active,
        )
        self._monitoring.save_snapshot(report, servers_ok)
        pruned = self._monitoring.delete_snapshots_before(at - timedelta(days=settings.history_max_days))
        monitoring_metrics.update(breakdown.score, changes.active, request.metrics.budgets, request.checks)
        monitoring_metrics.update_performance(breakdown, request.metrics.weekly)
        if settings.alert_webhook_url:
            self._notify(changes.opened, "opened")
            self._notify(changes.escalated, "escalated")
            self._notify(changes.resolved, "resolved")
        for alert in changes.opened + changes.escalated:
            log.warning("alert %s [%s]: %s", alert.key, alert.severity.value, alert.message)
        for alert in changes.resolved:
            log.info("alert resolved %s: %s", alert.key, alert.message)
        return MonitoringResult(
            at=at,
            score=breakdown.score,
            status=status,
            active_alerts=len(changes.active),
            opened=[a.key for a in changes.opened],
            resolved=[a.key for a in changes.resolved],
            pruned_snapshots=pruned,
        )

    def _notify(self, alerts: list[AlertView], event: str) -> None:
        """POST each change to the webhook; a failed POST is logged, never fails the run."""
        for alert in alerts:
            payload = {"source": "daemonflow", "event": event, "alert": alert.model_dump(mode="json")}
            try:
                httpx.post(self._settings.alert_webhook_url, json=payload, timeout=5).raise_for_status()
            except httpx.HTTPError as err:
                log.warning("alert webhook %s failed for %s: %s", self._settings.alert_webhook_url, alert.key, err)
                continue
            self._monitoring.mark_notified(alert.id, None if event == "resolved" else alert.severity.value)

    def all(self) -> list[Callable[..., Any]]:
        return [self.check, self.metrics, self.record]


def _existing_parent(path: Path) -> Path:
    path = path.resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _group(rows: list[Any], key: Callable[[Any], str]) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        groups[key(row)].append(row)
    return groups


def _tokens_since(session: Session, model: str, since: datetime) -> int:
    rows = session.exec(
        select(ModelUsage.prompt_tokens, ModelUsage.completion_tokens).where(
            ModelUsage.model == model, col(ModelUsage.created_at) >= since
        )
    )
    return sum((p or 0) + (c or 0) for p, c in rows)


def _usage_stats(model: str, window_hours: float, rows: list[ModelUsage], recent: list[ModelUsage]) -> ModelUsageStats:
    totals = [r.total_duration_ms for r in rows if r.total_duration_ms is not None]
    first_token = [
        (r.load_duration_ms or 0) + (r.prompt_eval_duration_ms or 0)
        for r in recent
        if r.load_duration_ms is not None or r.prompt_eval_duration_ms is not None
    ]
    return ModelUsageStats(
        model=model,
        window_hours=window_hours,
        calls=len(rows),
        prompt_tokens=sum(r.prompt_tokens or 0 for r in rows),
        completion_tokens=sum(r.completion_tokens or 0 for r in rows),
        avg_total_ms=round(sum(totals) / len(totals), 1) if totals else None,
        avg_first_token_ms=round(sum(first_token) / len(first_token), 1) if first_token else None,
    )
