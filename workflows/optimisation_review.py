"""OptimisationReviewWorkflow: safe, reversible hints from the latest analytics and monitoring,
started by ``daemonflow-optimisation-review`` (seed 004's auto-optimisation, every 10 min).

Read the evidence (``optimisation.inputs``: each agent's latest analytics snapshot, the hints in
force, operators' recent reverts, the latest monitoring report), decide in the workflow with the
pure rules of ``workflows/optimisation_rules.py`` (so the decision and its reasons are in history
and replay the same), then apply and expire (``optimisation.apply``, idempotent per run). Nothing
here can edit the policy or touch an approval: the only writes are rows of ``agent_hints``.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.optimisation import OptimisationActivities
    from models.optimisation import (
        ApplyRequest,
        InputsRequest,
        OptimisationReviewInput,
        OptimisationReviewResult,
    )
    from workflows.activity_config import ANALYTICS_STEP
    from workflows.optimisation_rules import review

DEFAULT_HINT_DAYS = 7.0
DEFAULT_COOLDOWN_DAYS = 7.0
DEFAULT_MAX_SNAPSHOT_AGE_MINUTES = 120.0


@workflow.defn(name="OptimisationReviewWorkflow")
class OptimisationReviewWorkflow:
    @workflow.run
    async def run(self, request: OptimisationReviewInput | None = None) -> OptimisationReviewResult:
        request = request or OptimisationReviewInput()
        at, run_id = workflow.now(), workflow.info().run_id
        cooldown = DEFAULT_COOLDOWN_DAYS if request.cooldown_days is None else request.cooldown_days
        workflow.set_current_details("reading analytics, hints and monitoring")
        inputs = await workflow.execute_activity_method(
            OptimisationActivities.inputs,
            InputsRequest(
                at=at,
                max_snapshot_age_minutes=request.max_snapshot_age_minutes or DEFAULT_MAX_SNAPSHOT_AGE_MINUTES,
                cooldown_days=cooldown,
            ),
            summary="evidence",
            **ANALYTICS_STEP,
        )
        plan = review(inputs, request.hint_days or DEFAULT_HINT_DAYS)
        workflow.set_current_details(f"applying {len(plan.apply)} hints, expiring {len(plan.expire)}")
        outcome = await workflow.execute_activity_method(
            OptimisationActivities.apply,
            ApplyRequest(at=at, run_id=run_id, apply=plan.apply, expire=plan.expire),
            summary=f"apply {len(plan.apply)}, expire {len(plan.expire)}",
            **ANALYTICS_STEP,
        )
        result = OptimisationReviewResult(
            at=at,
            run_id=run_id,
            applied=[f"#{h.id} {h.agent} {h.kind.value}={h.value} (was {h.previous})" for h in outcome.applied],
            expired=outcome.expired,
            skipped=plan.skipped + outcome.conflicts,
        )
        workflow.set_current_details(
            f"applied {len(result.applied)} · expired {len(result.expired)} · {len(inputs.agents)} agents with evidence"
        )
        return result
