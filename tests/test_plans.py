"""Task plans on the real dev server: a real worker runs ``TaskPlanWorkflow`` and each task's
conversation; the fake model answers as each task (``tests/plan_support.py``)."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from control.conversations import Conversations
from control.errors import ControlError
from control.plan_errors import PlanInvalid, PlanNotFound, PlanOver, TaskNotChangeable, TaskNotFound
from models.conversation import Approve
from models.plan import (
    MAX_PROMPT_CHARS,
    MAX_TASKS_BYTES,
    AddTasks,
    PlanState,
    Priority,
    TaskState,
    plan_workflow_id,
    task_conversation_id,
)
from models.task_runs import TaskOutcome
from store.task_runs import TaskRun
from tests.fakes.ollama import Reply, ToolCall
from tests.plan_support import TaskModel, plan_id, plan_input, plans_of, task
from tests.test_conversation import wait_for
from workflows.failures import failure_message, failure_type


def runs_of(daemon, plan_id: str) -> list[TaskRun]:
    with Session(daemon.store.engine) as session:
        return list(session.exec(select(TaskRun).where(TaskRun.plan_id == plan_id).order_by(TaskRun.id)))


async def test_a_diamond_runs_each_task_once_after_its_dependencies_with_their_results(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    request = plan_input(task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"), title="diamond")
    plan = await plans_of(daemon).start(request)
    summary = await plan.result()

    assert summary.state == PlanState.SUCCEEDED
    assert [t.state for t in summary.tasks] == [TaskState.SUCCEEDED] * 4
    assert model.asked[0] == "a" and set(model.asked[1:3]) == {"b", "c"} and model.asked[3] == "d"
    assert [t.result for t in summary.tasks] == [f"result of {x}" for x in "abcd"]
    prompt_d = model.prompts["d"][0]
    assert "- b (b): result of b" in prompt_d and "- c (c): result of c" in prompt_d and "do d" in prompt_d
    assert "result of a" not in prompt_d, "only direct dependencies' results are passed"
    rows = runs_of(daemon, request.plan_id)
    assert sorted((r.task_id, r.attempt, r.outcome) for r in rows) == [(x, 1, TaskOutcome.SUCCEEDED.value) for x in "abcd"]
    by_task = {r.task_id: r for r in rows}
    assert by_task["d"].ready_at >= max(by_task["b"].ended_at, by_task["c"].ended_at)
    assert all(r.started_at >= r.ready_at and r.max_parallel == 3 and r.agent == "assistant" for r in rows)
    progress = await plan.progress()
    assert progress.details.startswith("succeeded") and "4/4 done" in progress.details


def most_at_once(rows: list[TaskRun]) -> int:
    """The most task runs that overlapped in time, from their rows alone."""
    edges = sorted([(r.started_at, 1) for r in rows] + [(r.ended_at, -1) for r in rows], key=lambda e: (e[0], e[1]))
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


async def test_ready_tasks_start_by_priority_then_longest_chain_then_estimate(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    request = plan_input(
        task("y", priority="low", estimate_s=1), task("x", estimate_s=10), task("a", estimate_s=90),
        task("b", "a", estimate_s=90), task("c", "b", estimate_s=60), task("w", estimate_s=5),
        task("z", priority="critical", estimate_s=100), max_parallel=1,
    )  # fmt: skip
    summary = await (await plans_of(daemon).start(request)).result()
    assert summary.state == PlanState.SUCCEEDED and summary.most_parallel == 1
    # z critical; a heads the longest chain (a→b→c); then b (chain of 2); w, x, c by estimate; y low.
    assert model.asked == ["z", "a", "b", "w", "x", "c", "y"]


async def test_at_most_max_parallel_tasks_run_at_once_and_the_highest_priorities_go_first(daemon, fake_ollama):
    model = TaskModel(fake_ollama, delay_s=0.6)
    tasks = [task(f"t{i}") for i in range(5)] + [task("h1", priority="high"), task("h2", priority="critical")]
    request = plan_input(*tasks, max_parallel=2)
    summary = await (await plans_of(daemon).start(request)).result()
    assert summary.state == PlanState.SUCCEEDED and summary.most_parallel == 2
    assert set(model.asked[:2]) == {"h2", "h1"}, "both started together, before every normal task"
    rows = runs_of(daemon, request.plan_id)
    assert len(rows) == 7 and most_at_once(rows) == 2 and all(r.max_parallel == 2 for r in rows)

    default = plan_input(*[task(f"t{i}") for i in range(5)])  # the worker's DAEMONFLOW_PLAN_MAX_PARALLEL, 3
    summary = await (await plans_of(daemon).start(default)).result()
    assert summary.most_parallel == 3 and most_at_once(runs_of(daemon, default.plan_id)) == 3


async def test_a_failed_attempt_is_retried_after_its_back_off(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    refused = Reply(error="the model refused this request", status=400)
    model.script("r", refused, refused)
    retry = {"max_attempts": 3, "initial_interval_s": 0.3, "backoff_coefficient": 2.0}
    request = plan_input(task("r", retry=retry), task("after", "r"))
    summary = await (await plans_of(daemon).start(request)).result()
    r, after = summary.tasks
    assert (r.state, r.attempts, r.result) == (TaskState.SUCCEEDED, 3, "result of r")
    assert after.state == TaskState.SUCCEEDED and model.asked == ["r", "r", "r", "after"]
    rows = [row for row in runs_of(daemon, request.plan_id) if row.task_id == "r"]
    assert [(row.attempt, row.outcome) for row in rows] == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    # The back-off is durable timers of 0.3 s then 0.6 s in the plan's history (what it waited is not
    # asserted: timings belong in bench/).
    history = await daemon.client.get_workflow_handle(plan_workflow_id(request.plan_id)).fetch_history()
    timers = [e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
              for e in history.events if e.HasField("timer_started_event_attributes")]  # fmt: skip
    assert [t for t in timers if t < 1] == [0.3, 0.6], f"exponential back-off: {timers}"


async def test_a_task_that_fails_for_good_skips_its_dependents_with_the_reason(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    model.script("f", Reply(error="no such thing", status=400))
    request = plan_input(task("f", retry={"max_attempts": 1}), task("g", "f"), task("h", "g"), task("i"))
    summary = await (await plans_of(daemon).start(request)).result()
    states = {t.spec.id: (t.state, t.error) for t in summary.tasks}
    assert states["f"][0] == TaskState.FAILED and "no such thing" in states["f"][1]
    assert states["g"] == (TaskState.SKIPPED, "dependency 'f' failed")
    assert states["h"] == (TaskState.SKIPPED, "dependency 'g' was skipped")
    assert states["i"][0] == TaskState.SUCCEEDED and summary.state == PlanState.SUCCEEDED
    assert summary.counts["failed"] == 1 and summary.counts["skipped"] == 2 and "g" not in model.asked
    rows = {(r.task_id, r.outcome) for r in runs_of(daemon, request.plan_id)}
    assert rows == {("f", "failed"), ("g", "skipped"), ("h", "skipped"), ("i", "succeeded")}


async def wait_progress(plan, condition, timeout: float = 30.0):
    return await wait_for(lambda: _progress_if(plan, condition), timeout=timeout)


async def _progress_if(plan, condition):
    progress = await plan.progress()
    return progress if condition(progress) else None


def state_of(progress, task_id: str) -> TaskState:
    return next(t.state for t in progress.tasks if t.spec.id == task_id)


async def test_a_cycle_is_refused_before_starting_and_fails_a_plan_started_anyway(daemon, fake_ollama):
    TaskModel(fake_ollama)
    cyclic = plan_input(task("a", "c"), task("b", "a"), task("c", "b"), task("d", "zz"))
    with pytest.raises(PlanInvalid) as refused:
        await plans_of(daemon).start(cyclic)
    assert "dependency cycle: a → b → c → a (each task waits for the one before it)" in str(refused.value)
    assert "task 'd' depends on unknown task(s): 'zz'" in str(refused.value)
    with pytest.raises(PlanNotFound):
        await plans_of(daemon).find(cyclic.plan_id)

    # As the plain `temporal workflow start` would: no client check, the workflow refuses it at once.
    handle = await daemon.client.start_workflow("TaskPlanWorkflow", cyclic.model_dump(mode="json"),
                                                id=plan_workflow_id(cyclic.plan_id), task_queue=daemon.task_queue)  # fmt: skip
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert failure_type(failed.value.cause) == "InvalidPlan"
    assert "dependency cycle: a → b → c → a" in failure_message(failed.value.cause)
    duplicate = plan_input(task("a"), task("a"), task("b", agent="nobody"))
    with pytest.raises(PlanInvalid, match="duplicate task id 'a'"):
        await plans_of(daemon).start(duplicate)
    unknown_agent = plan_input(task("a"), task("b", agent="nobody"))
    plan = await plans_of(daemon).start(unknown_agent)
    with pytest.raises(ControlError, match="task 'b': unknown agent template 'nobody'"):
        await plan.result()


async def test_a_plan_too_large_is_refused_and_one_that_fits_carries_its_tasks_once_through_continue_as_new(
        daemon, fake_ollama):
    TaskModel(fake_ollama)
    long = "x" * MAX_PROMPT_CHARS
    too_large = plan_input(*(task(f"t{i:03}", prompt=long) for i in range(MAX_TASKS_BYTES // len(long) + 1)))
    with pytest.raises(PlanInvalid, match=f"a plan's tasks take at most {MAX_TASKS_BYTES // 1024} KiB together"):
        await plans_of(daemon).start(too_large)
    # As the plain `temporal workflow start` would: the workflow refuses it at once.
    handle = await daemon.client.start_workflow("TaskPlanWorkflow", too_large.model_dump(mode="json"),
                                                id=plan_workflow_id(too_large.plan_id), task_queue=daemon.task_queue)  # fmt: skip
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert failure_type(failed.value.cause) == "InvalidPlan"

    plan = await plans_of(daemon).start(plan_input(*(task(f"t{i}", prompt=long) for i in range(6)), tasks_per_run=2))
    first_run = (await daemon.client.get_workflow_handle(plan.workflow_id).describe()).run_id
    assert (await plan.result()).state == "succeeded"
    runs = [daemon.client.get_workflow_handle(plan.workflow_id, run_id=first_run),
            daemon.client.get_workflow_handle(plan.workflow_id)]
    inputs = [len((await run.fetch_history()).events[0].workflow_execution_started_event_attributes.input.payloads[0].data)
              for run in runs]  # fmt: skip
    # the continued run carries the six prompts in its state, and only one of them again in its input
    assert inputs[1] < inputs[0] * 1.5, inputs


async def test_tasks_added_while_the_plan_runs_join_the_graph_and_bad_additions_are_refused(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    model.script("a", Reply(content="result of a", delay_s=1.5))
    plan = await plans_of(daemon).start(plan_input(task("a")))
    await wait_progress(plan, lambda p: state_of(p, "a") == TaskState.RUNNING)
    for bad, why in [([task("a")], "duplicate task id 'a'"), ([task("x", "nope")], "unknown task(s): 'nope'"),
                     ([task("x", "y"), task("y", "x")], "dependency cycle: x → y → x"),
                     ([task("x", agent="nobody")], "unknown agent template 'nobody'")]:  # fmt: skip
        with pytest.raises(PlanInvalid, match=re.escape(why)):
            await plan.add_tasks(AddTasks(tasks=bad))
    progress = await plan.add_tasks(AddTasks(tasks=[task("b", "a"), task("c")]))
    assert [t.spec.id for t in progress.tasks] == ["a", "b", "c"]
    summary = await plan.result()
    assert [t.state for t in summary.tasks] == [TaskState.SUCCEEDED] * 3
    assert "- a (a): result of a" in model.prompts["b"][0]
    with pytest.raises(PlanOver):
        await plan.add_tasks(AddTasks(tasks=[task("late")]))


async def test_pause_holds_new_tasks_until_resume(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    answer_a = model.hold("a")  # a's model answers once the plan is paused, whatever the machine's speed
    plan = await plans_of(daemon).start(plan_input(task("a"), task("b"), max_parallel=1))
    await wait_progress(plan, lambda p: state_of(p, "a") == TaskState.RUNNING)
    await wait_for(lambda: _asked(model, "a"))  # its turn has begun: a pause holds its next step, not this one
    await plan.pause("lunch")
    await wait_progress(plan, lambda p: p.state == PlanState.PAUSED)
    answer_a.set()
    # The state that shows a done is the one in which b would have been started, had the plan run on.
    still = await wait_progress(plan, lambda p: state_of(p, "a") == TaskState.SUCCEEDED or p.counts["failed"])
    assert still.state == PlanState.PAUSED and still.details.startswith("paused: lunch · 1/2 done")
    assert state_of(still, "b") == TaskState.READY and "b" not in model.asked
    assert "waiting: b" in still.details
    await plan.resume()
    summary = await plan.result()
    assert [t.state for t in summary.tasks] == [TaskState.SUCCEEDED] * 2


async def _asked(model: TaskModel, task_id: str) -> bool:
    return task_id in model.asked


async def test_cancel_and_reprioritise_while_running(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    model.script("slow", Reply(content="never used", delay_s=3.0))
    request = plan_input(task("slow"), task("low1", priority="low"), task("low2", priority="low"),
                         task("after", "slow"), max_parallel=1)  # fmt: skip
    plan = await plans_of(daemon).start(request)
    await wait_progress(plan, lambda p: state_of(p, "slow") == TaskState.RUNNING)
    moved = await plan.reprioritise("low2", Priority.CRITICAL)
    assert moved.spec.priority == Priority.CRITICAL
    with pytest.raises(TaskNotChangeable):
        await plan.reprioritise("slow", Priority.LOW)
    with pytest.raises(TaskNotFound):
        await plan.cancel_task("ghost")
    cancelled = await plan.cancel_task("slow", "taking too long")
    summary = await plan.result()
    states = {t.spec.id: (t.state, t.error) for t in summary.tasks}
    assert cancelled.spec.id == "slow" and states["slow"] == (TaskState.CANCELLED, "cancelled: taking too long")
    assert states["after"] == (TaskState.SKIPPED, "dependency 'slow' cancelled")
    assert model.asked == ["slow", "low2", "low1"]
    conversation = await Conversations(daemon.client, daemon.task_queue).find(task_conversation_id(request.plan_id, "slow"))
    await wait_for(lambda: conversation_closed(conversation))
    rows = {(r.task_id, r.outcome) for r in runs_of(daemon, request.plan_id)}
    assert ("slow", "cancelled") in rows and ("after", "skipped") in rows


async def test_fail_plan_stops_everything_at_the_first_task_that_fails_for_good(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    model.script("bad", Reply(error="refused", status=400))
    model.script("long", Reply(content="never used", delay_s=3.0))
    request = plan_input(task("bad", retry={"max_attempts": 1}), task("long"), task("next", "long"),
                         on_failure="fail_plan")  # fmt: skip
    plan = await plans_of(daemon).start(request)
    with pytest.raises(ControlError, match="plan failed: task 'bad' failed"):
        await plan.result()
    progress = await plan.progress()
    states = {t.spec.id: t.state for t in progress.tasks}
    assert states == {"bad": TaskState.FAILED, "long": TaskState.CANCELLED, "next": TaskState.SKIPPED}
    assert progress.state == PlanState.FAILED


async def conversation_closed(conversation) -> bool:
    return (await conversation.describe()).status != WorkflowExecutionStatus.RUNNING


async def test_a_tool_task_goes_through_the_policy_and_waits_for_a_person(daemon, fake_ollama, docker_client):
    """A single tool call as a task: the agent makes it, the policy judges it in the task's own
    conversation (a write is allowed, a command asked), the plan shows who waits, a person approves
    from the conversation, the call runs in the task's real sandbox."""
    model = TaskModel(fake_ollama)
    write = {"name": "write_file", "arguments": {"path": "notes.txt", "content": "hello plan"}}
    echo = {"name": "run_command", "arguments": {"command": "echo from-the-plan"}}
    model.script("write", Reply(tool_calls=[ToolCall(**write)]))
    model.script("echo", Reply(tool_calls=[ToolCall(**echo)]))
    request = plan_input(task("write", agent="developer", prompt="", tool=write),
                         task("echo", "write", agent="developer", prompt="", tool=echo))  # fmt: skip
    plan = await plans_of(daemon).start(request)
    waiting = await wait_progress(plan, lambda p: state_of(p, "echo") == TaskState.AWAITING_APPROVAL, timeout=120)
    assert "awaiting approval: echo (run_command)" in waiting.details and state_of(waiting, "write") == TaskState.SUCCEEDED
    assert 'Call the tool `run_command` exactly once, with exactly these arguments: {"command": "echo from-the-plan"}' \
        in model.prompts["echo"][0]
    conversation = await Conversations(daemon.client, daemon.task_queue).find(task_conversation_id(request.plan_id, "echo"))
    pending = (await conversation.status()).pending_approvals[0]
    await conversation.decide(Approve(tool_call_id=pending.tool_call_id, decision="approve", approver="test"))
    summary = await asyncio.wait_for(plan.result(), timeout=120)
    assert [t.state for t in summary.tasks] == [TaskState.SUCCEEDED] * 2
    tools = {t: [m.content for m in daemon.store.list_messages(task_conversation_id(request.plan_id, t)) if m.role == "tool"]
             for t in ("write", "echo")}  # fmt: skip
    assert "from-the-plan" in tools["echo"][0] and len(tools["write"]) == 1


async def test_input_that_is_not_a_plan_fails_at_once_and_its_progress_says_why(daemon):
    handle = await daemon.client.start_workflow("TaskPlanWorkflow", {"tasks": [{"id": "a"}], "surprise": 1},
                                                id=plan_workflow_id(plan_id()), task_queue=daemon.task_queue)  # fmt: skip
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert failure_type(failed.value.cause) == "InvalidPlan"
    assert "nothing to do" in failure_message(failed.value.cause) and "surprise" in failure_message(failed.value.cause)
    progress = await (await plans_of(daemon).find(handle.id)).progress()
    assert progress.state == PlanState.FAILED and progress.tasks == [] and "invalid PlanInput" in progress.ended_reason


async def test_an_attempt_times_out_and_is_retried_but_not_while_the_plan_is_paused(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    model.script("t", Reply(content="too late", delay_s=2.5))
    model.script("held", Reply(content="worth the wait", delay_s=6.0))
    request = plan_input(task("t", timeout_s=1.5, retry={"max_attempts": 2, "initial_interval_s": 2}),
                         task("held", timeout_s=4, retry={"max_attempts": 1}), max_parallel=1)  # fmt: skip
    plan = await plans_of(daemon).start(request)
    # Paused once the model writes "held" (a pause before its call would hold the turn itself), and
    # within its 4 s timeout: the 6 s answer would time out but for the pause.
    await wait_for(lambda: _asked(model, "held"), timeout=60)
    await plan.pause("hold")
    paused = await wait_progress(plan, lambda p: state_of(p, "held").finished, timeout=30)
    held = next(t for t in paused.tasks if t.spec.id == "held")
    assert (held.state, held.attempts, held.result) == (TaskState.SUCCEEDED, 1, "worth the wait"), held.error
    assert state_of(paused, "t") in (TaskState.READY, TaskState.RETRY_WAIT) and paused.state == PlanState.PAUSED
    await plan.resume()
    t = (await plan.result()).tasks[0]
    assert (t.state, t.attempts, t.result) == (TaskState.SUCCEEDED, 2, "result of t")
    assert [r.outcome for r in runs_of(daemon, request.plan_id) if r.task_id == "t"] == ["timed_out", "succeeded"]


async def _asked(model: TaskModel, task_id: str) -> bool:
    return task_id in model.asked
