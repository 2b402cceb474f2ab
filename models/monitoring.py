"""The contracts of scheduled monitoring: dependency checks, usage, budgets, the health report, alerts.

``MonitoringWorkflow`` passes these between its activities; the CLI (``daemonflow monitor``) and the
HTTP API read the same models back from the store, so what an operator sees is exactly what a run
recorded. Everything is plain JSON-able pydantic (times are aware UTC datetimes).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from models.contract import Contract  # noqa: F401  (re-exported: the other contracts import it from here)
from models.weekly_trends import WeeklyTrends


class CheckStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    """Answers, but badly (slow, nearly full): a warning."""
    DOWN = "down"
    """Does not answer or fails: critical."""
    SKIPPED = "skipped"
    """Not configured here (e.g. no memory backend in use); left out of the score."""


class DependencyCheck(Contract):
    """One probe of one dependency, with how long it took."""

    name: str
    """ollama, memory, docker, store, temporal, disk, filesystem"""
    status: CheckStatus
    latency_ms: float | None = None
    detail: str = ""
    """What was probed and what came back (the error, the free space, the version...)."""


class MonitoringInput(Contract):
    """Input of ``MonitoringWorkflow``; everything has a default so a schedule can start it bare."""

    window_minutes: int | None = None
    """Window of the usage, tool and agent figures. The schedule passes setting
    ``monitoring_window_minutes``; a bare start uses the workflow's 60."""


class MetricsRequest(Contract):
    at: datetime
    window_minutes: int


class ModelUsageStats(Contract):
    model: str
    window_hours: float
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    avg_total_ms: float | None = None
    avg_first_token_ms: float | None = None
    """Load + prompt evaluation: how long a caller waits before the model starts answering."""

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class BudgetLevel(StrEnum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"


class BudgetStatus(Contract):
    """A model's token budget over a sliding window and how much of it is left."""

    model: str
    window_hours: float
    budget_tokens: int
    used_tokens: int
    left_pct: float
    """0-100; negative use is impossible, over-use clamps to 0."""
    level: BudgetLevel


class AgentSummary(Contract):
    agent: str
    running_conversations: int = 0
    states: dict[str, int] = Field(default_factory=dict)
    """Running conversations per ``DaemonflowState`` (idle, thinking, awaiting_approval...)."""
    tasks_completed: int = 0
    """Tool calls that ran and succeeded in the window."""
    tasks_failed: int = 0
    success_rate: float | None = None
    current_task: str | None = None
    """What its most recently started running conversation is doing, and the last tool it called."""


class ToolStats(Contract):
    runs: int = 0
    """Tool calls that ran (success known) in the window."""
    failures: int = 0
    denied: int = 0
    """Denied or timed out approvals in the window."""

    @property
    def success_rate(self) -> float | None:
        return None if not self.runs else (self.runs - self.failures) / self.runs


class ApprovalStats(Contract):
    pending: int = 0
    """Running conversations waiting for a person (``DaemonflowAwaitingApproval=true``)."""
    oldest_wait_s: float | None = None
    avg_wait_s: float | None = None
    """Average wait of the approvals decided in the window (when the registry records it)."""


class CacheStats(Contract):
    entries: int = 0
    total_bytes: int = 0
    threshold_bytes: int = 0
    indexed_at: datetime | None = None
    """When ``CacheCleanupWorkflow`` last indexed the cache (its figures are that old)."""


class PromptCacheStats(Contract):
    """The model server's prompt (KV) cache over the window's model calls, as far as the server says.

    Only calls whose server reported its cached prompt tokens count (``model_usage.cached_prompt_tokens``
    not NULL): OpenAI-compatible servers (``usage.prompt_tokens_details.cached_tokens``: vLLM,
    llama-server, LM Studio…). Ollama's native API reports the whole prompt in ``prompt_eval_count``
    whether it was cached or not, and nothing else, so its calls are left out."""

    calls: int = 0
    """Model calls in the window."""
    reporting_calls: int = 0
    """Of which the server said how many prompt tokens came from its cache."""
    prompt_tokens: int = 0
    """Prompt tokens of the reporting calls."""
    cached_tokens: int = 0
    hit_rate: float | None = None
    """``cached_tokens / prompt_tokens`` of the reporting calls; None: not applicable (no data)."""


class ParallelismStats(Contract):
    """How much of the parallelism plans could have had they really had, in the window.

    Read from ``task_runs`` (rows the task-plan workflow writes; see ``store/task_runs.py``). Per
    plan, over time: *running* = its tasks between start and end, *runnable* = its tasks between
    ``ready_at`` (every dependency done) and end; ``rate = ∫ min(running, cap) / ∫ min(runnable,
    cap)`` summed over plans, ``cap`` the plan's parallel limit. 1 when every task that could run
    ran, whatever the graph's shape (a chain is not penalised); low when ready tasks waited with
    slots free (a scheduler that serialises, too few workers)."""

    plans: int = 0
    task_runs: int = 0
    """Task runs whose runnable time overlaps the window."""
    running_s: float = 0.0
    attainable_s: float = 0.0
    rate: float | None = None
    """``running_s / attainable_s``; None: not applicable (no task of a plan could run in the window)."""


class LatencyComparison(Contract):
    """The median of one model's time to first token, or of one tool's run time, in the window
    against the same median over the baseline days before the window."""

    kind: str
    """``model`` (load + prompt evaluation, ms) or ``tool`` (a run's duration, ms)."""
    name: str
    window_p50_ms: float
    window_count: int
    baseline_p50_ms: float | None = None
    baseline_count: int = 0
    ratio: float | None = None
    """window / baseline median; None without a baseline."""


class ErrorRateComparison(Contract):
    """The failure rate of tool runs in the window against the baseline days before it."""

    window_runs: int = 0
    window_failures: int = 0
    window_rate: float | None = None
    baseline_runs: int = 0
    baseline_failures: int = 0
    baseline_rate: float | None = None


class MetricsSnapshot(Contract):
    """Everything a monitoring run reads from the store and Temporal's visibility."""

    at: datetime
    window_minutes: int
    usage: list[ModelUsageStats] = Field(default_factory=list)
    budgets: list[BudgetStatus] = Field(default_factory=list)
    agents: list[AgentSummary] = Field(default_factory=list)
    tools: ToolStats = Field(default_factory=ToolStats)
    approvals: ApprovalStats = Field(default_factory=ApprovalStats)
    cache: CacheStats = Field(default_factory=CacheStats)
    prompt_cache: PromptCacheStats = Field(default_factory=PromptCacheStats)
    parallelism: ParallelismStats = Field(default_factory=ParallelismStats)
    latency_vs_baseline: list[LatencyComparison] = Field(default_factory=list)
    """Per model and per tool with runs in the window (the regression alerts' evidence)."""
    tool_errors_vs_baseline: ErrorRateComparison = Field(default_factory=ErrorRateComparison)
    """The error-spike alert's evidence."""
    weekly: WeeklyTrends | None = None
    """Daily figures and trends of the last 7 days (``models/weekly_trends.py``)."""


class HealthThresholds(Contract):
    """The knobs of the score and the alerts (from settings; a model so tests can pass known ones)."""

    llm_latency_warning_ms: float = 2_000
    llm_latency_critical_ms: float = 5_000
    llm_error_rate_warning: float = 0.2
    tool_success_warning: float = 0.8
    tool_success_critical: float = 0.5
    approval_backlog_warning: int = 3
    approval_backlog_critical: int = 10
    approval_wait_warning_s: float = 900
    approval_wait_critical_s: float = 3_600
    budget_warning_pct: float = 30
    budget_critical_pct: float = 10
    prompt_cache_full_at: float = 0.70
    """The prompt-cache part of the score is 1 from this hit rate, falling linearly to 0 at 0 (seed 004)."""
    prompt_cache_warning: float = 0.50
    prompt_cache_critical: float = 0.30
    parallelism_full_at: float = 0.30
    """The parallelism part is 1 from this rate, falling linearly to 0 at 0 (seed 004)."""
    parallelism_warning: float = 0.30
    parallelism_critical: float = 0.20
    min_cache_calls_for_alert: int = 5
    min_task_runs_for_alert: int = 3
    regression_warning_ratio: float = 1.5
    regression_critical_ratio: float = 2.5
    regression_min_delta_ms: dict[str, float] = Field(default_factory=lambda: {"model": 200.0, "tool": 500.0})
    """A slower median is a regression only if it is also this much slower (noise on fast calls)."""
    regression_min_window: int = 5
    baseline_min_samples: int = 20
    spike_warning_factor: float = 2.0
    spike_warning_points: float = 0.15
    spike_critical_factor: float = 3.0
    spike_critical_points: float = 0.30


class ScoreBreakdown(Contract):
    """The health score and its parts; see ``activities.health_score`` for the formula."""

    score: int
    """0-100, over the parts that apply."""
    dependencies: float | None
    llm: float | None
    tools: float | None
    approvals: float
    cache: float
    """Each part is 0..1 before weighting; None: not applicable (no data), left out of the score."""
    prompt_cache: float | None = None
    parallelism: float | None = None
    llm_error_rate: float = 0.0
    llm_latency_ms: float | None = None
    prompt_cache_hit_rate: float | None = None
    parallelism_rate: float | None = None
    not_applicable: dict[str, str] = Field(default_factory=dict)
    """Why each part left out of the score has no data, by part name."""


class HealthStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    CRITICAL = "critical"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class AlertCondition(Contract):
    """A condition that holds right now; the store turns it into an alert, once per episode."""

    key: str
    """Stable identity of the condition, e.g. ``dependency:ollama``, ``budget:llama3.2``."""
    kind: str
    severity: Severity
    message: str


class AlertView(Contract):
    id: int
    key: str
    kind: str
    severity: Severity
    message: str
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None = None
    occurrences: int = 1
    """How many monitoring runs saw the condition in this episode."""

    @property
    def active(self) -> bool:
        return self.resolved_at is None


class AlertChanges(Contract):
    opened: list[AlertView] = Field(default_factory=list)
    escalated: list[AlertView] = Field(default_factory=list)
    """Still open, but its severity changed (warning → critical, or back)."""
    resolved: list[AlertView] = Field(default_factory=list)
    active: list[AlertView] = Field(default_factory=list)


class RecordInput(Contract):
    at: datetime
    run_id: str = ""
    checks: list[DependencyCheck]
    metrics: MetricsSnapshot


class HealthReport(Contract):
    """One monitoring run's full report: stored as a snapshot, shown by ``daemonflow monitor``."""

    at: datetime
    run_id: str = ""
    score: int
    status: HealthStatus
    breakdown: ScoreBreakdown
    checks: list[DependencyCheck]
    metrics: MetricsSnapshot
    alerts: list[AlertView] = Field(default_factory=list)
    """The alerts active after this run."""


class MonitoringResult(Contract):
    """What ``MonitoringWorkflow`` returns: small, the full report is in the store."""

    at: datetime
    score: int
    status: HealthStatus
    active_alerts: int
    opened: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list)
    """Alert keys opened / resolved by this run."""
    pruned_snapshots: int = 0
    """Health snapshots older than ``history_max_days`` deleted by this run."""


class TrendBucket(Contract):
    start: datetime
    model_calls: int = 0
    tokens: int = 0
    tokens_by_model: dict[str, int] = Field(default_factory=dict)
    actions: int = 0
    action_failures: int = 0
    avg_score: float | None = None


class UsageTrends(Contract):
    """Usage over the last ``minutes`` in equal buckets, oldest first (a usage chart's data)."""

    since: datetime
    until: datetime
    bucket_minutes: int
    buckets: list[TrendBucket]
    score_trend: str = "stable"
    """improving | degrading | stable: the mean score of the later half against the earlier half."""


class TokenBudget(Contract):
    """A model's token allowance over a sliding window (setting ``DAEMONFLOW_TOKEN_BUDGETS``)."""

    window_hours: float = Field(default=24, gt=0)
    tokens: int = Field(gt=0)
    """Prompt + completion tokens allowed in any ``window_hours``."""
