"""The rows monitoring's figures are computed from, and the three rates over them (pure).

``activities/monitoring_figures.py`` reads them from the store; ``baselines.py`` (window against
baseline) and ``weekly_trends.py`` (7 days) compute with the same functions, so a rate means the
same thing in an alert, a report and a trend.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class UsageRow:
    """One model call: when, its time to first token (load + prompt evaluation), its prompt tokens
    and — when the server says — how many of them came from its prompt cache."""

    at: datetime
    model: str
    first_token_ms: float | None
    prompt_tokens: int | None
    cached_prompt_tokens: int | None


@dataclass(frozen=True)
class RunRow:
    """One tool call of the action registry: when, which tool, whether it ran and succeeded, how long."""

    at: datetime
    tool: str
    success: bool | None
    duration_ms: float | None


@dataclass(frozen=True)
class CacheFigures:
    rate: float | None
    reporting_calls: int
    prompt_tokens: int
    cached_tokens: int


def mean_first_token(rows: Iterable[UsageRow]) -> tuple[float | None, int]:
    """Mean time to first token and how many calls had one."""
    values = [r.first_token_ms for r in rows if r.first_token_ms is not None]
    return (round(sum(values) / len(values), 1) if values else None), len(values)


def cache_figures(rows: Iterable[UsageRow]) -> CacheFigures:
    """Cached / prompt tokens over the calls whose server reported its cached tokens (a cached count
    above the prompt's is read as the whole prompt)."""
    reporting = [r for r in rows if r.cached_prompt_tokens is not None and r.prompt_tokens]
    prompt = sum(r.prompt_tokens or 0 for r in reporting)
    cached = sum(min(r.cached_prompt_tokens or 0, r.prompt_tokens or 0) for r in reporting)
    return CacheFigures(round(cached / prompt, 4) if prompt else None, len(reporting), prompt, cached)


def failure_rate(rows: Iterable[RunRow]) -> tuple[float | None, int, int]:
    """Share of the tool calls that ran and failed; how many ran; how many failed."""
    ran = [r for r in rows if r.success is not None]
    failed = sum(r.success is False for r in ran)
    return (round(failed / len(ran), 4) if ran else None), len(ran), failed
