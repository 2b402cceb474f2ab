"""``create_plan``: an agent turns a request into a task plan and gets its results back.

The tool's JSON arguments are a plan (``PlanArguments``: tasks and two settings, nothing else —
not its depth, not its policy); they are validated here (schema, then the graph rules of
``workflows/plan_graph.py``), and a bad plan is a non-retryable ``InvalidArguments`` the model reads
and can fix. The plan is started under an id derived from the calling conversation and the call
(a retried activity finds the same plan instead of starting another), then awaited, heartbeating,
for at most ``DAEMONFLOW_PLAN_TOOL_WAIT_S``: the result is the plan's summary, or, if it is still
running, its id and what it is doing. The policy asks a person before it runs (``config/policy.yaml``,
``ask-create-plan``), and plans nest at most ``MAX_PLAN_DEPTH`` deep: a task's conversation is
``plan-<plan>--<task>``, its plan's depth is asked of that plan, and nothing the model writes
enters the count. The plan inherits the calling conversation's settings (its policy rules,
``auto_accept`` as it is now, user, approval timeout — a plan's task has its plan's: what a person
set binds what the agent plans; never its "approve always" rules), and a plan created by a plan's
task is ended with that plan (``parent_plan_id``).
"""

from __future__ import annotations

import asyncio
import hashlib

from pydantic import Field, ValidationError
from temporalio.client import Client

from activities.tools.context import ToolContext
from activities.tools.operands import InvalidArguments
from control.conversations import Conversations
from control.errors import ControlError
from control.plan_errors import PlanExists, PlanInvalid
from control.plans import Plan, Plans
from models.conversation import Contract
from models.plan import MAX_PLAN_DEPTH, MAX_TASKS, OnFailure, PlanInput, PlanSettings, TaskSpec, plan_of_conversation
from models.tools import ToolCallInput, ToolResult

TOOL_NAME = "create_plan"


class PlanArguments(Contract):
    """What the model may set: the tasks, a title, the parallel limit and what a failure does."""

    title: str = Field(default="", max_length=200)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS)
    max_parallel: int | None = Field(default=None, ge=1, le=3)
    on_failure: OnFailure = OnFailure.SKIP_DEPENDENTS


class PlanTool:
    def __init__(self, client: Client, task_queue: str, wait_s: float) -> None:
        self._plans = Plans(client, task_queue)
        self._conversations = Conversations(client, task_queue)
        self._wait_s = wait_s

    def tools(self) -> dict:
        return {TOOL_NAME: self.create_plan}

    async def create_plan(self, call: ToolCallInput, context: ToolContext) -> ToolResult:
        arguments = _arguments(call)
        parent = plan_of_conversation(call.conversation_id)
        depth = 0
        if parent is not None:  # this conversation is a task of plan ``parent``: asked, never taken from the model
            try:
                depth = (await self._plans.get(parent).progress()).depth + 1
            except ControlError as err:
                return ToolResult(success=False, error=f"refused: the depth of plan {parent} cannot be read ({err})")
        if depth > MAX_PLAN_DEPTH:
            return ToolResult(success=False, error=(
                f"refused: this conversation is a task of a plan {depth - 1} level(s) deep, and plans may nest at most "
                f"{MAX_PLAN_DEPTH} level(s); do the work yourself instead"))
        plan_id = "c" + hashlib.sha256(f"{call.conversation_id}/{call.tool_call_id}".encode()).hexdigest()[:16]
        try:  # the calling conversation's rules bind the plan (a plan's task has its plan's)
            inherited = await self._conversations.get(call.conversation_id).delegated_settings()
        except ControlError as err:
            return ToolResult(success=False, error=f"refused: the settings of this conversation cannot be read ({err})")
        settings = PlanSettings(**inherited.model_dump(), max_parallel=arguments.max_parallel, on_failure=arguments.on_failure)
        request = PlanInput(plan_id=plan_id, title=arguments.title, tasks=arguments.tasks, depth=depth,
                            created_by=f"conversation {call.conversation_id}", settings=settings,
                            parent_plan_id=parent)  # fmt: skip
        try:
            plan = await self._plans.start(request, f"plan of {call.conversation_id}: {arguments.title or 'untitled'}"[:200])
        except PlanExists:
            plan = self._plans.get(plan_id)  # this call's plan, started by an earlier attempt
        except PlanInvalid as err:
            raise InvalidArguments(str(err)) from None
        return await self._outcome(plan, min(self._wait_s, max(1.0, context.timeout_s - 30)))

    async def _outcome(self, plan: Plan, wait_s: float) -> ToolResult:
        try:
            summary = await asyncio.wait_for(plan.result(), timeout=wait_s)
        except asyncio.TimeoutError:
            progress = await plan.progress()
            return ToolResult(success=True, output=(
                f"plan {plan.id} is still running after {wait_s:g} s: {progress.details}. Its results are not "
                f"in this answer; a person can follow it with `daemonflow plan status {plan.id}`."))
        except ControlError as err:
            return ToolResult(success=False, error=str(err))
        return ToolResult(success=True, output=summary.text())


def _arguments(call: ToolCallInput) -> PlanArguments:
    try:
        return PlanArguments.model_validate(call.arguments)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors(include_input=False))
        raise InvalidArguments(f"invalid plan: {problems}") from None
