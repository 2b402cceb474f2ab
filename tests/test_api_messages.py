"""Private messages over HTTP (a real ``daemonflow api`` process) and from the command line: send,
follow, answer the agent's question, list, the collaboration tracker, and the problems."""

from __future__ import annotations

import json
import uuid

from tests.message_support import CODING, DEVELOPER, FIX, agents_answer, dm_conversations_ended, replies  # noqa: F401 (the fixture)
from tests.test_cli import daemonflow
from tests.test_conversation import wait_for


async def _state(http, message_id: str, state: str):
    body = (await http.get(f"/messages/{message_id}")).json()
    return body if body["state"] == state else None


async def test_an_input_required_round_trip_over_http_and_the_collaboration_it_leaves(api):
    agents_answer(api.ollama, **{DEVELOPER: replies("NEED INPUT: which test file?", FIX)})
    operator, viewer = api.http("operator"), api.http("viewer")
    before = (await viewer.get("/analytics/collaboration")).json()
    sent = await operator.post("/messages", json={"to": "developer", "content": CODING})
    assert sent.status_code == 202, sent.text
    message_id = sent.json()["message_id"]
    assert sent.headers["location"] == f"/messages/{message_id}" and sent.json()["state"] == "submitted"
    assert sent.json()["sender"] == "operator-key"

    asked = await wait_for(lambda: _state(viewer, message_id, "input_required"), timeout=60)
    assert asked["question"] == "which test file?"
    asking = [n for n in (await viewer.get("/notifications")).json()["items"] if n["data"].get("message_id") == message_id]
    assert [(n["kind"], n["detail"], n["link"]) for n in asking] == [("question", "which test file?", f"/messages/{message_id}")]
    answered = await operator.post(f"/messages/{message_id}/input", json={"content": "tests/test_api.py"})
    assert answered.status_code == 200, answered.text
    done = await wait_for(lambda: _state(viewer, message_id, "completed"), timeout=60)
    assert done["reply"] == FIX and done["conversation_id"] == "dm-developer" and done["input_rounds"] == 1

    notified = (await viewer.get("/notifications")).json()["items"]
    assert not [n for n in notified if n["data"].get("message_id") == message_id]  # answered: nothing waits
    again = await operator.post(f"/messages/{message_id}/input", json={"content": "late"})
    assert again.status_code == 409 and again.json()["type"].endswith("not-waiting-for-input")
    listed = (await viewer.get("/messages", params={"agent": "developer", "limit": 5})).json()
    assert listed["items"][0]["message_id"] == message_id
    after = (await viewer.get("/analytics/collaboration")).json()
    assert _completed(after, "operator-key", "developer") == _completed(before, "operator-key", "developer") + 1
    assert any(a["agent"] == "developer" and a["received"]["completed"] >= 1 for a in after["agents"])


def _completed(report: dict, sender: str, recipient: str) -> int:
    return next((p["completed"] for p in report["pairs"] if (p["sender"], p["recipient"]) == (sender, recipient)), 0)


async def test_problems_of_private_messages(api):
    operator, viewer = api.http("operator"), api.http("viewer")
    unknown = await operator.post("/messages", json={"to": "nobody", "content": "hello"})
    assert unknown.status_code == 422 and "unknown agent template 'nobody'" in unknown.json()["detail"]
    assert (await viewer.post("/messages", json={"to": "developer", "content": "hi"})).status_code == 403
    missing = await viewer.get("/messages/m-not-there")
    assert missing.status_code == 404 and missing.json()["type"].endswith("private-message-not-found")
    long = await operator.post("/messages", json={"to": "developer", "content": "x" * 4001})
    assert long.status_code == 422
    frame = await viewer.get("/analytics/collaboration", params={"since": "2026-01-02T00:00:00Z",
                                                                  "until": "2026-01-01T00:00:00Z"})
    assert frame.status_code == 422


async def test_message_commands(daemon, fake_ollama, tmp_path):
    agents_answer(fake_ollama, **{DEVELOPER: replies("NEED INPUT: which test file?", FIX)})
    env, mid = daemon.env(), f"cli{uuid.uuid4().hex[:8]}"
    sent = await daemonflow(env, tmp_path, "message", "send", "developer", CODING, "--as", "alice", "--id", mid,
                            "--wait")  # fmt: skip
    assert sent.code == 0, sent.err
    assert sent.out.splitlines() == [f"message {mid}: alice → developer · input_required",
                                     "reason: this is my field (model)", "question: which test file?",
                                     f"(answer with `daemonflow message reply {mid} TEXT`)"]
    replied = await daemonflow(env, tmp_path, "message", "reply", mid, "tests/test_api.py", "--as", "alice")
    assert replied.code == 0 and "is working again" in replied.out, replied.err
    await wait_for(lambda: _cli_state(env, tmp_path, mid, "completed"), timeout=60)
    listed = await daemonflow(env, tmp_path, "message", "list", "--agent", "developer")
    assert listed.out.startswith(f"{mid}  alice → developer  completed") and FIX in listed.out
    again = await daemonflow(env, tmp_path, "message", "send", "developer", CODING, "--id", mid)
    assert again.code != 0 and "already used" in again.err
    report = await daemonflow(env, tmp_path, "collaboration")
    assert report.code == 0 and "alice → developer" in report.out.splitlines()[1]
    assert report.out.splitlines()[1].split()[3:9] == ["1", "1", "0", "1", "0", "0"]


async def _cli_state(env, tmp_path, mid: str, state: str) -> bool:
    shown = await daemonflow(env, tmp_path, "message", "status", mid, "--json")
    return json.loads(shown.out)["state"] == state
