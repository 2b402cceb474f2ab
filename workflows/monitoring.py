"""MonitoringWorkflow: one health round, started by the ``daemonflow-monitoring`` schedule.

Probe the dependencies, gather the figures, then score, alert and record: three activities, so a
slow probe or a store hiccup is retried on its own and each step shows in the Web UI. The time of
the round is ``workflow.now()``, passed to every activity, so the windows of one report agree with
each other and a replay sees the same values. The full report goes to the store; the workflow
returns a small ``MonitoringResult``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.monitoring import (
        DependencyCheck,
        MetricsRequest,
        MetricsSnapshot,
        MonitoringInput,
        MonitoringResult,
        RecordInput,
    )

DEFAULT_WINDOW_MINUTES = 60

STEP = dict(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=3),
)


@workflow.defn(name="MonitoringWorkflow")
class MonitoringWorkflow:
    @workflow.run
    async def run(self, request: MonitoringInput | None = None) -> MonitoringResult:
        request = request or MonitoringInput()
        at = workflow.now()
        window = request.window_minutes or DEFAULT_WINDOW_MINUTES
        workflow.set_current_details("probing dependencies")
        checks = await workflow.execute_activity(
            "health.check", at, result_type=list[DependencyCheck], summary="probe dependencies", **STEP
        )
        workflow.set_current_details("reading usage, agents and approvals")
        metrics = await workflow.execute_activity(
            "health.metrics",
            MetricsRequest(at=at, window_minutes=window),
            result_type=MetricsSnapshot,
            summary=f"usage and agents, last {window} min",
            **STEP,
        )
        result = await workflow.execute_activity(
            "health.record",
            RecordInput(at=at, run_id=workflow.info().run_id, checks=checks, metrics=metrics),
            result_type=MonitoringResult,
            summary="score, alerts, snapshot",
            **STEP,
        )
        down = [c.name for c in checks if c.status.value == "down"]
        workflow.set_current_details(
            f"score {result.score} · {result.status.value} · {result.active_alerts} alerts"
            + (f" · down: {', '.join(down)}" if down else "")
        )
        return result
