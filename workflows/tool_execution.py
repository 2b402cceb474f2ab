"""ToolExecutionWorkflow: one approved tool call, run with its own timeouts and retry policy.

A child of the conversation (id ``tool-<conversation>-<call>``) so that each call is visible on its
own in the Web UI, with its retries, and so that its policy lives with the tool rather than with
the conversation. It never fails: whatever happens, the conversation gets a ``ToolResult`` to show
the model. Since one round trip per step (``workflows/conversation.py`` ``TURN_PATCH``) only the
two-step AI tools run here; a single-step call is the activity ``tools.run`` of the conversation
itself, with the same config (``tool_call``) and failure message (``tool_failure``), activity id
``tool-<call>`` and the call as its summary: a child cost ~60 ms and four more workflow tasks
per call (``bench.sandbox``).

Timeouts all derive from the call's own budget (``ToolSpec.command_timeout_s``: its ``timeout_s``
argument within the spec's maximum): the sandbox kills the command at the budget, one activity
attempt may last the budget plus a margin, and the child itself every attempt of every step plus
back-off and the wait for a host (``run_timeout``). A command allowed an hour runs an hour.

The AI tools take two steps: ``generate_code`` has the agent's model write the code (activity
``ai.generate_code`` on the llm queue, the code stored by reference) and then writes it in the
workspace (``tools.run``); ``review_diff`` reads the workspace's diff (``tools.diff``, stored by
reference) and has the model review it (``ai.review_diff``). Only references cross history.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, TimeoutType
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    from activities.ai_tools import AiToolActivities
    from activities.tools.runner import ToolActivities
    from models.payloads import PayloadRef
    from models.tools import ToolCallInput, ToolResult, ToolSpec
    from workflows.failures import failure_message

NON_RETRYABLE = ["InvalidArguments", "PolicyViolation", "SandboxViolation"]
HOST_WAIT = timedelta(minutes=10)
"""How long a call routed to a sandbox or host queue may wait for a worker to take it: a host
queue has exactly one Docker host behind it, and a host that is gone should fail the call with a
clear message, not hang the conversation."""
HEARTBEAT = timedelta(seconds=30)
MAX_RETRY_INTERVAL = timedelta(seconds=30)
RUN_MARGIN = timedelta(seconds=60)
STEPS = {"generate_code": 2, "review_diff": 2}
"""Activities per call, for the tools that take more than one. Only these still run as a child
workflow in conversations that take one round trip per step (``workflows/conversation.py``
``TURN_PATCH``): a single-step call is one activity of the conversation itself."""


def tool_workflow_id(conversation_id: str, tool_call_id: str) -> str:
    return f"tool-{conversation_id}-{tool_call_id}"


def tool_call(spec: ToolSpec, call: ToolCallInput, task_queue: str | None) -> workflow.ActivityConfig:
    """One step of a tool run: the call's own budget plus a margin, heartbeats, its attempts with
    back-off. ``task_queue``: a sandbox or host queue (the worker whose Docker holds the
    workspace), the llm queue for model steps; unset, this workflow's own queue, as before split
    queues existed. Only the host or sandbox queue waits at most ``HOST_WAIT`` for a worker."""
    routed = bool(task_queue) and task_queue == call.task_queue
    return workflow.ActivityConfig(
        task_queue=task_queue or None,
        schedule_to_start_timeout=HOST_WAIT if routed else None,
        start_to_close_timeout=timedelta(seconds=spec.activity_timeout_s(call.arguments)),
        heartbeat_timeout=HEARTBEAT,
        retry_policy=RetryPolicy(
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=MAX_RETRY_INTERVAL,
            maximum_attempts=spec.max_attempts,
            non_retryable_error_types=NON_RETRYABLE,
        ),
    )


def tool_failure(err: ActivityError, call: ToolCallInput) -> str:
    """What the model is told when a tool run failed for good (its retries are spent, or no worker
    took it): the call never fails the conversation."""
    cause = err.cause
    if isinstance(cause, ActivityTimeout) and cause.type == TimeoutType.SCHEDULE_TO_START:
        return (
            f"no worker took this call from task queue {call.task_queue!r} within "
            f"{HOST_WAIT.seconds // 60} minutes; start a sandbox worker for it "
            "(`daemonflow worker --queues sandbox` on that Docker host)"
        )
    return failure_message(err, "the tool run")


def run_timeout(spec: ToolSpec, arguments: dict, routed: bool) -> timedelta:
    """The child's execution timeout: every attempt of every step at its longest, the back-off
    between attempts, and the wait for a host queue's worker; it only fires if all of those fail
    to end the call themselves."""
    attempt = timedelta(seconds=spec.activity_timeout_s(arguments)) + MAX_RETRY_INTERVAL
    wait = HOST_WAIT if routed else timedelta(0)
    return STEPS.get(spec.name, 1) * (spec.max_attempts * attempt + wait) + RUN_MARGIN


@workflow.defn(name="ToolExecutionWorkflow")
class ToolExecutionWorkflow:
    @workflow.run
    async def run(self, spec: ToolSpec, call: ToolCallInput) -> ToolResult:
        workflow.set_current_details(f"running {spec.name}")
        try:
            if spec.name == "generate_code":
                return await self._generate_code(spec, call)
            if spec.name == "review_diff":
                return await self._review_diff(spec, call)
            return await self._step(ToolActivities.run, spec, call, call.task_queue)
        except ActivityError as err:
            return ToolResult(success=False, error=tool_failure(err, call))

    async def _generate_code(self, spec: ToolSpec, call: ToolCallInput) -> ToolResult:
        code: PayloadRef = await self._step(AiToolActivities.generate_code, spec, call, call.llm_queue)
        write = call.model_copy(update={"arguments": {**call.arguments, "content": code.marker()}})
        return await self._step(ToolActivities.run, spec, write, call.task_queue)

    async def _review_diff(self, spec: ToolSpec, call: ToolCallInput) -> ToolResult:
        diff: PayloadRef | None = await self._step(ToolActivities.diff, spec, call, call.task_queue)
        if diff is None:
            staged = "staged " if call.arguments.get("staged") else ""
            return ToolResult(success=True, output=f"nothing to review: there are no {staged}changes (git diff is empty)")
        return await self._step(AiToolActivities.review_diff, spec, call, call.llm_queue, diff)

    async def _step(self, activity: Any, spec: ToolSpec, call: ToolCallInput, task_queue: str | None,
                    *extra: Any) -> Any:
        return await workflow.execute_activity_method(
            activity,
            args=[spec, call, *extra],
            summary=f"{spec.name} ({spec.runs_on.value if activity is ToolActivities.run else activity.__name__})",
            **tool_call(spec, call, task_queue),
        )
