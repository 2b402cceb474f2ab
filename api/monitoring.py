"""Monitoring and analytics over HTTP: the last health report, alerts, usage and 7-day trends, per-agent analytics.

Read-only views of what ``MonitoringWorkflow`` recorded and of the action registry, through the
same read functions as ``daemonflow monitor`` / ``daemonflow analytics`` (``activities.health``,
``activities.analytics``), so the CLI, the API and the admin page's dashboard show the same
figures (those read functions are plain store reads; no activity runs in the API). Nothing here
starts a workflow or probes a dependency: a report is as old as the last scheduled run, and says
when that was (``at``).

The store calls are synchronous SQLAlchemy and run in a thread. Query parameters carry bounds
in the schema, and an analytics frame is checked before it reaches the store (ordered, inside
1970-9000, at most ``MAX_FRAME_DAYS``) so that no input can overflow a date computation into a 500.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlmodel import Session, select

from activities import analytics, health, monitoring_figures
from api.conversations import Ctx, Reader
from api.errors import ApiError
from api.context import ApiContext
from api.openapi import problems
from api.schemas import AGENT_PATTERN
from config.templates import template_names
from models.analytics import AgentAnalytics
from models.monitoring import AlertView, HealthReport, UsageTrends
from models.weekly_trends import WeeklyTrends
from store.tables import Action

router = APIRouter()

DEFAULT_FRAME = timedelta(days=7)
MAX_FRAME_DAYS = 366
"""Longer frames are refused: daily performance buckets and the scan grow with the frame."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""Outside these, the 30-day baseline before ``since`` or a bucket after ``until`` could overflow."""
MAX_ALERTS = 1000
MONITORING_SCHEDULE = "daemonflow-monitoring"
"""``workers.schedules.MONITORING``, spelled out: the API does not import the worker side."""
MAX_BUCKET_MINUTES = 1440

AgentName = Annotated[str, Path(pattern=AGENT_PATTERN, description="agent template name (e.g. `developer`)")]


@router.get("/monitoring/report", response_model=HealthReport, tags=["monitoring"], responses=problems(401, 403, 404),
            summary="The last monitoring run's report: score, breakdown, checks, usage, budgets, agents, alerts")  # fmt: skip
async def report(ctx: Ctx, _: Reader) -> HealthReport:
    found = await ctx.in_thread(health.latest_report, ctx.engine)
    if found is None:
        name = f"{ctx.settings.schedule_id_prefix}{MONITORING_SCHEDULE}"
        raise ApiError(404, "no-monitoring-report", "No monitoring report yet",
                       f"no monitoring run yet: the schedule {name} runs every "
                       f"{_minutes(ctx.settings.monitoring_interval_s)}; "
                       "`daemonflow schedules trigger monitoring` runs one now")  # fmt: skip
    return found


@router.get("/monitoring/alerts", response_model=list[AlertView], tags=["monitoring"], responses=problems(401, 403, 422),
            summary="Open alerts, newest first; with include_resolved, the alert history")  # fmt: skip
async def alerts(
    ctx: Ctx,
    _: Reader,
    include_resolved: Annotated[bool, Query(description="also alerts whose condition has cleared")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_ALERTS)] = 100,
) -> list[AlertView]:
    return await ctx.in_thread(lambda: health.active_alerts(ctx.engine, include_resolved=include_resolved, limit=limit))


@router.get("/monitoring/trends", response_model=UsageTrends, tags=["monitoring"], responses=problems(401, 403, 422),
            summary="Model calls, tokens, tool calls and score over the trend window, in equal buckets")  # fmt: skip
async def trends(
    ctx: Ctx,
    _: Reader,
    bucket_minutes: Annotated[int, Query(ge=1, le=MAX_BUCKET_MINUTES,
                                         description="bucket size; capped at the trend window (90 min by default)")] = 10,
) -> UsageTrends:
    now = datetime.now(UTC)
    return await ctx.in_thread(lambda: health.trends(ctx.engine, ctx.settings, now, bucket_minutes=bucket_minutes))


@router.get("/monitoring/trends/7d", response_model=WeeklyTrends, tags=["monitoring"], responses=problems(401, 403),
            summary="Daily figures of the last 7 days and the trend of latency, prompt cache, parallelisation, errors")  # fmt: skip
async def weekly_trends(ctx: Ctx, _: Reader) -> WeeklyTrends:
    """Computed now from the records (the monitoring report carries the same, as of its run)."""
    now = datetime.now(UTC)
    return await ctx.in_thread(monitoring_figures.weekly_figures, ctx.engine, now)


@router.get("/analytics/agents/{agent}", response_model=AgentAnalytics, tags=["analytics"],
            responses=problems(401, 403, 404, 422),
            summary="What an agent did in [since, until): frequency, sequences, outcomes, anomalies, suggestions")  # fmt: skip
async def agent_analytics(
    agent: AgentName,
    ctx: Ctx,
    _: Reader,
    since: Annotated[datetime | None, Query(description="frame start, ISO 8601 (default: until − 7 days); naive is UTC")] = None,
    until: Annotated[datetime | None, Query(description="frame end, exclusive, ISO 8601 (default: now); naive is UTC")] = None,
) -> AgentAnalytics:
    start, end = frame(since, until, datetime.now(UTC))
    await ctx.in_thread(_check_agent, ctx, agent)
    return await ctx.in_thread(analytics.agent_analytics, ctx.engine, agent, start, end)


def frame(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """``[since, until)`` as aware UTC times, or a 422 that says what is wrong with it."""
    end = _utc(until, "until") if until is not None else now
    try:
        start = _utc(since, "since") if since is not None else end - DEFAULT_FRAME
    except OverflowError:
        start = EARLIEST - timedelta(seconds=1)  # reported as out of range below
    for name, value in (("since", start), ("until", end)):
        if not EARLIEST <= value < LATEST:
            raise _bad_frame(f"{name} must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)")
    if start >= end:
        raise _bad_frame(f"the frame is empty: since ({start.isoformat()}) must be before until ({end.isoformat()})")
    if end - start > timedelta(days=MAX_FRAME_DAYS):
        raise _bad_frame(f"the frame is {(end - start).days} days long; at most {MAX_FRAME_DAYS} days at a time")
    return start, end


def _utc(value: datetime, name: str) -> datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        return aware.astimezone(UTC)
    except OverflowError:
        raise _bad_frame(f"{name} is out of range once converted to UTC") from None


def _bad_frame(detail: str) -> ApiError:
    return ApiError(422, "invalid-time-range", "Invalid time range", detail)


def _check_agent(ctx: ApiContext, agent: str) -> None:
    """404 unless ``agent`` is a template, or has recorded actions (a removed template keeps its history)."""
    known = template_names(ctx.settings.agents_dir)
    if agent in known:
        return
    with Session(ctx.engine) as session:
        if session.exec(select(Action.id).where(Action.agent == agent).limit(1)).first() is not None:
            return
    raise ApiError(404, "unknown-agent", "Unknown agent",
                   f"no agent template {agent!r} and no recorded actions of it; known templates: {', '.join(known) or 'none'}")  # fmt: skip


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
