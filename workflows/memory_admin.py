"""MemoryAdminWorkflow: runs one operator memory request on a worker (see activities/memory/admin.py).

A workflow only because an activity needs one to run; it is short, and its id
(``memory-admin-<uuid>``) makes each request visible in the Web UI.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from models.memory import MemoryAdminRequest, MemoryAdminResult


@workflow.defn(name="MemoryAdminWorkflow")
class MemoryAdminWorkflow:
    @workflow.run
    async def run(self, request: MemoryAdminRequest, task_queue: str | None = None) -> MemoryAdminResult:
        return await workflow.execute_activity(
            "memory.admin",
            request,
            result_type=MemoryAdminResult,
            task_queue=task_queue,
            summary=f"memory {request.action}",
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["MemoryUnavailable"]),
        )
