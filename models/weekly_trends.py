"""Seven-day trends of the monitoring report: daily figures and, per metric, improving / degrading
/ stable by one documented rule (``activities/weekly_trends.py``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from models.contract import Contract


class Trend(StrEnum):
    IMPROVING = "improving"
    DEGRADING = "degrading"
    STABLE = "stable"
    INSUFFICIENT = "insufficient data"


class DayFigures(Contract):
    """One day (24 h ending at the report's time, counted back) of the trended metrics."""

    start: datetime
    model_calls: int = 0
    latency_ms: float | None = None
    """Mean time to first token (load + prompt evaluation) of the day's model calls."""
    prompt_cache_hit_rate: float | None = None
    parallelism: float | None = None
    tool_runs: int = 0
    error_rate: float | None = None
    """Share of the day's tool runs that failed."""


class TrendLine(Contract):
    metric: str
    """latency | prompt_cache | parallelism | error_rate"""
    trend: Trend
    earlier: float | None = None
    """The metric over the earlier half of the 7 days (3.5 days)."""
    later: float | None = None
    """The metric over the later half."""
    change: float | None = None
    """later − earlier: relative for latency (0.2 = 20 % slower), in rate points otherwise."""
    rule: str = ""


class WeeklyTrends(Contract):
    since: datetime
    until: datetime
    days: list[DayFigures] = Field(default_factory=list)
    """Oldest first."""
    lines: list[TrendLine] = Field(default_factory=list)
