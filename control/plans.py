"""The control client of task plans (``TaskPlanWorkflow``): start, find, list, read, change, steer.

A plan is validated here before it starts (``workflows/plan_graph.py``, the same words the
workflow uses), so the API and the CLI refuse a bad plan without starting anything; a plan
started another way (the plain ``temporal`` CLI) fails non-retryably with the same message.
Updates refused by the workflow's validators come back as typed errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from temporalio.client import Client, WorkflowExecution, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from control.execution import Execution, described
from control.errors import ControlError
from control.failures import answered
from control.plan_errors import PlanExists, PlanInvalid, PlanNotFound, PlanOver, TaskNotChangeable, TaskNotFound
from control.visibility import PLAN_TYPE, PlanFilter, execution_name
from models.conversation import End, Pause
from models.plan import (
    PLAN_WORKFLOW_PREFIX,
    AddTasks,
    CancelTask,
    PlanInput,
    PlanProgress,
    PlanState,
    PlanSummary,
    Priority,
    Reprioritise,
    TaskStatus,
    plan_workflow_id,
)
from workflows import search_attributes
from workflows.failures import failure_message, failure_type
from workflows.plan import TaskPlanWorkflow
from workflows.plan_graph import graph_errors

UPDATE_ERRORS: dict[str, type[ControlError]] = {
    "InvalidPlan": PlanInvalid, "PlanOver": PlanOver, "UnknownTask": TaskNotFound,
    "TaskFinished": TaskNotChangeable, "TaskStarted": TaskNotChangeable,
}  # fmt: skip


@dataclass(frozen=True)
class PlanItem:
    """One plan as visibility lists it (no worker needed)."""

    plan_id: str
    workflow_id: str
    execution: str
    state: str | None
    started_at: datetime | None
    closed_at: datetime | None

    @classmethod
    def of(cls, execution: WorkflowExecution) -> PlanItem:
        return cls(plan_id=execution.id.removeprefix(PLAN_WORKFLOW_PREFIX), workflow_id=execution.id,
                   execution=execution_name(execution.status),
                   state=execution.typed_search_attributes.get(search_attributes.STATE),
                   started_at=execution.start_time, closed_at=execution.close_time)  # fmt: skip


class Plan:
    def __init__(self, client: Client, plan_id: str, timeout: timedelta) -> None:
        self.id = plan_id
        self._handle = client.get_workflow_handle_for(TaskPlanWorkflow.run, plan_workflow_id(plan_id))
        self._timeout = timeout

    @property
    def workflow_id(self) -> str:
        return self._handle.id

    async def describe(self) -> Execution:
        return await described(self._handle, self._timeout, "the plan", lambda: PlanNotFound(self.id, self.workflow_id))

    async def progress(self) -> PlanProgress:
        return await answered(self._handle.query(TaskPlanWorkflow.progress, rpc_timeout=self._timeout),
                              f"query on plan {self.id}")  # fmt: skip

    async def add_tasks(self, request: AddTasks) -> PlanProgress:
        return await self._update(TaskPlanWorkflow.add_tasks, request)

    async def cancel_task(self, task_id: str, reason: str = "") -> TaskStatus:
        return await self._update(TaskPlanWorkflow.cancel_task, CancelTask(task_id=task_id, reason=reason))

    async def reprioritise(self, task_id: str, priority: Priority) -> TaskStatus:
        return await self._update(TaskPlanWorkflow.reprioritise, Reprioritise(task_id=task_id, priority=priority))

    async def pause(self, reason: str = "") -> None:
        await self._signal(TaskPlanWorkflow.pause, Pause(reason=reason))

    async def resume(self) -> None:
        await self._signal(TaskPlanWorkflow.resume)

    async def end(self, reason: str = "") -> None:
        await self._signal(TaskPlanWorkflow.end, End(reason=reason))

    async def result(self) -> PlanSummary:
        """Waits for the plan's end; a failed plan (``fail_plan``) raises ``PlanInvalid``/``ControlError``."""
        try:
            return await self._handle.result()
        except WorkflowFailureError as err:
            raise ControlError(f"plan {self.id} {failure_message(err.cause)}") from err

    async def _running(self) -> None:
        """``PlanOver`` once the plan is closed, or over and only finishing (its last writes): a
        signal or update would otherwise be accepted by a plan that will never act on it."""
        execution = await self.describe()
        if not execution.running:
            raise PlanOver(f"plan {self.id!r} is {execution.name}")
        state = (await self.progress()).state
        if state in (PlanState.SUCCEEDED, PlanState.FAILED, PlanState.ENDED):
            raise PlanOver(f"plan {self.id!r} is {state.value}")

    async def _update(self, update: Callable[..., Any], request: Any) -> Any:
        await self._running()
        try:
            return await answered(self._handle.execute_update(update, request, rpc_timeout=self._timeout),
                                  f"updating plan {self.id}")  # fmt: skip
        except WorkflowUpdateFailedError as err:
            kind = failure_type(err.cause)
            raise UPDATE_ERRORS.get(kind, ControlError)(failure_message(err.cause)) from err

    async def _signal(self, signal: Callable[..., None], *args: Any) -> None:
        await self._running()
        await answered(self._handle.signal(signal, *args, rpc_timeout=self._timeout), f"signalling plan {self.id}")


class Plans:
    def __init__(self, client: Client, task_queue: str, timeout_s: float = 10.0) -> None:
        self._client = client
        self._task_queue = task_queue
        self._timeout = timedelta(seconds=timeout_s)

    def get(self, plan_id: str) -> Plan:
        return Plan(self._client, plan_id, self._timeout)

    async def find(self, ref: str) -> Plan:
        """The plan ``ref`` names: its id, or its workflow id (``plan-<id>``)."""
        try:
            return await self._described(ref)
        except PlanNotFound:
            if ref.startswith(PLAN_WORKFLOW_PREFIX):
                return await self._described(ref.removeprefix(PLAN_WORKFLOW_PREFIX))
            raise

    async def _described(self, plan_id: str) -> Plan:
        plan = self.get(plan_id)
        if (await plan.describe()).workflow_type != PLAN_TYPE:
            raise PlanNotFound(plan_id, plan.workflow_id)
        return plan

    async def start(self, request: PlanInput, summary: str | None = None) -> Plan:
        """Validates the graph, then starts; never joins or revives a plan under the same id."""
        assert request.plan_id, "the caller names the plan"
        errors = graph_errors(request.tasks)
        if errors:
            raise PlanInvalid(f"invalid plan: {'; '.join(errors)}")
        plan = self.get(request.plan_id)
        starting = self._client.start_workflow(
            TaskPlanWorkflow.run, request, id=plan.workflow_id, task_queue=self._task_queue,
            static_summary=summary or request.title or f"plan of {len(request.tasks)} tasks",
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL, id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )  # fmt: skip
        try:
            await answered(starting, "starting the plan", needs_worker=False)
        except WorkflowAlreadyStartedError:
            raise PlanExists(request.plan_id) from None
        except ControlError as err:
            if isinstance(err.__cause__, RPCError) and err.__cause__.status == RPCStatusCode.ALREADY_EXISTS:
                raise PlanExists(request.plan_id) from None
            raise
        return plan

    async def list(self, running: bool | None, page_size: int, page_token: bytes | None = None
                   ) -> tuple[list[PlanItem], bytes | None]:  # fmt: skip
        """One page, newest first, of this task queue's plans; and the next page's token."""
        query = PlanFilter(task_queue=self._task_queue, running=running).query()
        pages = self._client.list_workflows(query, page_size=page_size, next_page_token=page_token,
                                            rpc_timeout=self._timeout)  # fmt: skip
        await answered(pages.fetch_next_page(), "listing plans", needs_worker=False)
        return [PlanItem.of(e) for e in pages.current_page or []], pages.next_page_token
