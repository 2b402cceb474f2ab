"""The public contract of ``TaskPlanWorkflow`` (issue 15): a plan's tasks, its settings, its updates,
its progress and its summary.

A plan is a DAG of tasks run by one durable workflow (``plan-<plan_id>``). Each task is a prompt
for an agent, answered by a conversation of its own (``plan-<plan_id>--<task_id>``, a child
``ConversationWorkflow``), so every tool call a task makes goes through the policy and may wait
for a person exactly as in a chat; a "tool task" is an agent task whose prompt is that one call
(``TaskSpec.tool``). These models are what ``temporal workflow start --input`` and the API send
as JSON, so field names are public names.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from models.conversation import Contract, Usage

PLAN_WORKFLOW_PREFIX = "plan-"
TASK_SEPARATOR = "--"
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
"""Plan and task ids: fit a workflow id; and never hold ``--`` (``_no_separator``), which joins
them in a task's conversation id, ``plan-<plan_id>--<task_id>``."""


def _no_separator(value: str | None) -> str | None:
    if value is not None and TASK_SEPARATOR in value:
        raise ValueError(f"{value!r} holds {TASK_SEPARATOR!r}, which joins plan and task ids; use another name")
    return value
MAX_TASKS = 200
"""Tasks in one plan, added ones included: the plan's state is carried whole across runs."""
MAX_PROMPT_CHARS = 8_000
"""A task's own prompt; its dependencies' results are added as bounded previews."""
MAX_TASKS_BYTES = 512 * 1024
"""A plan's task specs together, as JSON (prompts, tool arguments, titles): the plan's state
carries them whole, through every continue-as-new, and Temporal refuses a payload over 2 MB.
Without it, 200 prompts of 8,000 characters made a 1.65 MB start and a 3.4 MB continue-as-new that
the worker could not send: the plan stopped there for good (and other scripts than Latin take up
to three bytes a character)."""
RESULT_PREVIEW_CHARS = 500
"""How much of a task's reply the plan keeps and passes to its dependents (the whole reply stays
in the task's conversation transcript, at ``reply_seq``)."""
MAX_PLAN_DEPTH = 1
"""A plan started by a person (or by an agent outside any plan) has depth 0; a plan created by a
task of a plan has its depth + 1; deeper than this is refused (``create_plan``)."""
MAX_PARALLEL_CEILING = 20


def plan_workflow_id(plan_id: str) -> str:
    return f"{PLAN_WORKFLOW_PREFIX}{plan_id}"


def task_conversation_id(plan_id: str, task_id: str) -> str:
    return f"{PLAN_WORKFLOW_PREFIX}{plan_id}{TASK_SEPARATOR}{task_id}"


def plan_of_conversation(conversation_id: str) -> str | None:
    """The plan id of a task's conversation (``plan-<plan_id>--<task_id>``), else None."""
    if not conversation_id.startswith(PLAN_WORKFLOW_PREFIX) or TASK_SEPARATOR not in conversation_id:
        return None
    return conversation_id.removeprefix(PLAN_WORKFLOW_PREFIX).split(TASK_SEPARATOR, 1)[0] or None


class Priority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """0 runs first."""
        return list(Priority).index(self)


class OnFailure(StrEnum):
    SKIP_DEPENDENTS = "skip_dependents"
    """A failed task's dependents (and theirs) are skipped with the reason; the rest goes on."""
    FAIL_PLAN = "fail_plan"
    """The first task that fails for good stops the plan: running tasks are cancelled, the rest
    skipped, and the workflow fails (``PlanFailed``)."""


class RetrySpec(Contract):
    """A task's attempts: each failed or timed-out attempt waits ``initial_interval_s`` ×
    ``backoff_coefficient``^(n-1), at most ``max_interval_s``, before the next."""

    max_attempts: int = Field(default=3, ge=1, le=10)
    initial_interval_s: float = Field(default=2.0, ge=0.0, le=3600)
    backoff_coefficient: float = Field(default=2.0, ge=1.0, le=10.0)
    max_interval_s: float = Field(default=300.0, ge=0.0, le=86_400)

    def delay_s(self, failed_attempts: int) -> float:
        return min(self.max_interval_s, self.initial_interval_s * self.backoff_coefficient ** max(0, failed_attempts - 1))


class ToolCallTask(Contract):
    """One tool call, made by the task's agent (so the policy judges it, and a person approves it
    when the policy asks, exactly as in a chat)."""

    name: str = Field(min_length=1, max_length=100)
    arguments: dict[str, Any] = Field(default_factory=dict)


class TaskSpec(Contract):
    id: str = Field(pattern=ID_PATTERN)
    _id_separator = field_validator("id")(_no_separator)
    title: str = Field(default="", max_length=200)
    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    """What the agent is asked to do."""
    agent: str = Field(default="assistant", min_length=1, max_length=64)
    """The agent template that does it."""
    model: str | None = Field(default=None, min_length=1, max_length=200)
    tool: ToolCallTask | None = None
    """A single tool call instead of (or with) a prompt; the template must offer the tool."""
    priority: Priority = Priority.NORMAL
    depends_on: list[str] = Field(default_factory=list, max_length=MAX_TASKS)
    estimate_s: float = Field(default=60.0, ge=0, le=7 * 86_400)
    """Estimated duration: breaks ties between ready tasks (shorter first)."""
    retry: RetrySpec = Field(default_factory=RetrySpec)
    timeout_s: float = Field(default=1800.0, gt=0, le=7 * 86_400)
    """One attempt's budget: an attempt that takes longer counts as failed (``timed_out``)."""

    @model_validator(mode="after")
    def _something_to_do(self) -> TaskSpec:
        if not self.prompt.strip() and self.tool is None:
            raise ValueError(f"task {self.id!r} has nothing to do: give it a prompt or a tool call")
        if self.tool is not None and len(json.dumps(self.tool.arguments)) > MAX_PROMPT_CHARS:
            raise ValueError(f"task {self.id!r}: the tool call's arguments exceed {MAX_PROMPT_CHARS} characters")
        return self

    @property
    def label(self) -> str:
        return self.title or self.id


class PlanSettings(Contract):
    max_parallel: int | None = Field(default=None, ge=1, le=MAX_PARALLEL_CEILING)
    """Tasks running at once; None: the worker's ``DAEMONFLOW_PLAN_MAX_PARALLEL`` (3)."""
    on_failure: OnFailure = OnFailure.SKIP_DEPENDENTS
    auto_accept: bool = True
    """Passed to every task's conversation (off: every tool call asks a person)."""
    policy: list[dict] = Field(default_factory=list)
    """Per-plan policy rules for every task's conversation (same format as ``config/policy.yaml``)."""
    user_id: str | None = Field(default=None, max_length=200)
    approval_timeout_s: int = Field(default=3600, ge=1)
    tasks_per_run: int = Field(default=100, ge=1, le=10_000)
    """Continue-as-new once this many attempts ran in one run (or when the server suggests it),
    after the running tasks end."""


class PlanInput(Contract):
    plan_id: str | None = Field(default=None, pattern=ID_PATTERN)
    """Taken from the workflow id when absent (``plan-<id>`` → ``<id>``)."""
    _id_separator = field_validator("plan_id")(_no_separator)
    title: str = Field(default="", max_length=200)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS)
    settings: PlanSettings = Field(default_factory=PlanSettings)
    depth: int = Field(default=0, ge=0, le=MAX_PLAN_DEPTH)
    """How deep this plan is among plans created by plans' tasks (``MAX_PLAN_DEPTH``)."""
    created_by: str | None = Field(default=None, max_length=400)
    """Who asked: a person (API key name) or a conversation (``create_plan``)."""
    parent_plan_id: str | None = Field(default=None, pattern=ID_PATTERN)
    """The plan whose task created this one (``create_plan``: read from the calling conversation's
    id, never from the model). This plan tells it at start (``sub_plan_started``); ending or
    failing it ends this one too."""
    carried: dict | None = None
    """Set only by continue-as-new: the previous run's ``CarriedPlan``."""


class TaskState(StrEnum):
    WAITING = "waiting"
    """A dependency is not done yet."""
    READY = "ready"
    """Could run; waits for a free slot (or a resume)."""
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"
    """An attempt failed; the next one is due at ``retry_at``."""
    AWAITING_APPROVAL = "awaiting_approval"
    """Running, and its conversation waits for a person's decision on a tool call."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED}


class TaskStatus(Contract):
    """A task as the plan holds it (carried across runs; the progress query shows it)."""

    spec: TaskSpec
    state: TaskState = TaskState.WAITING
    attempts: int = 0
    ready_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    retry_at: datetime | None = None
    conversation_started: bool = False
    result: str = ""
    """The start of its reply (``RESULT_PREVIEW_CHARS``)."""
    result_chars: int = 0
    reply_seq: int | None = None
    error: str | None = None
    """Why it failed, was skipped or cancelled."""
    usage: Usage = Field(default_factory=Usage)
    waiting_calls: list[str] = Field(default_factory=list)
    """Tools its conversation waits on a person for."""


class PlanState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    """Every task ran; some may have failed or been skipped (``skip_dependents``): see the counts."""
    FAILED = "failed"
    ENDED = "ended"


class CarriedPlan(Contract):
    """Everything a plan run hands to the next (continue-as-new), whole."""

    plan_id: str
    tasks: list[TaskStatus]
    max_parallel: int
    paused: bool = False
    pause_reason: str | None = None
    most_parallel: int = 0
    """The most tasks that ran at once so far."""
    attempts_total: int = 0
    sub_plans: list[str] = Field(default_factory=list)
    """Plans its tasks created (at most ``MAX_SUB_PLANS`` kept): ended with it."""


class SubPlanStarted(Contract):
    """The ``sub_plan_started`` signal: a plan one of this plan's tasks created."""

    plan_id: str = Field(pattern=ID_PATTERN)


class AddTasks(Contract):
    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS)


class CancelTask(Contract):
    task_id: str
    reason: str = Field(default="", max_length=500)


class Reprioritise(Contract):
    task_id: str
    priority: Priority


class PlanProgress(Contract):
    plan_id: str
    title: str = ""
    state: PlanState
    details: str
    """The Web UI's current-details line: ``4/9 done · running: build, test · waiting: deploy``."""
    max_parallel: int
    most_parallel: int
    depth: int = 0
    settings: PlanSettings | None = None
    """What its tasks' conversations get (policy, auto_accept, user…): a plan its tasks create inherits it."""
    paused: bool = False
    pause_reason: str | None = None
    counts: dict[str, int]
    tasks: list[TaskStatus]
    ended_reason: str | None = None


class PlanSummary(Contract):
    """What the workflow returns (and ``create_plan`` gives the agent)."""

    plan_id: str
    state: PlanState
    counts: dict[str, int]
    tasks: list[TaskStatus]
    most_parallel: int
    ended_reason: str | None = None

    def text(self) -> str:
        """A compact account for a model: each task's outcome and the start of its result."""
        lines = [f"plan {self.plan_id} {self.state.value}: " + ", ".join(f"{n} {k}" for k, n in self.counts.items() if n)]
        for task in self.tasks:
            said = task.result if task.state == TaskState.SUCCEEDED else task.error or ""
            lines.append(f"- {task.spec.id} ({task.state.value}): {said}")
        return "\n".join(lines)
