"""MemoryAdminWorkflow: runs one operator memory request on a worker (see activities/memory/admin.py).

A workflow only because an activity needs one to run; it is short, and its id
(``memory-admin-<uuid>``) makes each request visible in the Web UI.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.memory.activities import MemoryActivities
    from models.memory import MemoryAdminRequest, MemoryAdminResult
    from workflows.activity_config import MEMORY_ADMIN_CALL


@workflow.defn(name="MemoryAdminWorkflow")
class MemoryAdminWorkflow:
    @workflow.run
    async def run(self, request: MemoryAdminRequest, task_queue: str | None = None) -> MemoryAdminResult:
        return await workflow.execute_activity_method(
            MemoryActivities.admin,
            request,
            task_queue=task_queue,
            summary=f"memory {request.action}",
            **MEMORY_ADMIN_CALL,
        )
