"""The plan's pure rules (``workflows/plan_graph.py``, ``plan_prompts.py``, ``plan_view.py``):
validation, readiness, what a failure skips, the order ready tasks start in, the prompt, the line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.plan import (
    MAX_PROMPT_CHARS,
    MAX_TASKS_BYTES,
    CarriedPlan,
    PlanInput,
    PlanState,
    RetrySpec,
    TaskSpec,
    TaskState,
    TaskStatus,
    plan_of_conversation,
    task_conversation_id,
)
from workflows.plan_graph import (
    blocked,
    chain_lengths,
    find_cycle,
    graph_errors,
    newly_ready,
    spec_bytes,
    start_order,
)
from workflows.plan_prompts import task_prompt
from workflows.plan_view import describe


def spec(task_id: str, *deps: str, **fields) -> TaskSpec:
    return TaskSpec(id=task_id, prompt=f"do {task_id}", depends_on=list(deps), **fields)


def status(task_id: str, *deps: str, state: TaskState = TaskState.WAITING, **fields) -> TaskStatus:
    return TaskStatus(spec=spec(task_id, *deps, **fields), state=state)


def test_a_dag_has_no_errors_and_every_mistake_is_named():
    assert graph_errors([spec("a"), spec("b", "a"), spec("c", "a"), spec("d", "b", "c")]) == []
    errors = graph_errors([spec("a", "c"), spec("b", "a"), spec("c", "b"), spec("a"), spec("e", "e", "zz")])
    assert errors == [
        "duplicate task id 'a'",
        "task 'e' depends on unknown task(s): 'zz'",
        "task 'e' depends on itself",
        "dependency cycle: a → b → c → a (each task waits for the one before it)",
    ]


def test_added_tasks_are_checked_against_the_plans_tasks():
    existing = {"a": [], "b": ["a"]}
    assert graph_errors([spec("c", "b")], existing) == []
    assert graph_errors([spec("b")], existing) == ["duplicate task id 'b'"]
    assert graph_errors([spec("x", "y"), spec("y", "x")], existing)[-1].startswith("dependency cycle: x → y → x")


def test_a_plan_too_large_together_is_refused_whole_and_when_tasks_are_added():
    def long(task_id: str, text: str = "x" * MAX_PROMPT_CHARS) -> TaskSpec:  # each prompt within its own limit
        return TaskSpec(id=task_id, prompt=text)

    fitting = MAX_TASKS_BYTES // spec_bytes(long("t00"))
    assert graph_errors([long(f"t{i:02}") for i in range(fitting)]) == []
    [error] = graph_errors([long(f"t{i:02}") for i in range(fitting + 1)])
    assert error.startswith(f"a plan's tasks take at most {MAX_TASKS_BYTES // 1024} KiB together")
    assert "put long material in a file" in error
    # three bytes a character in UTF-8: a third as many fit
    assert spec_bytes(long("w", "語" * MAX_PROMPT_CHARS)) > 3 * MAX_PROMPT_CHARS
    assert graph_errors([long("c")], {"a": []}, existing_bytes=MAX_TASKS_BYTES - 10)[0].startswith(
        "a plan's tasks take at most")


def test_the_cycle_found_is_the_same_for_the_same_graph():
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["d"]}
    assert find_cycle(edges) == ["a", "b", "c", "a"] == find_cycle(dict(edges))
    assert find_cycle({"a": [], "b": ["a"]}) is None


def test_ids_cannot_hold_the_separator_and_a_task_needs_something_to_do():
    with pytest.raises(ValidationError, match="holds '--'"):
        spec("a--b")
    with pytest.raises(ValidationError, match="nothing to do"):
        TaskSpec(id="a")
    with pytest.raises(ValidationError):
        PlanInput(tasks=[])
    assert plan_of_conversation(task_conversation_id("p1", "build")) == "p1"
    assert plan_of_conversation("chat-1") is None


def test_ready_and_blocked_follow_the_dependencies():
    tasks = [status("a", state=TaskState.SUCCEEDED), status("b", "a"), status("c", "x"), status("x", state=TaskState.FAILED),
             status("d", "c"), status("e", "b")]  # fmt: skip
    assert newly_ready(tasks) == ["b"]
    assert blocked(tasks) == {"c": "dependency 'x' failed", "d": "dependency 'c' was skipped"}


def test_ready_tasks_start_by_priority_then_chain_then_estimate_then_plan_order():
    tasks = [
        status("y", state=TaskState.READY, priority="low", estimate_s=1),
        status("x", state=TaskState.READY, estimate_s=10),
        status("a", state=TaskState.READY, estimate_s=90), status("b", "a"), status("c", "b"),
        status("w", state=TaskState.READY, estimate_s=5), status("w2", state=TaskState.READY, estimate_s=5),
        status("z", state=TaskState.READY, priority="critical", estimate_s=100),
    ]
    assert chain_lengths(tasks)["a"] == 3 and chain_lengths(tasks)["x"] == 1
    assert start_order(tasks) == ["z", "a", "w", "w2", "x", "y"]


def test_back_off_grows_exponentially_up_to_its_ceiling():
    retry = RetrySpec(initial_interval_s=2, backoff_coefficient=3, max_interval_s=30)
    assert [retry.delay_s(n) for n in (1, 2, 3, 4)] == [2, 6, 18, 30]


def test_a_prompt_carries_the_task_and_bounded_results_of_its_dependencies():
    done = TaskStatus(spec=spec("build", title="Build"), state=TaskState.SUCCEEDED, result="x" * 500, result_chars=900,
                      reply_seq=4)  # fmt: skip
    text = task_prompt("p1", "release", spec("test", "build", tool={"name": "run_tests", "arguments": {"path": "t"}}), [done])
    assert text.startswith("[plan p1 — release] task test: test\n\ndo test")
    assert 'Call the tool `run_tests` exactly once, with exactly these arguments: {"path": "t"}' in text
    assert f"- build (Build): {'x' * 500} … (whole reply: conversation plan-p1--build, message 4)" in text


def test_the_details_line_reads_like_the_web_ui_shows_it():
    tasks = [status(t, state=TaskState.SUCCEEDED) for t in ("a", "b", "c", "d")]
    tasks += [status("build", state=TaskState.RUNNING), status("test", state=TaskState.RUNNING),
              status("deploy", "build"), status("e", state=TaskState.READY), status("f", state=TaskState.FAILED)]
    plan = CarriedPlan(plan_id="p", tasks=tasks, max_parallel=3)
    assert describe(PlanState.RUNNING, plan, None) == "5/9 done · running: build, test · waiting: deploy, e"
    plan.paused, plan.pause_reason = True, "lunch"
    assert describe(PlanState.PAUSED, plan, None).startswith("paused: lunch · 5/9 done")
    assert describe(PlanState.ENDED, plan, "stop") == "ended: stop · 5/9 done · not done: f"
