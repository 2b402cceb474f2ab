"""The four Temporal Schedules and what a worker registers to run them.

- ``daemonflow-monitoring`` (5 min): ``MonitoringWorkflow``, the health round;
- ``daemonflow-cache-cleanup`` (2 min): ``CacheCleanupWorkflow``;
- ``daemonflow-pattern-analysis`` (30 min): ``PatternAnalysisWorkflow``, every agent's analytics stored;
- ``daemonflow-optimisation-review`` (10 min): ``OptimisationReviewWorkflow``, safe hints applied.

``apply_schedules`` is idempotent: it creates a schedule that does not exist and updates one that
does (spec, action, policy) while keeping its paused state and note, so an operator's pause in
the Web UI survives worker restarts. Overlap policy SKIP: a round still running when the next is
due is not doubled. Schedule ids are prefixed with ``DAEMONFLOW_SCHEDULE_ID_PREFIX`` (empty by
default; tests use it to stay apart).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.cache import CacheActivities
from activities.health import HealthActivities
from activities.optimisation import OptimisationActivities
from activities.pattern_analysis import PatternActivities
from config.settings import Settings
from models.analytics_snapshots import PatternAnalysisInput
from models.cache import CleanupInput
from models.monitoring import MonitoringInput
from models.optimisation import OptimisationReviewInput
from workflows.cache_cleanup import CacheCleanupWorkflow
from workflows.monitoring import MonitoringWorkflow
from workflows.optimisation_review import OptimisationReviewWorkflow
from workflows.pattern_analysis import PatternAnalysisWorkflow

log = logging.getLogger("daemonflow.schedules")

MONITORING = "daemonflow-monitoring"
CACHE_CLEANUP = "daemonflow-cache-cleanup"
PATTERN_ANALYSIS = "daemonflow-pattern-analysis"
OPTIMISATION_REVIEW = "daemonflow-optimisation-review"
NAMES = (MONITORING, CACHE_CLEANUP, PATTERN_ANALYSIS, OPTIMISATION_REVIEW)


@dataclass(frozen=True)
class AppliedSchedule:
    id: str
    created: bool
    """False: it existed and was updated."""
    every: timedelta


def schedule_id(settings: Settings, name: str) -> str:
    return f"{settings.schedule_id_prefix}{name}"


def schedule_ids(settings: Settings) -> list[str]:
    return [schedule_id(settings, name) for name in NAMES]


def monitoring_input(settings: Settings) -> MonitoringInput:
    return MonitoringInput(window_minutes=settings.monitoring_window_minutes)


def cleanup_input(settings: Settings, dry_run: bool | None = None) -> CleanupInput:
    return CleanupInput(
        dry_run=settings.cache_dry_run if dry_run is None else dry_run,
        threshold_mb=settings.cache_threshold_mb,
        keep_newest=settings.cache_keep_newest,
        max_age_days=settings.cache_max_age_days,
    )


def pattern_analysis_input(settings: Settings) -> PatternAnalysisInput:
    return PatternAnalysisInput(frame_hours=settings.pattern_analysis_hours, history_max_days=settings.history_max_days)


def optimisation_review_input(settings: Settings) -> OptimisationReviewInput:
    return OptimisationReviewInput(
        hint_days=settings.optimisation_hint_days,
        cooldown_days=settings.optimisation_cooldown_days,
        max_snapshot_age_minutes=4 * settings.pattern_analysis_interval_s / 60,
    )


def _schedule(settings: Settings, sid: str, run: Callable[..., Any], arg: Any, every_s: float,
              timeout: timedelta, summary: str) -> Schedule:  # fmt: skip
    return Schedule(
        action=ScheduleActionStartWorkflow(
            run, arg, id=sid, task_queue=settings.task_queue, execution_timeout=timeout, static_summary=summary
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=every_s))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def desired_schedules(settings: Settings) -> dict[str, Schedule]:
    """The schedules as the settings want them, by id."""
    wanted = [
        (MONITORING, MonitoringWorkflow.run, monitoring_input(settings), settings.monitoring_interval_s,
         timedelta(seconds=max(settings.monitoring_interval_s, 300)), "Daemonflow health round"),
        (CACHE_CLEANUP, CacheCleanupWorkflow.run, cleanup_input(settings), settings.cache_cleanup_interval_s,
         timedelta(minutes=30), "Daemonflow cache cleanup"),
        (PATTERN_ANALYSIS, PatternAnalysisWorkflow.run, pattern_analysis_input(settings),
         settings.pattern_analysis_interval_s, timedelta(minutes=30), "Daemonflow pattern analysis (every agent's analytics)"),
        (OPTIMISATION_REVIEW, OptimisationReviewWorkflow.run, optimisation_review_input(settings),
         settings.optimisation_review_interval_s, timedelta(minutes=10), "Daemonflow optimisation review (safe hints)"),
    ]  # fmt: skip
    return {
        schedule_id(settings, name): _schedule(settings, schedule_id(settings, name), run, arg, every, timeout, summary)
        for name, run, arg, every, timeout, summary in wanted
    }


async def apply_schedules(client: Client, settings: Settings) -> list[AppliedSchedule]:
    """Create each schedule, or update it in place if it exists (its paused state is kept)."""
    applied = []
    for sid, schedule in desired_schedules(settings).items():
        every = schedule.spec.intervals[0].every
        try:
            await client.create_schedule(sid, schedule)
            applied.append(AppliedSchedule(sid, True, every))
            log.info("created schedule %s (every %s)", sid, every)
            continue
        except ScheduleAlreadyRunningError:
            pass

        def updater(current: ScheduleUpdateInput, wanted: Schedule = schedule) -> ScheduleUpdate:
            wanted.state = current.description.schedule.state
            return ScheduleUpdate(schedule=wanted)

        await client.get_schedule_handle(sid).update(updater)
        applied.append(AppliedSchedule(sid, False, every))
        log.info("updated schedule %s (every %s)", sid, every)
    return applied


async def apply_at_start(client: Client, settings: Settings) -> None:
    """What ``run_worker`` does at start: apply unless ``DAEMONFLOW_SCHEDULES=off``; never fatal."""
    if settings.schedules == "off":
        log.info("DAEMONFLOW_SCHEDULES=off: not applying the schedules")
        return
    try:
        await apply_schedules(client, settings)
    except Exception as err:  # noqa: BLE001 - a worker without schedules still runs conversations
        log.warning("could not apply the schedules (%s); run `daemonflow schedules apply`", err)


WORKFLOWS: list[type] = [MonitoringWorkflow, CacheCleanupWorkflow, PatternAnalysisWorkflow, OptimisationReviewWorkflow]
"""The schedules' workflows; registered beside the conversation's on the main queue."""


def activities(settings: Settings, engine: Engine, docker_client: Any | None) -> list[Callable[..., Any]]:
    """The activities of the schedules' workflows (main queue: they read the store). With a Docker
    client the health check reuses it and the cache cleanup sees workspace volumes and containers."""
    health = HealthActivities(settings, engine, docker_client)
    cache = CacheActivities(settings, engine, docker_client)
    patterns = PatternActivities(engine)
    optimisation = OptimisationActivities(settings, engine)
    return [*health.all(), *cache.all(), *patterns.all(), *optimisation.all()]
