"""Per-agent analytics over the action registry: what an agent does, how often, how well, what
looks anomalous and what could be better. Returned by ``activities.analytics.agent_analytics`` to
``daemonflow analytics AGENT`` and ``GET /analytics/agents/{agent}``."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from models.monitoring import Contract


class Count(Contract):
    name: str
    count: int
    share: float
    """Of all the agent's actions in the frame, 0..1."""


class Sequence(Contract):
    tools: list[str]
    count: int
    """How many times these tools were called one after the other in one conversation."""


class ToolTiming(Contract):
    tool: str
    runs: int
    avg_ms: float
    p50_ms: float
    p95_ms: float


class TimePatterns(Contract):
    by_hour: dict[int, int] = Field(default_factory=dict)
    """Actions per hour of the day (UTC)."""
    peak_hours: list[str] = Field(default_factory=list)
    """The busiest hours, ``HH:00`` UTC, busiest first (at most 3)."""
    avg_duration_ms: float | None = None
    durations: list[ToolTiming] = Field(default_factory=list)


class ToolOutcome(Contract):
    tool: str
    runs: int
    """Calls that ran (success known)."""
    failures: int
    failure_rate: float | None = None
    denied: int = 0
    """Denied or timed-out approvals."""
    top_errors: list[Count] = Field(default_factory=list)


class Anomaly(Contract):
    kind: str
    """duration_outlier | unusual_tool | failure_burst | denial_burst"""
    message: str
    tool: str | None = None
    at: datetime | None = None
    until: datetime | None = None
    count: int = 1
    evidence: list[str] = Field(default_factory=list)
    """Which actions (``conversation/tool_call``) or figures it rests on."""


class PerformanceBucket(Contract):
    start: datetime
    actions: int = 0
    success_rate: float | None = None
    avg_duration_ms: float | None = None


class ModelPerformance(Contract):
    model: str
    calls: int
    avg_total_ms: float | None = None
    tokens_per_s: float | None = None


class PerformanceReport(Contract):
    bucket: str
    """hour or day"""
    buckets: list[PerformanceBucket] = Field(default_factory=list)
    success_trend: str = "insufficient data"
    duration_trend: str = "insufficient data"
    """improving | degrading | stable | insufficient data: later half of the frame against the earlier half."""
    models: list[ModelPerformance] = Field(default_factory=list)
    """Models this agent's conversations called in the frame."""


class Suggestion(Contract):
    kind: str
    """repeated_read | failing_tool | slow_model | often_denied | always_approved"""
    impact: str
    """high | medium | low"""
    message: str
    evidence: list[str] = Field(default_factory=list)


class TurnStats(Contract):
    """How many model steps the agent's turns took, and how many ran out of steps.

    A turn is counted from its model calls (``model_usage``, one row per step). It *ran out of
    steps* when its last model reply still asked for tools (other than ``final_answer``): the turn
    hit its step budget without an answer (or was ended mid-step). The optimisation review reads
    this to propose a lower step budget for an agent whose turns loop."""

    turns: int = 0
    answered: int = 0
    out_of_steps: int = 0
    max_answered_steps: int | None = None
    """The most model steps a turn that did answer needed in the frame."""
    p50_answered_steps: float | None = None
    out_of_steps_tokens: int = 0
    """Prompt + completion tokens spent by the turns that ran out of steps."""
    tokens: int = 0
    """Prompt + completion tokens of all the agent's turns in the frame."""
    examples: list[str] = Field(default_factory=list)
    """Up to 5 turns that ran out, as ``conversation/turn``."""


class AgentAnalytics(Contract):
    agent: str
    since: datetime
    until: datetime
    actions: int
    conversations: int
    frequency: list[Count] = Field(default_factory=list)
    """By tool, most used first."""
    by_action_type: list[Count] = Field(default_factory=list)
    by_decision: list[Count] = Field(default_factory=list)
    sequences: list[Sequence] = Field(default_factory=list)
    """Most common 2- and 3-grams of consecutive tool calls (seen at least twice)."""
    time_patterns: TimePatterns = Field(default_factory=TimePatterns)
    success_rate: float | None = None
    outcomes: list[ToolOutcome] = Field(default_factory=list)
    failure_patterns: list[Count] = Field(default_factory=list)
    """The commonest error messages (numbers masked), across tools."""
    anomalies: list[Anomaly] = Field(default_factory=list)
    performance: PerformanceReport = Field(default_factory=lambda: PerformanceReport(bucket="hour"))
    suggestions: list[Suggestion] = Field(default_factory=list)
    turns: TurnStats = Field(default_factory=TurnStats)
