"""The four Temporal Schedules on the dev server: idempotent apply, pause kept, a trigger of each runs
its workflow, the worker's start-up apply honours ``DAEMONFLOW_SCHEDULES=off``, and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from temporalio.client import ScheduleActionExecutionStartWorkflow, ScheduleActionStartWorkflow, ScheduleOverlapPolicy
from temporalio.service import RPCError, RPCStatusCode

from models.analytics_snapshots import PatternAnalysisResult
from models.cache import CleanupResult
from models.monitoring import MonitoringResult
from models.optimisation import OptimisationReviewResult
from tests.monitoring_support import env_of, schedule_settings, schedule_worker
from tests.test_cli import daemonflow
from tests.test_conversation import wait_for
from workers.schedules import (
    CACHE_CLEANUP,
    MONITORING,
    OPTIMISATION_REVIEW,
    PATTERN_ANALYSIS,
    apply_at_start,
    apply_schedules,
    schedule_id,
    schedule_ids,
)


@pytest.fixture
async def settings(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = schedule_settings(tmp_path, temporal_address, fake_ollama.url)
    yield settings
    for sid in schedule_ids(settings):
        try:
            await temporal_env.client.get_schedule_handle(sid).delete()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise


async def test_apply_twice_creates_each_schedule_once_and_keeps_a_pause(temporal_env, settings):
    client = temporal_env.client
    first = await apply_schedules(client, settings)
    assert [(a.id, a.created) for a in first] == [(sid, True) for sid in schedule_ids(settings)]

    monitoring = client.get_schedule_handle(schedule_id(settings, MONITORING))
    await monitoring.pause(note="maintenance")
    second = await apply_schedules(client, settings.model_copy(update={"monitoring_interval_s": 600}))
    assert [a.created for a in second] == [False, False, False, False]

    described = await monitoring.describe()
    assert described.schedule.state.paused and described.schedule.state.note == "maintenance"
    assert [i.every for i in described.schedule.spec.intervals] == [timedelta(seconds=600)]
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("MonitoringWorkflow", settings.task_queue)

    for name, workflow, every in [
        (CACHE_CLEANUP, "CacheCleanupWorkflow", 120),
        (PATTERN_ANALYSIS, "PatternAnalysisWorkflow", 1800),
        (OPTIMISATION_REVIEW, "OptimisationReviewWorkflow", 600),
    ]:
        other = await client.get_schedule_handle(schedule_id(settings, name)).describe()
        assert [i.every for i in other.schedule.spec.intervals] == [timedelta(seconds=every)], name
        assert (other.schedule.action.workflow, other.schedule.action.task_queue) == (workflow, settings.task_queue)
        assert other.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert not other.schedule.state.paused


RESULTS = {
    MONITORING: MonitoringResult,
    CACHE_CLEANUP: CleanupResult,
    PATTERN_ANALYSIS: PatternAnalysisResult,
    OPTIMISATION_REVIEW: OptimisationReviewResult,
}


async def test_a_trigger_of_each_schedule_runs_its_workflow(temporal_env, settings):
    client = temporal_env.client
    await apply_schedules(client, settings)
    results = {}
    async with schedule_worker(client, settings):
        for name, result_type in RESULTS.items():
            handle = client.get_schedule_handle(schedule_id(settings, name))
            await handle.trigger()

            async def started(handle=handle):
                actions = (await handle.describe()).info.recent_actions
                return actions[-1].action if actions else None

            action = await wait_for(started)
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            results[name] = await client.get_workflow_handle(action.workflow_id, result_type=result_type).result()
    assert 0 <= results[MONITORING].score <= 100
    assert isinstance(results[CACHE_CLEANUP], CleanupResult)
    assert results[PATTERN_ANALYSIS].snapshots == []  # a fresh store: no agent did anything yet
    assert results[OPTIMISATION_REVIEW].applied == []


async def test_worker_start_applies_unless_turned_off(temporal_env, settings):
    client = temporal_env.client
    await apply_at_start(client, settings.model_copy(update={"schedules": "off"}))
    with pytest.raises(RPCError) as missing:
        await client.get_schedule_handle(schedule_id(settings, MONITORING)).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    await apply_at_start(client, settings.model_copy(update={"schedules": "on"}))
    assert (await client.get_schedule_handle(schedule_id(settings, MONITORING)).describe()).id


async def test_cli_schedules_and_monitor(temporal_env, settings, fake_ollama, tmp_path):
    env = env_of(settings)
    applied = await daemonflow(env, tmp_path, "schedules", "apply")
    assert applied.code == 0, applied.err
    assert f"created {schedule_id(settings, MONITORING)}" in applied.out
    again = await daemonflow(env, tmp_path, "schedules", "apply")
    assert f"updated {schedule_id(settings, MONITORING)}" in again.out

    paused = await daemonflow(env, tmp_path, "schedules", "pause", "cache-cleanup", "--note", "disk work")
    assert paused.code == 0, paused.err
    listed = await daemonflow(env, tmp_path, "schedules", "list", "--json")
    rows = {row["id"]: row for row in json.loads(listed.out)}
    assert set(rows) == set(schedule_ids(settings))
    assert rows[schedule_id(settings, PATTERN_ANALYSIS)]["every_s"] == [1800.0]
    assert rows[schedule_id(settings, OPTIMISATION_REVIEW)]["every_s"] == [600.0]
    assert rows[schedule_id(settings, CACHE_CLEANUP)]["paused"] is True
    assert rows[schedule_id(settings, MONITORING)]["paused"] is False
    assert rows[schedule_id(settings, MONITORING)]["overlap"] == "SKIP"

    nothing_yet = await daemonflow(env, tmp_path, "monitor")
    assert nothing_yet.code == 1 and "no monitoring run recorded yet" in nothing_yet.err

    fake_ollama.down()
    async with schedule_worker(temporal_env.client, settings):
        ran = await daemonflow(env, tmp_path, "monitor", "--run")
        assert ran.code == 0, ran.err
        assert "health " in ran.out and "ollama" in ran.out and "dependency:ollama" in ran.out
        dry = await daemonflow(env, tmp_path, "cache", "clean", "--dry-run")
        assert dry.code == 0, dry.err
    alerts = await daemonflow(env, tmp_path, "monitor", "--alerts", "--json")
    assert any(a["key"] == "dependency:ollama" for a in json.loads(alerts.out))
    trends = await daemonflow(env, tmp_path, "monitor", "--trends", "--json")
    assert len(json.loads(trends.out)["buckets"]) == 9
