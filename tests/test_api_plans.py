"""Task plans over real HTTP: a ``daemonflow api`` process, a real worker, the real dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.ollama import Reply, echo_responder
from tests.fixtures.api import ApiStack
from tests.plan_support import TaskModel
from tests.test_api import new_id, problem, until


@pytest.fixture
async def plans_api(api: ApiStack) -> AsyncIterator[ApiStack]:
    """The shared API stack, its fake answering as each task; the default responder back after."""
    yield api
    api.ollama.responder = echo_responder


async def test_a_plan_from_creation_to_its_end_over_http(plans_api: ApiStack) -> None:
    api = plans_api
    model = TaskModel(api.ollama)
    http = api.http("operator")
    plan_id = new_id("plan")
    body = {"plan_id": plan_id, "title": "release", "settings": {"max_parallel": 2},
            "tasks": [{"id": "build", "prompt": "build it"}, {"id": "test", "prompt": "test it", "depends_on": ["build"]},
                      {"id": "deploy", "prompt": "ship it", "depends_on": ["test"], "priority": "high"}]}  # fmt: skip
    created = await http.post("/plans", json=body)
    assert created.status_code == 201, created.text
    assert created.json() == {"plan_id": plan_id, "workflow_id": f"plan-{plan_id}"}
    assert created.headers["location"] == f"/plans/{plan_id}"
    problem(await http.post("/plans", json=body), 409, "plan-exists")

    added = await http.post(f"/plans/{plan_id}/tasks", json={"tasks": [{"id": "notes", "prompt": "write notes"}]})
    assert added.status_code in (200, 409), added.text  # 409 plan-over if it already finished (fast fake)

    async def finished():
        detail = (await http.get(f"/plans/{plan_id}")).json()
        return detail if detail["progress"]["state"] == "succeeded" else None

    detail = await until(finished, timeout=60)
    tasks = {t["spec"]["id"]: t for t in detail["progress"]["tasks"]}
    assert [tasks[x]["state"] for x in ("build", "test", "deploy")] == ["succeeded"] * 3
    assert tasks["test"]["result"] == "result of test" and tasks["deploy"]["spec"]["depends_on"] == ["test"]
    assert "- test (test): result of test" in model.prompts["deploy"][0]
    assert detail["progress"]["state"] == "succeeded" and detail["progress"]["max_parallel"] == 2
    listed = (await api.http("viewer").get("/plans")).json()["plans"]
    assert any(p["plan_id"] == plan_id and p["state"] == "succeeded" for p in listed)
    problem(await http.post(f"/plans/{plan_id}/pause", json={}), 409, "plan-over")


async def test_bad_plans_and_changes_are_refused_with_a_useful_problem(plans_api: ApiStack) -> None:
    api = plans_api
    model = TaskModel(api.ollama)
    http = api.http("operator")
    cycle = await http.post("/plans", json={"tasks": [{"id": "a", "prompt": "x", "depends_on": ["b"]},
                                                      {"id": "b", "prompt": "y", "depends_on": ["a"]}]})  # fmt: skip
    assert "dependency cycle: a → b → a" in problem(cycle, 422, "plan-invalid")["detail"]
    unknown = await http.post("/plans", json={"tasks": [{"id": "a", "prompt": "x", "agent": "nobody"}]})
    assert "'nobody'" in problem(unknown, 422, "unknown-agent")["detail"]
    policy = await http.post("/plans", json={"tasks": [{"id": "a", "prompt": "x"}], "settings": {"policy": [{}]}})
    problem(policy, 403, "forbidden")
    problem(await http.post("/plans", json={"tasks": []}), 422)
    problem(await http.get("/plans/nope-1"), 404, "plan-not-found")

    model.script("slow", Reply(content="late", delay_s=5))
    plan_id = new_id("plan")
    body = {"plan_id": plan_id, "settings": {"max_parallel": 1},
            "tasks": [{"id": "slow", "prompt": "wait"}, {"id": "later", "prompt": "then", "priority": "low"}]}
    assert (await http.post("/plans", json=body)).status_code == 201
    duplicate = await http.post(f"/plans/{plan_id}/tasks", json={"tasks": [{"id": "slow", "prompt": "again"}]})
    assert "duplicate task id 'slow'" in problem(duplicate, 422, "plan-invalid")["detail"]
    problem(await http.post(f"/plans/{plan_id}/cancel", json={"task_id": "ghost"}), 404, "task-not-found")
    moved = await http.post(f"/plans/{plan_id}/tasks/later/priority", json={"priority": "critical"})
    assert moved.status_code == 200 and moved.json()["spec"]["priority"] == "critical"
    cancelled = await http.post(f"/plans/{plan_id}/cancel", json={"task_id": "later", "reason": "not needed"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    problem(await http.post(f"/plans/{plan_id}/cancel", json={"task_id": "later"}), 409, "task-not-changeable")
    assert (await http.post(f"/plans/{plan_id}/pause", json={"reason": "hold"})).status_code == 202
    assert (await http.post(f"/plans/{plan_id}/resume")).status_code == 202
    ended = await http.post(f"/plans/{plan_id}/cancel", json={"reason": "stop"})
    assert ended.status_code == 200 and ended.json() == {"plan_id": plan_id, "signal": "end"}

    async def stopped():
        detail = (await http.get(f"/plans/{plan_id}")).json()
        return detail if detail["execution"] == "completed" else None

    detail = await until(stopped, timeout=60)
    assert detail["progress"]["state"] == "ended" and detail["progress"]["ended_reason"] == "stop"
