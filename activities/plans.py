"""The task-plan workflow's side effects: checking what its tasks need before they run
(``plans.check``), and recording each task's runs in ``task_runs`` (``plans.record_run``, the
rows monitoring's parallelisation rate reads; ``store/task_runs.py``)."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine
from temporalio import activity

from config.settings import Settings
from config.templates import InvalidAgentError, UnknownAgentError, load_template
from models.plan_activities import CheckedTasks, CheckTasks, TaskRunRecord
from models.task_runs import TaskOutcome
from store.task_runs import TaskRunStore


class PlanActivities:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._runs = TaskRunStore(engine)

    def all(self) -> list:
        return [self.check, self.record_run]

    @activity.defn(name="plans.check")
    async def check(self, request: CheckTasks) -> CheckedTasks:
        """Every task's agent template exists and offers the task's tool: a mistake is refused
        before anything runs, naming the task (templates are files: read here, never in the workflow)."""
        refused: dict[str, str] = {}
        for task in request.tasks:
            try:
                template = load_template(task.agent, self._settings.agents_dir)
            except (UnknownAgentError, InvalidAgentError) as err:
                refused[task.id] = str(err)
                continue
            if task.tool is not None and task.tool.name not in template.tools:
                offered = ", ".join(template.tools) or "none"
                refused[task.id] = f"agent {task.agent!r} does not offer the tool {task.tool.name!r} (it offers: {offered})"
        return CheckedTasks(max_parallel=self._settings.plan_max_parallel, refused=refused)

    @activity.defn(name="plans.record_run")
    async def record_run(self, record: TaskRunRecord) -> None:
        """Idempotent: the row is keyed on (plan, task, attempt), so a retry writes the same row."""
        if record.outcome == TaskOutcome.SKIPPED:
            await asyncio.to_thread(self._runs.skipped, record.plan_id, record.task_id, record.at)
        elif record.outcome is not None:
            await asyncio.to_thread(self._runs.ended, record.plan_id, record.task_id, record.at, record.outcome,
                                    record.attempt)  # fmt: skip
        else:
            await asyncio.to_thread(self._runs.started, record.plan_id, record.task_id, record.ready_at or record.at,
                                    record.at, record.max_parallel, record.attempt, record.agent)  # fmt: skip
