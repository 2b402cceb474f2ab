"""A plan survives its worker: a worker process killed while a task's model call runs, and a new
one finishing the plan — every task answered once, one ``task_runs`` row per attempt."""

from __future__ import annotations

import asyncio

from sqlmodel import Session, select

from models.plan import PlanState, TaskState, task_conversation_id
from store.task_runs import TaskRun
from tests.fakes.ollama import Reply
from tests.plan_support import TaskModel, plan_input, plans_of, task
from tests.test_conversation import wait_for
from tests.test_durability import WorkerProcess, _daemon_without_worker, _true


async def test_a_worker_killed_mid_plan_loses_nothing_and_repeats_no_task(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    model = TaskModel(fake_ollama)
    model.script("b", Reply(content="the first attempt never finishes", delay_s=30))
    first = WorkerProcess(daemon.env(), tmp_path / "worker-1.log")
    second = None
    try:
        request = plan_input(task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"))
        plan = await plans_of(daemon).start(request)
        await wait_for(lambda: _true("b" in model.asked and "c" in model.asked), timeout=60)
        await asyncio.sleep(0.5)  # c's answer reaches its conversation and the plan
        first.kill()
        second = WorkerProcess(daemon.env(), tmp_path / "worker-2.log")
        summary = await asyncio.wait_for(plan.result(), timeout=120)
    finally:
        for worker in (first, second):
            if worker:
                worker.close()
    assert summary.state == PlanState.SUCCEEDED
    assert [(t.spec.id, t.state, t.attempts) for t in summary.tasks] == [(x, TaskState.SUCCEEDED, 1) for x in "abcd"]
    assert sorted(model.asked) == ["a", "b", "b", "c", "d"], "only the interrupted model call was made again"
    assert summary.tasks[1].result == "result of b"
    for task_id in "abcd":
        roles = [m.role for m in daemon.store.list_messages(task_conversation_id(request.plan_id, task_id))]
        assert roles == ["user", "assistant"], f"task {task_id} answered once: {roles}"
    with Session(daemon.store.engine) as session:
        rows = list(session.exec(select(TaskRun).where(TaskRun.plan_id == request.plan_id)))
    assert sorted((r.task_id, r.attempt, r.outcome) for r in rows) == [(x, 1, "succeeded") for x in "abcd"]
