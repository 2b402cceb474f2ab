"""The HTTP API over real HTTP: a ``daemonflow api`` process, a real worker and Temporal dev server.

The only fake is Ollama. Conversations, approvals and live events go through the real workflow;
errors are checked as the problem documents a client would read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid

import httpx
import pytest

from store.actions import ActionStore
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.api import ApiStack

PROBLEM = "application/problem+json"


def new_id(prefix: str = "api") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def problem(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    if slug:
        assert body["type"] == f"urn:daemonflow:problem:{slug}", body
    return body


async def until(probe, timeout: float = 30.0, interval: float = 0.1):
    """Poll an async probe until it returns something truthy (generous: CI machines are slow)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


async def polled_status(http: httpx.AsyncClient, conversation_id: str) -> dict | None:
    """A conversation's status for a polling probe: None while no worker answered the query in time
    (503): on a loaded CI machine the dev server can hold a query past ``api_query_timeout_s``."""
    response = await http.get(f"/conversations/{conversation_id}")
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    return response.json()["status"]


async def state_of(http: httpx.AsyncClient, conversation_id: str) -> str:
    response = await http.get(f"/conversations/{conversation_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]["state"]


# --- conversations -------------------------------------------------------------------------------


async def test_a_conversation_from_start_to_end(api: ApiStack) -> None:
    http = api.http("operator")
    cid = new_id()
    created = await http.post("/conversations", json={"conversation_id": cid, "agent": "assistant", "message": "hello"})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/conversations/{cid}"
    body = created.json()
    assert body["conversation_id"] == cid and body["workflow_id"] == f"conversation-{cid}"
    assert body["turn"]["reply"] == "echo: hello" and body["turn"]["turn"] == 1 and body["turn_id"]

    detail = (await http.get(f"/conversations/{cid}")).json()
    assert detail["execution"] == "running" and detail["status"]["agent"] == "assistant"
    assert detail["status"]["turn"] == 1

    turn = await http.post(f"/conversations/{cid}/messages", json={"content": "second"})
    assert turn.status_code == 200 and turn.json()["reply"] == "echo: second" and turn.json()["turn"] == 2

    accepted = await http.post(f"/conversations/{cid}/messages", params={"wait": "false"}, json={"content": "third"})
    assert accepted.status_code == 202, accepted.text
    turn_id = accepted.json()["turn_id"]

    async def finished():
        answer = (await http.get(f"/conversations/{cid}/turns/{turn_id}")).json()
        return answer if answer["done"] else None

    assert (await until(finished))["result"]["reply"] == "echo: third"

    # Pagination over the store: whole bodies, oldest first.
    first = (await http.get(f"/conversations/{cid}/messages", params={"limit": 2})).json()
    assert [m["content"] for m in first["messages"]] == ["hello", "echo: hello"] and first["next_after"] == 2
    rest = (await http.get(f"/conversations/{cid}/messages", params={"after": 2, "limit": 50})).json()
    assert [m["content"] for m in rest["messages"]] == ["second", "echo: second", "third", "echo: third"]
    assert rest["next_after"] is None

    assert (await http.post(f"/conversations/{cid}/pause", json={"reason": "lunch"})).status_code == 202
    paused = await until(lambda: _status_if(http, cid, lambda s: s["paused"]))
    assert paused["pause_reason"] == "lunch" and paused["state"] == "paused"
    assert (await http.post(f"/conversations/{cid}/resume")).status_code == 202
    await until(lambda: _status_if(http, cid, lambda s: not s["paused"]))

    assert (await http.put(f"/conversations/{cid}/auto-accept", json={"enabled": False})).status_code == 202
    await until(lambda: _status_if(http, cid, lambda s: s["auto_accept"] is False))

    injected = await http.post(f"/conversations/{cid}/inject", json={"content": "a note", "role": "system", "priority": "queue"})
    assert injected.status_code == 202 and injected.json() == {"conversation_id": cid, "signal": "inject"}

    async def note_stored():
        page = (await http.get(f"/conversations/{cid}/messages", params={"after": 6})).json()
        return any(m["content"] == "a note" and m["role"] == "system" for m in page["messages"])

    await until(note_stored)

    listed = (await http.get("/conversations", params={"running": "true"})).json()["conversations"]
    mine = [c for c in listed if c["conversation_id"] == cid]
    assert mine and mine[0]["agent"] == "assistant" and mine[0]["execution"] == "running"

    assert (await http.post(f"/conversations/{cid}/end", json={"reason": "done"})).status_code == 202

    async def over():
        detail = (await http.get(f"/conversations/{cid}")).json()
        return detail if detail["execution"] == "completed" else None

    detail = await until(over)
    assert detail["status"]["state"] == "ended" and detail["status"]["ended_reason"] == "done"
    problem(await http.post(f"/conversations/{cid}/messages", json={"content": "anyone?"}), 409, "conversation-ended")
    problem(await http.post(f"/conversations/{cid}/pause"), 409, "conversation-ended")
    finished_list = (await http.get("/conversations", params={"running": "false"})).json()["conversations"]
    assert any(c["conversation_id"] == cid and c["execution"] == "completed" for c in finished_list)


async def _status_if(http: httpx.AsyncClient, cid: str, condition):
    status = await polled_status(http, cid)
    return status if status is not None and condition(status) else None


async def test_a_message_to_a_paused_conversation_is_accepted_and_answered_after_resume(api: ApiStack) -> None:
    http = api.http("operator")
    cid = new_id("paused")
    assert (await http.post("/conversations", json={"conversation_id": cid})).status_code == 201
    assert (await http.post(f"/conversations/{cid}/pause")).status_code == 202
    await until(lambda: _status_if(http, cid, lambda s: s["paused"]))
    accepted = await http.post(f"/conversations/{cid}/messages", json={"content": "later"})
    assert accepted.status_code == 202, accepted.text
    assert {"reason": "paused", "state": "paused", "pending_approvals": []}.items() <= accepted.json().items()
    assert "answers after resume" in accepted.json()["detail"]
    turn = f"/conversations/{cid}/turns/{accepted.json()['turn_id']}"
    assert (await http.get(turn)).json() == {"turn_id": accepted.json()["turn_id"], "done": False, "result": None}
    assert (await http.post(f"/conversations/{cid}/resume")).status_code == 202

    async def answered():
        answer = (await http.get(turn)).json()
        return answer["result"] if answer["done"] else None

    assert (await until(answered))["reply"] == "echo: later"


async def test_conversation_listing_pages_and_filters(api: ApiStack) -> None:
    http = api.http("viewer")
    operator = api.http("operator")
    ids = {new_id("page") for _ in range(3)}
    for cid in ids:
        assert (await operator.post("/conversations", json={"conversation_id": cid, "agent": "analyst"})).status_code == 201

    async def all_listed():
        seen, token = [], None
        while True:
            params = {"page_size": 2, "agent": "analyst", **({"page_token": token} if token else {})}
            page = (await http.get("/conversations", params=params)).json()
            assert len(page["conversations"]) <= 2
            seen += [c["conversation_id"] for c in page["conversations"]]
            token = page["next_page_token"]
            if not token:
                return ids <= set(seen) and all(c.startswith("page-") for c in seen if c in ids)

    await until(all_listed)
    problem(await http.get("/conversations", params={"page_token": "not a token!"}), 422)
    problem(await http.get("/conversations", params={"state": "sleeping"}), 422, "invalid-request")


async def test_agents_are_listed(api: ApiStack) -> None:
    agents = (await api.http("viewer").get("/agents")).json()
    names = [a["name"] for a in agents]
    assert {"assistant", "developer", "analyst", "moderator"} <= set(names)
    assert "system_prompt" not in agents[0]


# --- bad input -----------------------------------------------------------------------------------


async def test_unknown_conversations_are_404_on_every_endpoint(api: ApiStack) -> None:
    http = api.http("admin")
    cid = new_id("ghost")
    calls = [
        ("GET", f"/conversations/{cid}", None),
        ("GET", f"/conversations/{cid}/messages", None),
        ("GET", f"/conversations/{cid}/events", None),
        ("GET", f"/conversations/{cid}/turns/turn-x", None),
        ("POST", f"/conversations/{cid}/messages", {"content": "hi"}),
        ("POST", f"/conversations/{cid}/pause", None),
        ("POST", f"/conversations/{cid}/resume", None),
        ("POST", f"/conversations/{cid}/inject", {"content": "x"}),
        ("POST", f"/conversations/{cid}/end", None),
        ("PUT", f"/conversations/{cid}/auto-accept", {"enabled": True}),
        ("POST", f"/approvals/{cid}/1-0", {"decision": "approve"}),
    ]
    for method, path, body in calls:
        body_json = problem(await http.request(method, path, json=body), 404, "conversation-not-found")
        assert cid in body_json["detail"] and body_json["instance"] == path


async def test_bad_input_is_refused_with_a_useful_problem(api: ApiStack) -> None:
    http = api.http("operator")
    admin = api.http("admin")

    invalid = problem(await http.post("/conversations", json={"agent": "assistant", "carried": {}}), 422, "invalid-request")
    assert "carried" in invalid["detail"] and invalid["errors"][0]["loc"] == ["body", "carried"]
    assert "Extra inputs are not permitted" in invalid["detail"]
    unknown = problem(await http.post("/conversations", json={"agent": "nobody"}), 422, "unknown-agent")
    assert "assistant" in unknown["detail"] and "developer" in unknown["detail"]
    problem(await http.post("/conversations", json={"model": "no-such-model"}), 422, "unknown-model")
    problem(await http.post("/conversations", json={"message": "   "}), 422, "invalid-request")
    problem(await http.post("/conversations", json={"max_steps_per_turn": 0}), 422, "invalid-request")
    problem(await http.post("/conversations", content=b"{not json", headers={"content-type": "application/json"}), 422)

    rule = {"id": "allow-echo", "decision": "allow", "tools": ["run_command"], "command": ["echo *"]}
    forbidden = problem(await http.post("/conversations", json={"policy": [rule]}), 403, "forbidden")
    assert "admin" in forbidden["detail"]
    broken = {**rule, "match": ["ls"]}
    problem(await admin.post("/conversations", json={"policy": [broken]}), 422, "invalid-policy")

    cid = new_id("bad")
    assert (await http.post("/conversations", json={"conversation_id": cid})).status_code == 201
    problem(await http.post("/conversations", json={"conversation_id": cid}), 409, "conversation-exists")
    problem(await http.post("/conversations", json={"conversation_id": "../etc"}), 422, "invalid-request")

    # The workflow's own validator speaks through the API.
    rejected = problem(await http.post(f"/conversations/{cid}/messages", json={"content": " \n "}), 422, "message-rejected")
    assert rejected["detail"] == "message content is empty"
    problem(await http.post(f"/conversations/{cid}/inject", json={"content": "   "}), 422, "invalid-request")
    problem(await http.post(f"/conversations/{cid}/inject", json={"content": "x", "role": "root"}), 422)

    too_big = "x" * (api.settings.api_max_body_bytes + 1)
    refused = await http.post(f"/conversations/{cid}/messages", json={"content": too_big})
    big = problem(refused, 413, "payload-too-large")
    assert str(api.settings.api_max_body_bytes) in big["detail"]
    assert refused.headers["x-content-type-options"] == "nosniff"  # refusals carry the security headers too

    async def chunked():
        yield b'{"content": "'
        for _ in range(api.settings.api_max_body_bytes // 65536 + 2):
            yield b"y" * 65536
        yield b'"}'

    problem(await http.post(f"/conversations/{cid}/messages", content=chunked(),
                            headers={"content-type": "application/json"}), 413, "payload-too-large")  # fmt: skip
    long = "z" * (api.settings.max_message_chars + 1)
    assert len(json.dumps({"content": long})) < api.settings.api_max_body_bytes
    problem(await http.post(f"/conversations/{cid}/messages", json={"content": long}), 422, "message-rejected")

    not_found = problem(await http.get("/nowhere"), 404)
    assert not_found["type"] == "about:blank"
    problem(await http.delete(f"/conversations/{cid}"), 405)


# --- approvals -----------------------------------------------------------------------------------


def run_command(text: str) -> Reply:
    return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": text})])


async def pending_for(http: httpx.AsyncClient, cid: str) -> dict | None:
    items = (await http.get("/approvals")).json()
    return next((i for i in items if i["conversation_id"] == cid), None)


@pytest.mark.usefixtures("docker_client")
async def test_approvals_are_listed_and_decided_by_an_approver(api: ApiStack) -> None:
    operator, approver, viewer = api.http("operator"), api.http("approver"), api.http("viewer")
    api.ollama.script(run_command("echo approved over http"), Reply(content="all done"))
    cid = new_id("approve")
    started = await operator.post("/conversations", params={"wait": "false"},
                                  json={"conversation_id": cid, "agent": "developer", "message": "run it"})  # fmt: skip
    assert started.status_code == 202, started.text

    item = await until(lambda: pending_for(viewer, cid))
    assert item["tool"] == "run_command" and item["arguments"] == {"command": "echo approved over http"}
    canonical = json.dumps(item["arguments"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert item["args_hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert item["agent"] == "developer" and item["reason"]
    call = item["tool_call_id"]
    url = f"/approvals/{cid}/{call}"

    problem(await viewer.post(url, json={"decision": "approve"}), 403, "forbidden")
    problem(await operator.post(url, json={"decision": "approve"}), 403, "forbidden")
    problem(await approver.post(f"/approvals/{cid}/9-9", json={"decision": "approve"}), 404, "tool-call-not-pending")
    problem(await approver.post(url, json={"decision": "approve", "arguments_hash": "0" * 64}), 409, "arguments-changed")
    problem(await approver.post(url, json={"decision": "edit"}), 422, "invalid-decision")
    problem(await approver.post(url, json={"decision": "approve", "arguments": {"command": "echo other"}}), 422,
            "invalid-decision")  # fmt: skip
    problem(await approver.post(url, json={"decision": "approve", "approver": "mallory"}), 422, "invalid-request")
    assert (await pending_for(viewer, cid)) is not None, "refused decisions must leave the call waiting"

    decided = await approver.post(url, json={"decision": "approve", "arguments_hash": item["args_hash"]})
    assert decided.status_code == 200, decided.text
    assert decided.json() == {
        "conversation_id": cid, "tool_call_id": call, "decision": "approve", "approver": "approver-key",
        "arguments": {"command": "echo approved over http"}, "args_hash": item["args_hash"], "applied": True,
    }  # fmt: skip
    again = problem(await approver.post(url, json={"decision": "deny"}), 409, "already-decided")
    assert call in again["detail"] and "already decided: approve by approver-key" in again["detail"]

    async def tool_message():
        page = (await viewer.get(f"/conversations/{cid}/messages")).json()["messages"]
        return next((m for m in page if m["role"] == "tool"), None)

    assert "approved over http" in (await until(tool_message))["content"]
    [row] = [r for r in ActionStore(api.store.engine).actions(conversation_id=cid)]
    assert (row.decision, row.source, row.success) == ("approve", "approver:approver-key", True)
    assert row.args_hash == item["args_hash"]
    problem(await approver.post(url, json={"decision": "deny"}), 409, "already-decided")


@pytest.mark.usefixtures("docker_client")
async def test_edit_and_deny_from_the_api(api: ApiStack) -> None:
    operator, admin = api.http("operator"), api.http("admin")
    api.ollama.script(run_command("echo original"), run_command("echo second"), Reply(content="ok"))
    cid = new_id("edit")
    await operator.post("/conversations", params={"wait": "false"},
                        json={"conversation_id": cid, "agent": "developer", "message": "go"})  # fmt: skip
    first = await until(lambda: pending_for(admin, cid))
    edited = await admin.post(f"/approvals/{cid}/{first['tool_call_id']}",
                              json={"decision": "edit", "arguments": {"command": "echo edited"}})  # fmt: skip
    assert edited.status_code == 200 and edited.json()["arguments"] == {"command": "echo edited"}
    second = await until(lambda: _next_pending(admin, cid, first["tool_call_id"]))
    denied = await admin.post(f"/approvals/{cid}/{second['tool_call_id']}", json={"decision": "deny", "reason": "no"})
    assert denied.status_code == 200 and denied.json()["arguments"] is None and denied.json()["approver"] == "admin-key"

    async def outcomes():
        rows = ActionStore(api.store.engine).actions(conversation_id=cid)
        return rows if len(rows) == 2 else None

    rows = await until(outcomes)
    assert [(r.decision, r.source) for r in rows] == [("edit", "approver:admin-key"), ("deny", "approver:admin-key")]
    page = (await admin.get(f"/conversations/{cid}/messages")).json()["messages"]
    tools = [m["content"] for m in page if m["role"] == "tool"]
    assert "edited" in tools[0] and "original" not in tools[0]
    assert tools[1] == "error: not run: denied by a person: no"


async def test_a_turn_that_waits_for_a_person_is_a_prompt_202_not_an_error(api: ApiStack) -> None:
    """No Docker needed: the call is denied, so nothing runs."""
    operator, approver = api.http("operator"), api.http("approver")
    api.ollama.script(run_command("echo wait for me"), Reply(content="understood"))
    cid = new_id("waits")
    created = await operator.post("/conversations", json={"conversation_id": cid, "agent": "developer", "message": "go"})
    assert created.status_code == 202, created.text
    body = created.json()
    assert body["turn"] is None and body["turn_id"]
    waiting = body["waiting"]
    assert (waiting["reason"], waiting["state"]) == ("awaiting_approval", "awaiting_approval")
    [pending] = waiting["pending_approvals"]
    assert (pending["tool"], pending["arguments"]) == ("run_command", {"command": "echo wait for me"})

    turn = f"/conversations/{cid}/turns/{body['turn_id']}"
    assert (await operator.get(turn)).json()["done"] is False
    decided = await approver.post(f"/approvals/{cid}/{pending['tool_call_id']}",
                                  json={"decision": "deny", "arguments_hash": pending["args_hash"]})  # fmt: skip
    assert decided.status_code == 200, decided.text

    async def answered():
        answer = (await operator.get(turn)).json()
        return answer["result"] if answer["done"] else None

    assert (await until(answered))["reply"] == "understood"


async def test_an_injected_note_is_listed_at_once_as_pending(api: ApiStack) -> None:
    http = api.http("operator")
    cid = new_id("note")
    assert (await http.post("/conversations", json={"conversation_id": cid, "message": "hi"})).status_code == 201
    assert (await http.post(f"/conversations/{cid}/inject", json={"content": "a note", "role": "system"})).status_code == 202

    async def listed():
        page = (await http.get(f"/conversations/{cid}/messages")).json()
        return page if page["messages"][-1]["pending"] else None

    page = await until(listed)
    assert [(m["seq"], m["content"], m["pending"]) for m in page["messages"]] == [
        (1, "hi", False), (2, "echo: hi", False), (None, "a note", True)]  # fmt: skip
    assert page["messages"][-1]["created_at"] is None and page["next_after"] is None
    # Not on an earlier page: pending entries follow the last stored message only.
    first = (await http.get(f"/conversations/{cid}/messages", params={"limit": 1})).json()
    assert [m["content"] for m in first["messages"]] == ["hi"] and first["next_after"] == 1

    assert (await http.post(f"/conversations/{cid}/messages", json={"content": "next"})).status_code == 200
    stored = (await http.get(f"/conversations/{cid}/messages")).json()["messages"]
    assert [(m["content"], m["pending"]) for m in stored][2:] == [("a note", False), ("next", False), ("echo: next", False)]


async def _next_pending(http: httpx.AsyncClient, cid: str, not_this: str) -> dict | None:
    item = await pending_for(http, cid)
    return item if item and item["tool_call_id"] != not_this else None


# --- live events ---------------------------------------------------------------------------------


async def read_events(http: httpx.AsyncClient, cid: str, headers: dict | None = None, params: dict | None = None,
                      stop_after: int | None = None) -> list[dict]:  # fmt: skip
    """Parse an SSE stream into ``{id, event, data}`` dicts, until it ends or ``stop_after`` events.
    A 503 (no worker answered the stream's first query in time, as in ``polled_status``) is opened
    again, as a client would; the callers' own timeouts bound it."""
    while True:
        events = await _read_events_once(http, cid, headers, params, stop_after)
        if events is not None:
            return events
        await asyncio.sleep(0.5)


async def _read_events_once(http: httpx.AsyncClient, cid: str, headers: dict | None, params: dict | None,
                            stop_after: int | None) -> list[dict] | None:  # fmt: skip
    events: list[dict] = []
    current: dict = {}
    async with http.stream("GET", f"/conversations/{cid}/events", headers=headers, params=params) as stream:
        if stream.status_code == 503:
            return None
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line == "":
                if "event" in current:
                    events.append(current)
                    if stop_after is not None and len(events) >= stop_after:
                        return events
                current = {}
            elif line.startswith(":"):
                continue
            else:
                field, _, value = line.partition(": ")
                current[field] = json.loads(value) if field == "data" else value
    return events


async def test_events_stream_live_and_resume_with_last_event_id(api: ApiStack) -> None:
    http = api.http("viewer")
    operator = api.http("operator")
    cid = new_id("sse")
    assert (await operator.post("/conversations", json={"conversation_id": cid, "message": "one"})).status_code == 201

    first = await asyncio.wait_for(read_events(http, cid, stop_after=3), 30)
    ids = [int(e["id"]) for e in first]
    assert ids == list(range(ids[0], ids[0] + 3)) and ids[0] == 1
    assert all(e["event"] == e["data"]["type"] for e in first if e["event"] not in ("token", "token_reset"))

    # While a client is away the conversation goes on; it resumes exactly after the last id it saw.
    assert (await operator.post(f"/conversations/{cid}/messages", json={"content": "two"})).status_code == 200
    live = asyncio.create_task(read_events(http, cid, headers={"Last-Event-ID": str(ids[-1])}))
    await asyncio.sleep(0.5)
    assert (await operator.post(f"/conversations/{cid}/end", json={"reason": "enough"})).status_code == 202
    resumed = await asyncio.wait_for(live, 30)  # ends by itself after the `ended` state
    resumed_ids = [int(e["id"]) for e in resumed]
    assert resumed_ids[0] == ids[-1] + 1
    assert resumed_ids == list(range(resumed_ids[0], resumed_ids[0] + len(resumed_ids)))
    assert resumed[-1]["event"] == "state" and resumed[-1]["data"]["data"]["state"] == "ended"
    contents = [e["data"]["data"]["content"] for e in resumed if e["event"] == "message"]
    assert "two" in contents and "echo: two" in contents
    assert "turn_completed" in {e["event"] for e in resumed}

    # ?after= is the same cursor for clients that cannot set headers; a finished stream closes.
    replay = await asyncio.wait_for(read_events(http, cid, params={"after": ids[-1]}), 30)
    assert [int(e["id"]) for e in replay] == resumed_ids
    assert await asyncio.wait_for(read_events(http, cid, headers={"Last-Event-ID": str(resumed_ids[-1])}), 30) == []
    problem(await http.get(f"/conversations/{cid}/events", headers={"Last-Event-ID": "abc"}), 422)
    problem(await http.get(f"/conversations/{cid}/events", headers={"Last-Event-ID": str(2**63)}), 422)
    problem(await http.get(f"/conversations/{cid}/messages", params={"after": 2**63}), 422, "invalid-request")


async def test_event_stream_sees_an_approval_requested_and_decided(api: ApiStack) -> None:
    """No Docker needed: the decision is a deny, so nothing runs."""
    operator, admin = api.http("operator"), api.http("admin")
    api.ollama.script(run_command("echo never"), Reply(content="fine"))
    cid = new_id("sse-approval")
    await operator.post("/conversations", params={"wait": "false"},
                        json={"conversation_id": cid, "agent": "developer", "message": "go"})  # fmt: skip
    stream = asyncio.create_task(read_events(admin, cid))
    item = await until(lambda: pending_for(admin, cid))
    denied = await admin.post(f"/approvals/{cid}/{item['tool_call_id']}", json={"decision": "deny", "reason": "test"})
    assert denied.status_code == 200, denied.text
    await until(lambda: _turn_done(admin, cid))
    await admin.post(f"/conversations/{cid}/end")
    events = await asyncio.wait_for(stream, 30)
    kinds = [e["event"] for e in events]
    requested = kinds.index("approval_requested")
    assert "approval_decided" in kinds, [(e.get("id"), e["event"]) for e in events]
    decided = kinds.index("approval_decided")
    assert requested < decided < kinds.index("tool_result")
    assert events[decided]["data"]["data"] == {"tool_call_id": item["tool_call_id"], "decision": "deny",
                                               "approver": "admin-key", "reason": "test"}  # fmt: skip


async def _turn_done(http: httpx.AsyncClient, cid: str) -> bool:
    status = await polled_status(http, cid)
    return status is not None and status["state"] == "idle" and status["turn"] == 1


# --- health and metrics --------------------------------------------------------------------------


async def test_health_reports_each_dependency_and_degrades_without_ollama(api: ApiStack) -> None:
    http = api.http("viewer")
    report = (await http.get("/health")).json()
    assert report["status"] == "ok", report
    assert list(report["model_servers"]) == ["ollama"]  # chat and embeddings on one server
    for component in (report["temporal"], report["store"], report["workers"], report["model_servers"]["ollama"]):
        assert component["ok"] is True and component["latency_ms"] >= 0, component
    assert "worker poller" in report["workers"]["detail"]
    assert report["model_servers"]["ollama"]["detail"].startswith(f"Ollama {api.ollama.version} at {api.ollama.url}")
    api.ollama.down()
    try:
        degraded = await http.get("/health")
    finally:
        api.ollama.up()
    assert degraded.status_code == 200
    assert degraded.json()["status"] == "degraded" and degraded.json()["model_servers"]["ollama"]["ok"] is False


async def test_metrics_count_requests_by_route_template(api: ApiStack) -> None:
    http = api.http("viewer")
    await http.get(f"/conversations/{new_id('metric')}")
    text = (await httpx.AsyncClient(base_url=api.url).get("/metrics")).text
    assert 'daemonflow_api_requests_total{method="GET",route="/conversations/{conversation_id}",status="404"}' in text
    assert "daemonflow_api_request_duration_seconds_bucket" in text
    assert "metric-" not in text, "conversation ids must never become label values"


async def test_the_admin_page_is_served_with_a_strict_policy(api: ApiStack) -> None:
    anonymous = httpx.AsyncClient(base_url=api.url)
    page = await anonymous.get("/ui/")
    assert page.status_code == 200 and '<section id="dashboard">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (await anonymous.get("/ui/app.js")).status_code == 200
    assert (await anonymous.get("/ui/dashboard.js")).status_code == 200
    assert (await anonymous.get("/", follow_redirects=False)).headers["location"] == "/ui/"
    assert (await anonymous.get("/openapi.json")).json()["components"]["securitySchemes"]
    await anonymous.aclose()
