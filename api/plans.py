"""Task plans over HTTP: create, list, read, add tasks, cancel, pause, resume — through the
``control`` plan client (``control/plans.py``). A bad plan (a cycle, an unknown dependency, a
duplicate id, an unknown agent) is a ``422 plan-invalid`` naming what is wrong, before anything
starts; roles are the conversations' (reading: viewer; changing: operator; per-plan policy
rules: admin)."""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field

from api.auth import Permission, Principal
from api.context import ApiContext
from api.conversations import Ctx, Operator, Reader, _page_token
from api.errors import ApiError
from api.openapi import problems
from config.policy import PolicyError, parse_rules
from config.templates import template_names
from control.plans import PlanItem, Plans
from models.conversation import Contract
from models.plan import ID_PATTERN, MAX_TASKS, AddTasks, PlanInput, PlanProgress, PlanSettings, Priority, TaskSpec, TaskStatus

router = APIRouter(tags=["plans"])

PlanId = Annotated[str, Path(pattern=ID_PATTERN, description="plan id (workflow `plan-<id>`)")]
TaskId = Annotated[str, Path(pattern=ID_PATTERN)]


def plans(request: Request) -> Plans:
    return request.app.state.plans


PlansDep = Annotated[Plans, Depends(plans)]


class CreatePlan(Contract):
    plan_id: str | None = Field(default=None, pattern=ID_PATTERN)
    title: str = Field(default="", max_length=200)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS)
    settings: PlanSettings = Field(default_factory=PlanSettings)


class PlanCreated(Contract):
    plan_id: str
    workflow_id: str


class PlanPage(Contract):
    plans: list[dict[str, Any]]
    next_page_token: str | None = None


class PlanDetail(Contract):
    workflow_id: str
    execution: str
    progress: PlanProgress


class CancelBody(Contract):
    task_id: str | None = Field(default=None, pattern=ID_PATTERN)
    """A task to cancel; without it the whole plan is ended."""
    reason: str = Field(default="", max_length=500)


class PauseBody(Contract):
    reason: str = Field(default="", max_length=500)


class PriorityBody(Contract):
    priority: Priority


class PlanSignalSent(Contract):
    plan_id: str
    signal: str


@router.post("/plans", status_code=201, response_model=PlanCreated, responses=problems(400, 401, 403, 409, 413, 422, 503),
             summary="Start a task plan (validated first: cycles, unknown dependencies, duplicate ids, agents)")  # fmt: skip
async def create_plan(body: CreatePlan, ctx: Ctx, principal: Operator, plans: PlansDep, response: Response) -> PlanCreated:
    _check_plan(body.tasks, body.settings, ctx, principal)
    request = PlanInput(plan_id=body.plan_id or uuid.uuid4().hex[:12], title=body.title, tasks=body.tasks,
                        settings=body.settings, created_by=principal.name)  # fmt: skip
    assert request.plan_id is not None
    plan = await plans.start(request, f"{body.title or 'plan'} · {len(body.tasks)} tasks · by {principal.name}"[:200])
    response.headers["Location"] = f"/plans/{plan.id}"
    return PlanCreated(plan_id=plan.id, workflow_id=plan.workflow_id)


@router.get("/plans", response_model=PlanPage, responses=problems(401, 403, 422, 503),
            summary="List task plans (Temporal visibility), newest first")  # fmt: skip
async def list_plans(
    _: Reader, plans: PlansDep,
    running: Annotated[bool | None, Query(description="true: running only; false: finished only")] = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> PlanPage:  # fmt: skip
    items, next_token = await plans.list(running, page_size, _page_token(page_token))
    token = base64.urlsafe_b64encode(next_token).decode().rstrip("=") if next_token else None
    return PlanPage(plans=[_item(item) for item in items], next_page_token=token)


def _item(item: PlanItem) -> dict[str, Any]:
    return {"plan_id": item.plan_id, "workflow_id": item.workflow_id, "execution": item.execution, "state": item.state,
            "started_at": item.started_at, "closed_at": item.closed_at}  # fmt: skip


@router.get("/plans/{plan_id}", response_model=PlanDetail, responses=problems(401, 403, 404, 422, 503),
            summary="A plan's progress: every task with its state, dependencies, attempts and result preview")  # fmt: skip
async def get_plan(plan_id: PlanId, _: Reader, plans: PlansDep) -> PlanDetail:
    plan = await plans.find(plan_id)
    execution = await plan.describe()
    return PlanDetail(workflow_id=plan.workflow_id, execution=execution.name, progress=await plan.progress())


@router.post("/plans/{plan_id}/tasks", response_model=PlanProgress, responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
             summary="Add tasks to a running plan (update add_tasks: validated against the plan's graph)")  # fmt: skip
async def add_tasks(plan_id: PlanId, body: AddTasks, ctx: Ctx, principal: Operator, plans: PlansDep) -> PlanProgress:
    _check_plan(body.tasks, None, ctx, principal)
    return await (await plans.find(plan_id)).add_tasks(body)


@router.post("/plans/{plan_id}/tasks/{task_id}/priority", response_model=TaskStatus,
             responses=problems(400, 401, 403, 404, 409, 422, 503),
             summary="Change the priority of a task not started yet (update reprioritise)")  # fmt: skip
async def reprioritise(plan_id: PlanId, task_id: TaskId, body: PriorityBody, _: Operator, plans: PlansDep) -> TaskStatus:
    return await (await plans.find(plan_id)).reprioritise(task_id, body.priority)


@router.post("/plans/{plan_id}/cancel", responses=problems(400, 401, 403, 404, 409, 422, 503),
             summary="Cancel one task (`task_id`: its dependents are skipped) or, without it, end the whole plan")  # fmt: skip
async def cancel(plan_id: PlanId, _: Operator, plans: PlansDep, body: CancelBody | None = None) -> Any:
    plan = await plans.find(plan_id)
    body = body or CancelBody()
    if body.task_id is not None:
        return await plan.cancel_task(body.task_id, body.reason)
    await plan.end(body.reason or "cancelled over HTTP")
    return PlanSignalSent(plan_id=plan.id, signal="end")


@router.post("/plans/{plan_id}/pause", status_code=202, response_model=PlanSignalSent,
             responses=problems(400, 401, 403, 404, 409, 422, 503),
             summary="Pause: no task starts; running tasks' conversations pause at their next step")  # fmt: skip
async def pause(plan_id: PlanId, _: Operator, plans: PlansDep, body: PauseBody | None = None) -> PlanSignalSent:
    plan = await plans.find(plan_id)
    await plan.pause((body or PauseBody()).reason)
    return PlanSignalSent(plan_id=plan.id, signal="pause")


@router.post("/plans/{plan_id}/resume", status_code=202, response_model=PlanSignalSent,
             responses=problems(401, 403, 404, 409, 422, 503), summary="Resume a paused plan")  # fmt: skip
async def resume(plan_id: PlanId, _: Operator, plans: PlansDep) -> PlanSignalSent:
    plan = await plans.find(plan_id)
    await plan.resume()
    return PlanSignalSent(plan_id=plan.id, signal="resume")


def _check_plan(tasks: list[TaskSpec], settings: PlanSettings | None, ctx: ApiContext, principal: Principal) -> None:
    """What only the server knows: its agent templates; policy rules need the admin role, as for conversations."""
    if settings is not None and settings.policy:
        if not principal.can(Permission.CONFIGURE):
            raise ApiError(403, "forbidden", "Role not allowed",
                           f"policy overrides need the admin role (key {principal.name!r} is {principal.role.value})")
        try:
            parse_rules(settings.policy)
        except PolicyError as err:
            raise ApiError(422, "invalid-policy", "Invalid policy overrides", str(err)) from err
    known = template_names(ctx.settings.agents_dir)
    unknown = sorted({task.agent for task in tasks if task.agent not in known})
    if unknown:
        raise ApiError(422, "unknown-agent", "Unknown agent template",
                       f"unknown agent template(s) {', '.join(map(repr, unknown))}; known templates: {', '.join(known)}")
