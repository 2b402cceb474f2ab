"""TaskPlanWorkflow (``plan-<plan_id>``): a DAG of tasks run by agents, at most ``max_parallel`` at once.

Each task is answered by a conversation of its own (``plan-<plan_id>--<task_id>``, a child
``ConversationWorkflow`` started on the task's first attempt, abandoned on the plan's
continue-as-new and ended by signal once the task is over), asked through ``request_turn`` and
heard back through ``task_done`` / ``task_progress`` (``models.turn_requests``). So every tool a
task calls is judged by the policy and waits for a person when the policy asks, as in a chat.

The scheduler loop (``run``) settles the graph (pure, ``workflows/plan_graph.py``: ready, skipped),
then starts ready tasks in ``start_order`` while slots are free and the plan is not paused, then
waits for something to change: a task's end, a retry falling due, a signal or an update. A failed
attempt is retried after its back-off; a task that fails for good skips its dependents with the
reason, or fails the plan (``on_failure``). Each attempt is a ``task_runs`` row
(``plans.record_run``). State: one ``CarriedPlan``, handed whole to the next run by
continue-as-new once the running tasks are over.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.plans import PlanActivities
    from models.conversation import ConversationInput, ConversationState, End, Pause, conversation_workflow_id
    from models.plan import (
        PLAN_WORKFLOW_PREFIX,
        AddTasks,
        CancelTask,
        CarriedPlan,
        OnFailure,
        PlanInput,
        PlanProgress,
        PlanSettings,
        PlanState,
        PlanSummary,
        Reprioritise,
        SubPlanStarted,
        TaskState,
        TaskStatus,
        plan_workflow_id,
        task_conversation_id,
    )
    from models.plan_activities import CheckTasks, TaskRunRecord
    from models.task_runs import TaskOutcome
    from models.turn_reports import TurnDone, TurnOutcome, TurnProgressNote
    from models.turn_requests import ReplyAddress, TurnRequest
    from workflows import search_attributes
    from workflows.activity_config import STORE_LOCAL
    from workflows.conversation import ConversationWorkflow
    from workflows.local_steps import LocalSteps
    from workflows.outbox import Outbox
    from workflows.plan_graph import blocked, graph_errors, newly_ready, spec_bytes, start_order
    from workflows.plan_prompts import task_prompt
    from workflows.plan_view import counts, describe

ATTEMPT_OUTCOMES = {TurnOutcome.FAILED: TaskOutcome.FAILED, TurnOutcome.REJECTED: TaskOutcome.FAILED,
                    TurnOutcome.ENDED: TaskOutcome.FAILED}  # fmt: skip
FINAL_TURN_OUTCOMES = {TurnOutcome.REJECTED, TurnOutcome.ENDED}
"""A rejected request or an ended conversation cannot be helped by asking again."""
SUB_PLAN_PATCH = "sub-plans-end-with-their-parent"
"""A plan created by a task tells its parent, which ends it when it is ended or fails."""
MAX_SUB_PLANS = 200
CARRY_ONCE_PATCH = "plan-carries-its-tasks-once"
"""A continued run takes its tasks from ``carried`` alone; the input's own list had carried every
spec a second time (one stands in: ``PlanInput`` needs one)."""


@workflow.defn(name="TaskPlanWorkflow")
class TaskPlanWorkflow:
    @workflow.init
    def __init__(self, input: dict[str, Any] | None = None) -> None:
        self._invalid: str | None = None
        try:
            self._input = PlanInput.model_validate(input or {})
            carried = CarriedPlan.model_validate(self._input.carried) if self._input.carried else None
        except ValidationError as err:
            self._input = PlanInput.model_construct(tasks=[], settings=PlanSettings(), title="", depth=0)
            self._invalid, carried = f"invalid PlanInput: {err}", None
        if carried is None and not self._invalid:
            errors = graph_errors(self._input.tasks)
            self._invalid = f"invalid plan: {'; '.join(errors)}" if errors else None
        plan_id = self._input.plan_id or workflow.info().workflow_id.removeprefix(PLAN_WORKFLOW_PREFIX)
        self._carried = carried or CarriedPlan(plan_id=plan_id, max_parallel=self._input.settings.max_parallel or 0,
                                               tasks=[TaskStatus(spec=t) for t in self._input.tasks])  # fmt: skip
        self._running: dict[str, asyncio.Task[None]] = {}
        self._asked: dict[str, str] = {}
        """Request id → task id, for the attempts waiting on their conversation's report."""
        self._done: dict[str, TurnDone] = {}
        self._cancelled: dict[str, str] = {}
        """Task id → why, for the running tasks ``cancel_task`` stopped."""
        self._children: dict[str, workflow.ChildWorkflowHandle] = {}
        self._timers: list[asyncio.Task[None]] = []
        self._signals = Outbox()
        self._writes: list[asyncio.Task[None]] = []
        self._local = LocalSteps()
        self._dirty = False
        self._ended: str | None = None
        self._failed: str | None = None
        self._over = False
        self._attempts_this_run = 0
        self._state: PlanState | None = None

    # --- main loop --------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: dict[str, Any] | None = None) -> PlanSummary:
        if self._invalid:
            raise ApplicationError(self._invalid, type="InvalidPlan", non_retryable=True)
        if self._input.carried is None:
            await self._check_first()
            if self._input.parent_plan_id and workflow.patched(SUB_PLAN_PATCH):
                self._signals.send(plan_workflow_id(self._input.parent_plan_id), "sub_plan_started",
                                   SubPlanStarted(plan_id=self._carried.plan_id))  # fmt: skip
        for task in self._carried.tasks:
            if task.state == TaskState.RETRY_WAIT:
                self._timers.append(asyncio.create_task(self._retry_when_due(task)))
        self._set_state()
        while True:
            self._settle()
            if self._ended or self._failed or self._all_finished():
                break
            if self._continue_due():
                if not self._running:
                    await self._continue_as_new()
            elif not self._carried.paused:
                self._start_ready()
            self._set_state()
            await workflow.wait_condition(lambda: self._dirty or bool(self._ended))
            self._dirty = False
        return await self._finish()

    async def _check_first(self) -> None:
        """The worker's default limit, and every task's template and tool, before anything runs."""
        checked = await self._local.run(PlanActivities.check, CheckTasks(tasks=self._input.tasks),
                                        summary="check the plan's agents", config=STORE_LOCAL)  # fmt: skip
        if checked.refused:
            why = "; ".join(f"task {task!r}: {reason}" for task, reason in checked.refused.items())
            raise ApplicationError(f"invalid plan: {why}", type="InvalidPlan", non_retryable=True)
        self._carried.max_parallel = self._input.settings.max_parallel or checked.max_parallel

    def _settle(self) -> None:
        """Ready what can run; skip what never can (a dependency failed, was skipped or cancelled)."""
        now = workflow.now()
        for task_id in newly_ready(self._carried.tasks):
            task = self._task(task_id)
            task.state, task.ready_at = TaskState.READY, now
        for task_id, reason in blocked(self._carried.tasks).items():
            task = self._task(task_id)
            task.state, task.error, task.ended_at = TaskState.SKIPPED, reason, now
            self._record_later(TaskRunRecord(plan_id=self._carried.plan_id, task_id=task_id, at=now,
                                             outcome=TaskOutcome.SKIPPED))  # fmt: skip

    def _all_finished(self) -> bool:
        return all(task.state.finished for task in self._carried.tasks)

    def _continue_due(self) -> bool:
        return self._attempts_this_run >= self._input.settings.tasks_per_run or workflow.info().is_continue_as_new_suggested()

    def _start_ready(self) -> None:
        for task_id in start_order(self._carried.tasks):
            if len(self._running) >= self._carried.max_parallel:
                return
            task = self._task(task_id)
            task.state = TaskState.RUNNING
            self._running[task_id] = asyncio.create_task(self._run_task(task))
            self._carried.most_parallel = max(self._carried.most_parallel, len(self._running))

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        if not self._ended and not self._failed:
            carried = self._carried.model_dump(mode="json")
            tasks = [self._carried.tasks[0].spec] if workflow.patched(CARRY_ONCE_PATCH) else self._input.tasks
            workflow.continue_as_new(PlanInput(**self._input.model_dump(exclude={"carried", "tasks"}), tasks=tasks,
                                               carried=carried))  # fmt: skip

    async def _finish(self) -> PlanSummary:
        self._over = True
        reason = self._ended or self._failed
        now = workflow.now()
        for task_id in list(self._running):
            self._cancelled.setdefault(task_id, f"plan stopped: {reason}")
        await asyncio.gather(*self._running.values())
        for task in self._carried.tasks:
            if not task.state.finished:
                task.state, task.error, task.ended_at = TaskState.SKIPPED, f"plan stopped: {reason}", now
                self._record_later(TaskRunRecord(plan_id=self._carried.plan_id, task_id=task.spec.id, at=now,
                                                 outcome=TaskOutcome.SKIPPED))  # fmt: skip
        for timer in self._timers:
            timer.cancel()
        if reason and workflow.patched(SUB_PLAN_PATCH):
            for sub_plan in self._carried.sub_plans:
                self._end_sub_plan(sub_plan, reason)
        self._set_state()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        summary = PlanSummary(plan_id=self._carried.plan_id, state=self._plan_state(), counts=counts(self._carried.tasks),
                              tasks=self._carried.tasks, most_parallel=self._carried.most_parallel,
                              ended_reason=reason)  # fmt: skip
        if self._failed:
            raise ApplicationError(f"plan failed: {self._failed}", summary, type="PlanFailed", non_retryable=True)
        return summary

    async def _flush(self) -> None:
        if self._writes:
            await asyncio.gather(*self._writes)
            self._writes.clear()
        await self._signals.delivered()

    # --- one task -----------------------------------------------------------------------------

    async def _run_task(self, task: TaskStatus) -> None:
        """One attempt of ``task``; then it has succeeded, waits for its retry, or is over."""
        task.attempts += 1
        self._attempts_this_run += 1
        self._carried.attempts_total += 1
        task.started_at, task.error, task.retry_at = workflow.now(), None, None
        await self._record(TaskRunRecord(plan_id=self._carried.plan_id, task_id=task.spec.id, attempt=task.attempts,
                                         at=task.started_at, ready_at=task.ready_at, agent=task.spec.agent,
                                         max_parallel=self._carried.max_parallel))  # fmt: skip
        try:
            outcome, done = await self._attempt(task)
        finally:
            del self._running[task.spec.id]
        task.ended_at = workflow.now()
        task.waiting_calls = []
        await self._record(TaskRunRecord(plan_id=self._carried.plan_id, task_id=task.spec.id, attempt=task.attempts,
                                         at=task.ended_at, outcome=outcome))  # fmt: skip
        self._conclude(task, outcome, done)
        self._dirty = True

    async def _attempt(self, task: TaskStatus) -> tuple[TaskOutcome, TurnDone | None]:
        """Ask the task's conversation for one turn and wait for its report, the timeout, a cancel
        or the plan's end."""
        task_id = task.spec.id
        error = await self._start_conversation(task)
        if error:
            task.error = error
            return TaskOutcome.FAILED, None
        request_id = f"{self._carried.plan_id}-{task_id}-{task.attempts}-{workflow.uuid4().hex[:8]}"
        done = {t.spec.id: t for t in self._carried.tasks}
        text = task_prompt(self._carried.plan_id, self._input.title, task.spec, [done[d] for d in task.spec.depends_on])
        address = ReplyAddress(workflow_id=workflow.info().workflow_id, signal="task_done", progress_signal="task_progress")
        self._asked[request_id] = task_id
        try:
            handle = workflow.get_external_workflow_handle(self._conversation(task_id))
            await handle.signal(ConversationWorkflow.request_turn, TurnRequest(
                request_id=request_id, content=text, author=f"plan {self._carried.plan_id}", reply_to=address))
            await self._await_report(task, request_id)
        except FailureError as err:
            task.error = f"its conversation cannot be reached: {err}"
            return TaskOutcome.FAILED, TurnDone(request_id=request_id, conversation_id="", outcome=TurnOutcome.ENDED)
        except TimeoutError:
            task.error = f"attempt {task.attempts} timed out after {task.spec.timeout_s:g} s"
            return TaskOutcome.TIMED_OUT, None
        finally:
            self._asked.pop(request_id, None)
        if request_id not in self._done:
            stop = self._ended or self._failed
            why = self._cancelled.get(task_id) or (f"plan stopped: {stop}" if stop else None)
            task.error = why or self._child_failure(task_id)
            return (TaskOutcome.CANCELLED if why else TaskOutcome.FAILED), None
        report = self._done.pop(request_id)
        if report.outcome == TurnOutcome.ANSWERED:
            return TaskOutcome.SUCCEEDED, report
        task.error = report.error or f"its turn was {report.outcome.value}"
        return ATTEMPT_OUTCOMES[report.outcome], report

    async def _await_report(self, task: TaskStatus, request_id: str) -> None:
        """Until the report comes or the task is stopped; ``TimeoutError`` after ``timeout_s``. A
        timeout while the plan is paused waits for the resume and starts a fresh timeout (its
        conversation was paused too), rather than failing an attempt a person held."""
        over = lambda: request_id in self._done or self._stopped(task.spec.id)  # noqa: E731
        while True:
            try:
                await workflow.wait_condition(over, timeout=timedelta(seconds=task.spec.timeout_s))
                return
            except TimeoutError:
                if not self._carried.paused:
                    raise
                await workflow.wait_condition(lambda: over() or not self._carried.paused)
                if over():
                    return

    def _stopped(self, task_id: str) -> bool:
        child = self._children.get(task_id)
        stop = task_id in self._cancelled or bool(self._ended or self._failed)
        return stop or (child is not None and child.done())

    def _child_failure(self, task_id: str) -> str:
        child = self._children.get(task_id)
        if child is not None and child.done():
            return f"its conversation closed: {child.exception() or 'it returned'}"
        return "stopped"

    async def _start_conversation(self, task: TaskStatus) -> str | None:
        if task.conversation_started:
            return None
        spec, settings = task.spec, self._input.settings
        request = ConversationInput(conversation_id=task_conversation_id(self._carried.plan_id, spec.id), agent=spec.agent,
                                    model=spec.model, auto_accept=settings.auto_accept, policy=settings.policy,
                                    user_id=settings.user_id, approval_timeout_s=settings.approval_timeout_s)  # fmt: skip
        try:
            self._children[spec.id] = await workflow.start_child_workflow(
                ConversationWorkflow.run, request, id=self._conversation(spec.id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                static_summary=f"task {spec.id} of plan {self._carried.plan_id}: {spec.label}"[:200],
            )  # fmt: skip
        except WorkflowAlreadyStartedError:
            return f"conversation {request.conversation_id!r} is already running outside this plan"
        task.conversation_started = True
        return None

    def _conclude(self, task: TaskStatus, outcome: TaskOutcome, done: TurnDone | None) -> None:
        if done is not None:
            task.usage = task.usage + done.usage
        if outcome == TaskOutcome.SUCCEEDED and done is not None:
            task.state, task.result, task.result_chars, task.reply_seq = (TaskState.SUCCEEDED, done.reply,
                                                                          done.reply_chars, done.reply_seq)  # fmt: skip
        elif outcome == TaskOutcome.CANCELLED:
            task.state = TaskState.CANCELLED
        elif self._retryable(task, outcome, done):
            task.state = TaskState.RETRY_WAIT
            task.retry_at = workflow.now() + timedelta(seconds=task.spec.retry.delay_s(task.attempts))
            self._timers.append(asyncio.create_task(self._retry_when_due(task)))
            return
        else:
            task.state = TaskState.FAILED
            if self._input.settings.on_failure == OnFailure.FAIL_PLAN:
                self._failed = f"task {task.spec.id!r} failed: {task.error}"
        self._end_conversation(task, f"task {task.state.value}")

    def _retryable(self, task: TaskStatus, outcome: TaskOutcome, done: TurnDone | None) -> bool:
        final = done is not None and done.outcome in FINAL_TURN_OUTCOMES
        return not final and not self._ended and task.attempts < task.spec.retry.max_attempts and outcome in (
            TaskOutcome.FAILED, TaskOutcome.TIMED_OUT)

    async def _retry_when_due(self, task: TaskStatus) -> None:
        assert task.retry_at is not None
        delay = (task.retry_at - workflow.now()).total_seconds()
        if delay > 0:
            await workflow.sleep(delay)
        if task.state == TaskState.RETRY_WAIT:
            task.state, task.ready_at = TaskState.READY, workflow.now()
            self._dirty = True

    def _end_conversation(self, task: TaskStatus, why: str) -> None:
        if task.conversation_started:
            self._signals.send(self._conversation(task.spec.id), ConversationWorkflow.end,
                               End(reason=f"plan {self._carried.plan_id}: {why}"))  # fmt: skip

    def _conversation(self, task_id: str) -> str:
        return conversation_workflow_id(task_conversation_id(self._carried.plan_id, task_id))

    def _task(self, task_id: str) -> TaskStatus:
        return next(t for t in self._carried.tasks if t.spec.id == task_id)

    # --- records, state -----------------------------------------------------------------------

    async def _record(self, record: TaskRunRecord) -> None:
        await self._local.run(PlanActivities.record_run, record, summary=f"task_runs {record.task_id}", config=STORE_LOCAL)

    def _record_later(self, record: TaskRunRecord) -> None:
        self._writes.append(asyncio.create_task(self._record(record)))

    def _plan_state(self) -> PlanState:
        if self._failed or self._invalid:
            return PlanState.FAILED
        if self._ended:
            return PlanState.ENDED
        if self._over or self._all_finished():
            return PlanState.SUCCEEDED
        return PlanState.PAUSED if self._carried.paused else PlanState.RUNNING

    def _set_state(self) -> None:
        state = self._plan_state()
        if state != self._state:
            self._state = state
            workflow.upsert_search_attributes([search_attributes.STATE.value_set(state.value)])
        workflow.set_current_details(self._describe())

    def _describe(self) -> str:
        return describe(self._plan_state(), self._carried, self._ended or self._failed or self._invalid)

    # --- updates ------------------------------------------------------------------------------

    @workflow.update
    async def add_tasks(self, request: AddTasks) -> PlanProgress:
        """New tasks join the graph (they may depend on any task); their agents are checked first,
        and a refusal leaves the plan as it was."""
        checked = await self._local.run(PlanActivities.check, CheckTasks(tasks=request.tasks),
                                        summary="check the added tasks", config=STORE_LOCAL)  # fmt: skip
        if checked.refused:
            why = "; ".join(f"task {task!r}: {reason}" for task, reason in checked.refused.items())
            raise ApplicationError(f"tasks not added: {why}", type="InvalidPlan")
        self._validate_add(request)  # again: another update may have added the same ids meanwhile
        self._carried.tasks += [TaskStatus(spec=spec) for spec in request.tasks]
        self._dirty = True
        return self.progress()

    @add_tasks.validator
    def _validate_add(self, request: AddTasks) -> None:
        self._refuse_if_over()
        errors = graph_errors(request.tasks, {t.spec.id: t.spec.depends_on for t in self._carried.tasks},
                              sum(spec_bytes(t.spec) for t in self._carried.tasks))
        if errors:
            raise ApplicationError(f"tasks not added: {'; '.join(errors)}", type="InvalidPlan")

    @workflow.update
    def cancel_task(self, request: CancelTask) -> TaskStatus:
        """A task not started yet is cancelled at once; a running one is stopped (its conversation
        ended). Its dependents are skipped, like a failed task's."""
        task = self._task(request.task_id)
        why = f"cancelled: {request.reason}" if request.reason else "cancelled"
        if request.task_id in self._running:
            self._cancelled[request.task_id] = why
        else:
            task.state, task.error, task.ended_at = TaskState.CANCELLED, why, workflow.now()
            self._record_later(TaskRunRecord(plan_id=self._carried.plan_id, task_id=task.spec.id, at=task.ended_at,
                                             attempt=max(1, task.attempts), outcome=TaskOutcome.CANCELLED))  # fmt: skip
            self._end_conversation(task, why)
        self._dirty = True
        return task

    @cancel_task.validator
    def _validate_cancel(self, request: CancelTask) -> None:
        self._refuse_if_over()
        task = self._known(request.task_id)
        if task.state.finished or request.task_id in self._cancelled:
            raise ApplicationError(f"task {request.task_id!r} is already {task.state.value}", type="TaskFinished")

    @workflow.update
    def reprioritise(self, request: Reprioritise) -> TaskStatus:
        task = self._task(request.task_id)
        task.spec = task.spec.model_copy(update={"priority": request.priority})
        self._dirty = True
        return task

    @reprioritise.validator
    def _validate_reprioritise(self, request: Reprioritise) -> None:
        self._refuse_if_over()
        task = self._known(request.task_id)
        if task.state not in (TaskState.WAITING, TaskState.READY, TaskState.RETRY_WAIT):
            raise ApplicationError(f"task {request.task_id!r} is {task.state.value}: only tasks not started can be "
                                   "reprioritised", type="TaskStarted")  # fmt: skip

    def _refuse_if_over(self) -> None:
        if self._over or self._ended or self._failed:
            raise ApplicationError(f"plan {self._carried.plan_id} is over ({self._ended or self._failed or 'done'})",
                                   type="PlanOver")  # fmt: skip

    def _known(self, task_id: str) -> TaskStatus:
        task = next((t for t in self._carried.tasks if t.spec.id == task_id), None)
        if task is None:
            known = ", ".join(t.spec.id for t in self._carried.tasks)
            raise ApplicationError(f"plan {self._carried.plan_id} has no task {task_id!r} (tasks: {known})",
                                   type="UnknownTask")  # fmt: skip
        return task

    # --- signals ------------------------------------------------------------------------------

    @workflow.signal
    def task_done(self, done: TurnDone) -> None:
        if done.request_id in self._asked:
            self._done[done.request_id] = done
        else:
            workflow.logger.info("report on request %s ignored: no attempt waits for it", done.request_id)

    @workflow.signal
    def task_progress(self, note: TurnProgressNote) -> None:
        task_id = self._asked.get(note.request_id)
        if task_id is None:
            return
        task = self._task(task_id)
        waiting = note.state == ConversationState.AWAITING_APPROVAL
        task.state = TaskState.AWAITING_APPROVAL if waiting else TaskState.RUNNING
        task.waiting_calls = [call.tool for call in note.waiting]
        self._set_state()

    @workflow.signal
    def pause(self, signal: Pause | None = None) -> None:
        """No task starts until ``resume``; the running ones' conversations pause at their next step."""
        self._carried.paused = True
        self._carried.pause_reason = (signal.reason if signal else "") or None
        for task_id in self._running:
            if self._task(task_id).conversation_started:
                self._signals.send(self._conversation(task_id), ConversationWorkflow.pause,
                                   Pause(reason=f"plan {self._carried.plan_id} paused"))  # fmt: skip
        self._dirty = True
        self._set_state()

    @workflow.signal
    def resume(self) -> None:
        self._carried.paused, self._carried.pause_reason = False, None
        for task_id in self._running:
            if self._task(task_id).conversation_started:
                self._signals.send(self._conversation(task_id), ConversationWorkflow.resume)
        self._dirty = True
        self._set_state()

    @workflow.signal
    def sub_plan_started(self, started: SubPlanStarted) -> None:
        """A plan one of its tasks created (``create_plan``): ended with this one. One that starts
        after this plan was stopped is ended at once."""
        if started.plan_id in self._carried.sub_plans:
            return
        self._carried.sub_plans = [*self._carried.sub_plans, started.plan_id][-MAX_SUB_PLANS:]
        if self._over and (self._ended or self._failed):
            self._end_sub_plan(started.plan_id, self._ended or self._failed or "")

    def _end_sub_plan(self, plan_id: str, reason: str) -> None:
        why = f"its parent plan {self._carried.plan_id} stopped: {reason}"[:500]
        self._signals.send(plan_workflow_id(plan_id), "end", End(reason=why))

    @workflow.signal
    def end(self, signal: End | None = None) -> None:
        """Stops the plan: running tasks are cancelled (their conversations ended), the rest skipped."""
        self._ended = (signal.reason if signal else "") or "ended by operator"

    # --- queries ------------------------------------------------------------------------------

    @workflow.query
    def progress(self) -> PlanProgress:
        return PlanProgress(
            plan_id=self._carried.plan_id, title=self._input.title, state=self._plan_state(), details=self._describe(),
            max_parallel=self._carried.max_parallel, most_parallel=self._carried.most_parallel, depth=self._input.depth,
            settings=self._input.settings,
            paused=self._carried.paused, pause_reason=self._carried.pause_reason, counts=counts(self._carried.tasks),
            tasks=self._carried.tasks, ended_reason=self._ended or self._failed or self._invalid,
        )  # fmt: skip
