"""MonitoringWorkflow: one health round, started by the ``daemonflow-monitoring`` schedule.

Probe the dependencies, gather the figures, then score, alert and record: three activities, so a
slow probe or a store hiccup is retried on its own and each step shows in the Web UI. The time of
the round is ``workflow.now()``, passed to every activity, so the windows of one report agree with
each other and a replay sees the same values. The full report goes to the store; the workflow
returns a small ``MonitoringResult``.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.health import HealthActivities
    from models.monitoring import (
        MetricsRequest,
        MonitoringInput,
        MonitoringResult,
        RecordInput,
    )
    from workflows.activity_config import MONITORING_STEP

DEFAULT_WINDOW_MINUTES = 60


@workflow.defn(name="MonitoringWorkflow")
class MonitoringWorkflow:
    @workflow.run
    async def run(self, request: MonitoringInput | None = None) -> MonitoringResult:
        request = request or MonitoringInput()
        at = workflow.now()
        window = request.window_minutes or DEFAULT_WINDOW_MINUTES
        workflow.set_current_details("probing dependencies")
        checks = await workflow.execute_activity_method(
            HealthActivities.check, at, summary="probe dependencies", **MONITORING_STEP
        )
        workflow.set_current_details("reading usage, agents and approvals")
        metrics = await workflow.execute_activity_method(
            HealthActivities.metrics,
            MetricsRequest(at=at, window_minutes=window),
            summary=f"usage and agents, last {window} min",
            **MONITORING_STEP,
        )
        result = await workflow.execute_activity_method(
            HealthActivities.record,
            RecordInput(at=at, run_id=workflow.info().run_id, checks=checks, metrics=metrics),
            summary="score, alerts, snapshot",
            **MONITORING_STEP,
        )
        down = [c.name for c in checks if c.status.value == "down"]
        workflow.set_current_details(
            f"score {result.score} · {result.status.value} · {result.active_alerts} alerts"
            + (f" · down: {', '.join(down)}" if down else "")
        )
        return result
