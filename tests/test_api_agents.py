"""Per-agent control, archives and the notification centre over real HTTP: a ``daemonflow api``
process, a real worker, the Temporal dev server and the fake Ollama (answering as each agent)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.channel_support import CODING, DATA, team_on
from tests.fakes.ollama import Reply, ToolCall, echo_responder, hashed_embedding
from tests.fixtures.api import ApiStack
from tests.test_api import new_id, problem, until


@pytest.fixture
async def team(api: ApiStack) -> AsyncIterator[ApiStack]:
    await team_on(api)
    yield api
    await api.http("admin").post("/agents/analyst/resume")  # never leave the shared stack's agent paused
    api.ollama.responder, api.ollama.embedder = echo_responder, hashed_embedding


async def status_of(http: httpx.AsyncClient, cid: str) -> dict:
    return (await http.get(f"/conversations/{cid}")).json()["status"]


async def test_pausing_an_agent_pauses_its_conversation_and_its_channel_seat_at_once(team: ApiStack) -> None:
    operator, viewer = team.http("operator"), team.http("viewer")
    own = new_id("own")
    assert (await operator.post("/conversations", json={"conversation_id": own, "agent": "analyst"})).status_code == 201
    channel = new_id("ch")
    created = await operator.post("/channels", json={"channel_id": channel, "agents": ["developer", "analyst"],
                                                     "people": ["alice"]})  # fmt: skip
    assert created.status_code == 201, created.text
    seat = f"{channel}--analyst"
    await until(lambda: _running(viewer, seat))

    problem(await viewer.post("/agents/analyst/pause"), 403, "forbidden")
    problem(await operator.post("/agents/nobody/pause"), 404, "unknown-agent")
    paused = (await operator.post("/agents/analyst/pause", json={"reason": "maintenance"})).json()
    reached = {c["conversation_id"]: c["channel"] for c in paused["conversations"] if c["error"] is None}
    assert reached[own] is None and reached[seat] == channel
    assert paused["paused"] and paused["reached"] >= 2 and paused["in_channels"] >= 1
    for cid in (own, seat):
        status = await until(lambda cid=cid: _paused(viewer, cid))
        assert status["pause_reason"] == "agent analyst paused: maintenance"
    developer = await status_of(viewer, f"{channel}--developer")
    assert not developer["paused"]  # only the paused agent

    # The channel goes on; the analyst's turn waits for the resume.
    posted = await operator.post(f"/channels/{channel}/posts", params={"wait": "false"}, json={"content": DATA})
    assert posted.status_code == 202, posted.text
    await until(lambda: _queued(viewer, seat, 1))  # asked, held by the pause
    assert await _post_done(viewer, channel, posted.json()["post_id"]) is None
    # A conversation of the paused agent that starts now starts paused.
    later = new_id("later")
    assert (await operator.post("/conversations", json={"conversation_id": later, "agent": "analyst"})).status_code == 201
    assert (await until(lambda: _paused(viewer, later)))["pause_reason"] == "agent analyst paused: maintenance"

    resumed = (await operator.post("/agents/analyst/resume")).json()
    assert not resumed["paused"] and {own, seat, later} <= {c["conversation_id"] for c in resumed["conversations"]}
    for cid in (own, seat, later):
        await until(lambda cid=cid: _not_paused(viewer, cid))
    post_id = posted.json()["post_id"]
    result = await until(lambda: _post_done(viewer, channel, post_id))
    assert result["spoke"] == ["analyst"]


async def test_a_priority_task_goes_to_the_agents_conversation_or_a_new_one(api: ApiStack) -> None:
    operator, viewer = api.http("operator"), api.http("viewer")
    cid = new_id("task")
    assert (await operator.post("/conversations", json={"conversation_id": cid, "agent": "moderator"})).status_code == 201
    task = await operator.post("/agents/moderator/tasks", json={"content": "check the release notes", "conversation_id": cid})
    assert task.status_code == 202, task.text
    assert task.json() == {"agent": "moderator", "conversation_id": cid, "delivered": "injected", "priority": "queue"}
    await until(lambda: _turns(viewer, cid, 1))
    messages = (await viewer.get(f"/conversations/{cid}/messages")).json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [("user", "check the release notes"),
                                                             ("assistant", "echo: check the release notes")]  # fmt: skip

    fresh = new_id("fresh")
    started = (await operator.post("/agents/moderator/tasks", json={"content": "triage", "conversation_id": fresh})).json()
    assert started["delivered"] == "started" and started["conversation_id"] == fresh
    await until(lambda: _turns(viewer, fresh, 1))
    assert (await viewer.get(f"/conversations/{fresh}")).json()["status"]["agent"] == "moderator"
    problem(await operator.post("/agents/moderator/tasks", json={"content": ""}), 422)


async def test_debug_and_notifications_show_what_waits_and_what_failed(api: ApiStack) -> None:
    operator, viewer = api.http("operator"), api.http("viewer")
    api.ollama.script(Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo needs a person"})]),
                      Reply(content="done"))  # fmt: skip
    cid = new_id("dbg")
    started = await operator.post("/conversations", params={"wait": "false"},
                                  json={"conversation_id": cid, "agent": "developer", "message": "run it"})  # fmt: skip
    assert started.status_code == 202, started.text
    note = await until(lambda: _notification(viewer, cid))
    assert note["kind"] == "approval" and note["title"] == "developer asks to run run_command"
    assert note["link"] == f"/conversations/{cid}" and note["data"]["tool_call_id"]

    debug = (await viewer.get("/agents/developer/debug")).json()
    mine = next(c for c in debug["conversations"] if c["conversation_id"] == cid)
    assert mine["state"] == "awaiting_approval" and mine["current"] == "awaiting approval: run_command"
    assert mine["pending_approvals"][0]["arguments"] == {"command": "echo needs a person"}

    call = note["data"]["tool_call_id"]
    denied = await api.http("approver").post(f"/approvals/{cid}/{call}", json={"decision": "deny", "reason": "no"})
    assert denied.status_code == 200, denied.text
    await until(lambda: _turns(viewer, cid, 1))
    assert await _notification(viewer, cid) is None  # decided: no longer waiting
    errors = (await viewer.get("/agents/developer/debug")).json()["errors"]
    assert any(e["conversation_id"] == cid and e["decision"] == "deny" for e in errors)
    problem(await viewer.get("/agents/nobody/debug"), 404, "unknown-agent")


async def test_budget_notices_reach_the_notification_centre(team: ApiStack) -> None:
    operator, viewer = team.http("operator"), team.http("viewer")
    channel = new_id("bud")
    created = await operator.post("/channels", json={"channel_id": channel, "agents": ["developer", "analyst"],
                                                     "people": ["alice"], "budgets": {"tokens": 1}})  # fmt: skip
    assert created.status_code == 201, created.text
    assert (await operator.post(f"/channels/{channel}/posts", json={"content": CODING})).status_code == 200
    second = (await operator.post(f"/channels/{channel}/posts", json={"content": CODING})).json()
    assert second["stopped"].startswith("token budget spent")
    items = (await viewer.get("/notifications")).json()["items"]
    [budget] = [i for i in items if i["kind"] == "budget" and i["data"]["channel_id"] == channel]
    assert budget["detail"].startswith("token budget spent") and budget["link"] == f"/channels/{channel}"


async def _running(http, cid):
    response = await http.get(f"/conversations/{cid}")
    return response.status_code == 200 and response.json().get("status")


async def _paused(http, cid):
    status = await status_of(http, cid)
    return status if status["paused"] else None


async def _not_paused(http, cid):
    return not (await status_of(http, cid))["paused"]


async def _queued(http, cid, n):
    return (await status_of(http, cid))["queued"] == n


async def _turns(http, cid, n):
    status = await status_of(http, cid)
    return status["turn"] >= n and status["state"] == "idle"


async def _post_done(http, channel, post_id):
    body = (await http.get(f"/channels/{channel}/posts/{post_id}")).json()
    return body["result"] if body["done"] else None


async def _notification(http, cid):
    items = (await http.get("/notifications")).json()["items"]
    return next((i for i in items if i["kind"] == "approval" and i["data"]["conversation_id"] == cid), None)


async def test_an_archived_conversation_is_readable_and_a_message_revives_it(api: ApiStack) -> None:
    operator, viewer = api.http("operator"), api.http("viewer")
    cid = new_id("arch")
    created = await operator.post("/conversations", json={"conversation_id": cid, "archive_after_s": 1, "message": "hello"})
    assert created.status_code == 201, created.text
    detail = await until(lambda: _archived(viewer, cid))
    assert detail["status"]["turn"] == 1
    messages = (await viewer.get(f"/conversations/{cid}/messages")).json()["messages"]
    assert [m["content"] for m in messages] == ["hello", "echo: hello"]
    [record] = (await viewer.get("/archives", params={"kind": "conversation", "subject_id": cid})).json()
    assert record["turns"] == 1 and record["revived_at"] is None and record["idle_s"] == 1

    sent = await operator.post(f"/conversations/{cid}/messages", json={"content": "again"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["turn"] == 2 and sent.json()["reply"] == "echo: again"
    [record] = (await viewer.get("/archives", params={"subject_id": cid})).json()
    assert record["revived_at"] is not None


async def _archived(http, cid):
    detail = (await http.get(f"/conversations/{cid}")).json()
    archived = detail.get("execution") == "completed" and detail.get("status", {}).get("state") == "archived"
    return detail if archived else None
