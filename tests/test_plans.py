"""Task plans on the real dev server: a real worker runs ``TaskPlanWorkflow`` and each task's
conversation; the fake model answers as each task (``tests/plan_support.py``)."""

from __future__ import annotations

from sqlmodel import Session, select

from models.plan import PlanState, TaskState
from models.task_runs import TaskOutcome
from store.task_runs import TaskRun
from tests.plan_support import TaskModel, plan_input, plans_of, task


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
