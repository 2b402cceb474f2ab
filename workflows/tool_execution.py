"""ToolExecutionWorkflow: one approved tool call, run with its own timeouts and retry policy.

A child of the conversation (id ``tool-<conversation>-<call>``) so that each call is visible on its
own in the Web UI, with its retries, and so that its policy lives with the tool rather than with
the conversation. It never fails: whatever happens, the conversation gets a ``ToolResult`` to show
the model.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from activities.tools.runner import ToolActivities
    from models.tools import ToolCallInput, ToolResult, ToolSpec
    from workflows.failures import failure_message

NON_RETRYABLE = ["InvalidArguments", "PolicyViolation", "SandboxViolation"]
HOST_WAIT = timedelta(minutes=10)
"""How long a call routed to a sandbox or host queue may wait for a worker to take it: a host
queue has exactly one Docker host behind it, and a host that is gone should fail the call with a
clear message, not hang the conversation."""


def tool_workflow_id(conversation_id: str, tool_call_id: str) -> str:
    return f"tool-{conversation_id}-{tool_call_id}"


def tool_call(spec: ToolSpec, call: ToolCallInput) -> workflow.ActivityConfig:
    """``tools.run``: the tool's timeout plus a margin, heartbeats, its attempts with backoff."""
    return workflow.ActivityConfig(
        # A sandbox queue or a host queue (the worker whose Docker holds the workspace);
        # unset, this workflow's own queue, exactly as before split queues existed.
        task_queue=call.task_queue or None,
        schedule_to_start_timeout=HOST_WAIT if call.task_queue else None,
        start_to_close_timeout=timedelta(seconds=spec.timeout_s + 30),
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=spec.max_attempts,
            non_retryable_error_types=NON_RETRYABLE,
        ),
    )


@workflow.defn(name="ToolExecutionWorkflow")
class ToolExecutionWorkflow:
    @workflow.run
    async def run(self, spec: ToolSpec, call: ToolCallInput) -> ToolResult:
        workflow.set_current_details(f"running {spec.name}")
        try:
            return await workflow.execute_activity_method(
                ToolActivities.run,
                args=[spec, call],
                summary=f"{spec.name} ({spec.runs_on.value})",
                **tool_call(spec, call),
            )
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ActivityTimeout) and cause.type == TimeoutType.SCHEDULE_TO_START:
                message = (
                    f"no worker took this call from task queue {call.task_queue!r} within "
                    f"{HOST_WAIT.seconds // 60} minutes; start a sandbox worker for it "
                    "(`daemonflow worker --queues sandbox` on that Docker host)"
                )
            else:
                message = failure_message(err, "the tool run")
            return ToolResult(success=False, error=message)
