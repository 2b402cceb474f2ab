"""PatternAnalysisWorkflow: every agent's analytics stored, started by ``daemonflow-pattern-analysis``.

Seed 004's "analyse patterns every 30 minutes": list the agents active in the frame (the last
``frame_hours`` before ``workflow.now()``), store each one's analytics as a snapshot — one
activity per agent, so one agent's trouble is retried alone and each shows in the Web UI — then
delete snapshots older than ``history_max_days``. At most ``MAX_AGENTS`` agents a run (a bound on
the loop; the rest are counted in the result). History carries only small summaries.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.pattern_analysis import PatternActivities
    from models.analytics_snapshots import (
        AgentsRequest,
        PatternAnalysisInput,
        PatternAnalysisResult,
        RetentionRequest,
        SnapshotRequest,
    )
    from workflows.activity_config import ANALYTICS_STEP

DEFAULT_FRAME_HOURS = 24.0
DEFAULT_HISTORY_MAX_DAYS = 90.0
MAX_AGENTS = 200


@workflow.defn(name="PatternAnalysisWorkflow")
class PatternAnalysisWorkflow:
    @workflow.run
    async def run(self, request: PatternAnalysisInput | None = None) -> PatternAnalysisResult:
        request = request or PatternAnalysisInput()
        at, run_id = workflow.now(), workflow.info().run_id
        since = at - timedelta(hours=request.frame_hours or DEFAULT_FRAME_HOURS)
        workflow.set_current_details("listing active agents")
        agents = await workflow.execute_activity_method(
            PatternActivities.agents, AgentsRequest(since=since, until=at), summary="active agents", **ANALYTICS_STEP
        )
        result = PatternAnalysisResult(at=at, run_id=run_id, since=since, until=at, agents_left_out=max(0, len(agents) - MAX_AGENTS))
        for agent in agents[:MAX_AGENTS]:
            workflow.set_current_details(f"analysing {agent} ({len(result.snapshots) + 1}/{min(len(agents), MAX_AGENTS)})")
            result.snapshots.append(
                await workflow.execute_activity_method(
                    PatternActivities.snapshot,
                    SnapshotRequest(run_id=run_id, at=at, agent=agent, since=since, until=at),
                    summary=f"analytics of {agent}",
                    **ANALYTICS_STEP,
                )
            )
        result.pruned = await workflow.execute_activity_method(
            PatternActivities.retention,
            RetentionRequest(at=at, max_days=request.history_max_days or DEFAULT_HISTORY_MAX_DAYS),
            summary="delete old snapshots",
            **ANALYTICS_STEP,
        )
        anomalies = sum(s.anomalies for s in result.snapshots)
        workflow.set_current_details(
            f"{len(result.snapshots)} agents analysed · {anomalies} anomalies · {result.pruned} old snapshots deleted"
        )
        return result
