"""CacheCleanupWorkflow: index the cache, plan, delete, reap; started by ``daemonflow-cache-cleanup``.

In dry-run mode it stops after the plan: nothing is deleted and nothing is recorded as deleted, and
the plan is the result (``daemonflow schedules trigger`` / the Web UI show it). The schedule passes
the settings' threshold, keep-newest, max age and dry-run in the input, so the decisions of a run
are visible in its history. Deletions re-check, one by one, that the conversation is not running.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.cache import CacheActivities
    from models.cache import (
        CleanupInput,
        CleanupResult,
        DeleteRequest,
        PlanRequest,
    )
    from workflows.activity_config import CLEANUP_STEP

DEFAULT_THRESHOLD_MB = 500.0
DEFAULT_KEEP_NEWEST = 5
DEFAULT_MAX_AGE_DAYS = 30.0


@workflow.defn(name="CacheCleanupWorkflow")
class CacheCleanupWorkflow:
    @workflow.run
    async def run(self, request: CleanupInput | None = None) -> CleanupResult:
        request = request or CleanupInput()
        at = workflow.now()
        dry_run = bool(request.dry_run)
        workflow.set_current_details("indexing the cache")
        index = await workflow.execute_activity_method(CacheActivities.index, at, summary="index", **CLEANUP_STEP)
        plan = await workflow.execute_activity_method(
            CacheActivities.plan,
            PlanRequest(
                at=at,
                dry_run=dry_run,
                threshold_bytes=int((request.threshold_mb if request.threshold_mb is not None else DEFAULT_THRESHOLD_MB) * 1e6),
                keep_newest=request.keep_newest if request.keep_newest is not None else DEFAULT_KEEP_NEWEST,
                max_age_days=request.max_age_days or DEFAULT_MAX_AGE_DAYS,
            ),
            summary="plan" + (" (dry run)" if dry_run else ""),
            **CLEANUP_STEP,
        )
        result = CleanupResult(at=at, dry_run=dry_run, index=index, planned=plan.deletions, protected=plan.protected)
        if dry_run:
            workflow.set_current_details(f"dry run: would delete {len(plan.deletions)} entries")
            return result
        run_id = workflow.info().run_id
        if plan.deletions:
            workflow.set_current_details(f"deleting {len(plan.deletions)} entries")
            outcomes = await workflow.execute_activity_method(
                CacheActivities.delete,
                DeleteRequest(at=at, run_id=run_id, deletions=plan.deletions),
                summary=f"delete {len(plan.deletions)}",
                heartbeat_timeout=timedelta(seconds=60),
                **CLEANUP_STEP,
            )
            deleted = {o.key for o in outcomes if o.deleted}
            result.deleted = [d.key for d in plan.deletions if d.key in deleted]
            result.failed = [o for o in outcomes if not o.deleted]
            result.freed_bytes = sum(d.size_bytes for d in plan.deletions if d.key in deleted)
        result.containers_removed = await workflow.execute_activity_method(
            CacheActivities.reap_containers,
            DeleteRequest(at=at, run_id=run_id, deletions=[]),
            summary="containers of ended conversations",
            **CLEANUP_STEP,
        )
        workflow.set_current_details(
            f"deleted {len(result.deleted)} entries ({result.freed_bytes / 1e6:.1f} MB), "
            f"{len(result.containers_removed)} containers; {len(result.protected)} kept for running conversations"
        )
        return result
