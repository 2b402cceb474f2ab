"""Channels and the relevance engine over real HTTP: a ``daemonflow api`` process, a real worker and
Temporal dev server; the fake Ollama answers as each agent and embeds by content words."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.channel_support import CODING, DATA, FILE_THRESHOLDS, team_on
from tests.fakes.ollama import Reply, ToolCall, by_system_prompt, echo_responder, hashed_embedding
from tests.fixtures.api import ApiStack
from tests.test_api import new_id, problem, until



@pytest.fixture
async def team(api: ApiStack) -> AsyncIterator[ApiStack]:
    """The session's stack with the fake answering as each agent; put back as other tests expect it."""
    await team_on(api)
    yield api
    api.ollama.responder, api.ollama.embedder = echo_responder, hashed_embedding


async def create(http: httpx.AsyncClient, **body) -> dict:
    channel_id = body.pop("channel_id", None) or new_id("ch")
    response = await http.post("/channels", json={"channel_id": channel_id, "agents": ["developer", "analyst", "moderator"],
                                                  "people": ["alice"], "user_id": "u-api", **body})  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_channel_from_creation_to_end_over_http(team: ApiStack) -> None:
    operator, viewer = team.http("operator"), team.http("viewer")
    created = await create(operator, title="Release")
    cid = created["channel_id"]
    assert created["conversations"] == [f"{cid}--developer", f"{cid}--analyst", f"{cid}--moderator"]

    posted = await operator.post(f"/channels/{cid}/posts", json={"content": CODING, "author": "alice"})
    assert posted.status_code == 200, posted.text
    result = posted.json()
    assert result["spoke"] == ["developer"] and result["scores"][0]["decision"] == "intervene"
    by_key = await operator.post(f"/channels/{cid}/posts", json={"content": DATA})
    assert by_key.json()["spoke"] == ["analyst"]

    messages = (await viewer.get(f"/channels/{cid}/messages")).json()["messages"]
    assert [(m["seq"], m["author"], m["kind"]) for m in messages] == [
        (1, "alice", "person"), (2, "developer", "agent"), (3, "operator-key", "person"), (4, "analyst", "agent")]
    assert messages[1]["conversation_id"] == f"{cid}--developer" and messages[1]["answers"] == 1
    paged = (await viewer.get(f"/channels/{cid}/messages", params={"after": 1, "limit": 2})).json()
    assert [m["seq"] for m in paged["messages"]] == [2, 3] and paged["next_after"] == 3

    detail = (await viewer.get(f"/channels/{cid}")).json()
    assert detail["execution"] == "running" and detail["status"]["people"] == ["alice", "operator-key"]
    listed = await until(lambda: _listed(viewer, {"member": "operator-key"}, cid))
    assert listed["members"] == ["developer", "analyst", "moderator", "alice", "operator-key"]

    for action, body in (("pause", {"reason": "tea"}), ("resume", None), ("inject", {"content": "be brief"})):
        sent = await operator.post(f"/channels/{cid}/{action}", json=body)
        assert sent.status_code == 202 and sent.json() == {"channel_id": cid, "signal": action}, sent.text
    await until(lambda: _has_note(viewer, cid))
    assert (await operator.post(f"/channels/{cid}/end", json={"reason": "done"})).status_code == 202
    await until(lambda: _execution(viewer, cid, "completed"))
    problem(await operator.post(f"/channels/{cid}/posts", json={"content": "late"}), 409, "channel-ended")
    events = await asyncio.wait_for(_read_events(viewer, cid), 30)  # a finished channel's stream closes
    assert events[-1]["event"] == "state" and events[-1]["data"]["data"]["state"] == "ended"
    assert {"message", "scored", "turn_requested", "observed"} <= {e["event"] for e in events}


async def _listed(http, params, cid):
    channels = (await http.get("/channels", params=params)).json()["channels"]
    return next((c for c in channels if c["channel_id"] == cid), None)


async def _has_note(http, cid):
    messages = (await http.get(f"/channels/{cid}/messages")).json()["messages"]
    return any(m["kind"] == "note" and m["content"] == "be brief" and m["author"] == "operator-key" for m in messages)


async def _execution(http, cid, name):
    return (await http.get(f"/channels/{cid}")).json()["execution"] == name


async def _read_events(http: httpx.AsyncClient, cid: str) -> list[dict]:
    events, current = [], {}
    async with http.stream("GET", f"/channels/{cid}/events") as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line == "":
                if "event" in current:
                    events.append(current)
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(": ")
                current[field] = json.loads(value) if field == "data" else value
    return events


async def test_bad_channel_requests_are_refused_with_a_useful_problem(team: ApiStack) -> None:
    operator, admin = team.http("operator"), team.http("admin")
    unknown = problem(await operator.post("/channels", json={"agents": ["developer", "poet"]}), 422, "unknown-agent")
    assert "poet" in unknown["detail"] and "known templates" in unknown["detail"]
    bad = problem(await operator.post("/channels", json={"agents": ["developer"],
                                                         "relevance": {"weights": {"expertise_match": 0.5}}}),
                  422, "invalid-relevance")  # fmt: skip
    assert "weights must sum to 1" in bad["detail"]
    problem(await operator.post("/channels", json={"agents": ["developer"], "policy": [{"id": "x", "decision": "allow"}]}),
            403, "forbidden")  # fmt: skip
    problem(await operator.post("/channels", json={"agents": ["developer", "developer"]}), 422, "invalid-request")
    problem(await operator.post("/channels", json={"agents": []}), 422, "invalid-request")
    created = await create(admin)
    problem(await admin.post("/channels", json={"channel_id": created["channel_id"], "agents": ["developer"]}), 409,
            "channel-exists")  # fmt: skip
    cid = created["channel_id"]
    as_agent = problem(await operator.post(f"/channels/{cid}/posts", json={"content": "hi", "author": "developer"}),
                       422, "post-rejected")  # fmt: skip
    assert "agents speak through their turns" in as_agent["detail"]
    problem(await operator.post(f"/channels/{cid}/posts", json={"content": "hi", "author": "channel"}), 422, "post-rejected")
    stranger = problem(await operator.post(f"/channels/{cid}/posts", json={"content": "hi", "mentions": ["zed"]}),
                       422, "post-rejected")  # fmt: skip
    assert "not members of this channel: zed" in stranger["detail"]
    problem(await operator.post(f"/channels/{cid}/posts", json={"content": "   "}), 422, "invalid-request")
    problem(await operator.post("/channels/nope-nope/posts", json={"content": "hi"}), 404, "channel-not-found")
    problem(await operator.get(f"/channels/{cid}/posts/post-unknown"), 404, "post-not-found")
    problem(await operator.get("/channels/nope-nope/messages"), 404, "channel-not-found")
    problem(await team.http("viewer").post(f"/channels/{cid}/posts", json={"content": "hi"}), 403, "forbidden")


@pytest.mark.usefixtures("docker_client")
async def test_a_post_whose_agent_waits_for_approval_is_a_prompt_202_decided_at_approvals(team: ApiStack) -> None:
    operator, approver = team.http("operator"), team.http("approver")
    calls = []

    def developer(request):
        calls.append(request)
        if len(calls) == 1:
            return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo from the channel"})])
        return "The command printed: from the channel."

    team.ollama.responder = by_system_prompt({'You are "developer"': developer})
    cid = (await create(operator))["channel_id"]
    posted = await operator.post(f"/channels/{cid}/posts", json={"content": CODING, "author": "alice"})
    assert posted.status_code == 202, posted.text
    body = posted.json()
    assert (body["reason"], body["state"], body["channel_id"]) == ("awaiting_approval", "awaiting_approval", cid)
    [member] = body["waiting"]
    [call] = member["waiting"]
    assert (member["agent"], member["conversation_id"], call["tool"]) == ("developer", f"{cid}--developer", "run_command")

    [item] = [a for a in (await approver.get("/approvals")).json() if a["conversation_id"] == f"{cid}--developer"]
    assert (item["channel"], item["agent"], item["arguments"]) == (cid, "developer", {"command": "echo from the channel"})
    decided = await approver.post(f"/approvals/{cid}--developer/{call['tool_call_id']}",
                                  json={"decision": "approve", "arguments_hash": item["args_hash"]})  # fmt: skip
    assert decided.status_code == 200, decided.text

    async def done():
        answer = (await operator.get(f"/channels/{cid}/posts/{body['post_id']}")).json()
        return answer["result"] if answer["done"] else None

    result = await until(done, timeout=60)
    assert result["spoke"] == ["developer"] and result["replies"][0]["preview"] == "The command printed: from the channel."
    tool = [m for m in team.store.list_messages(f"{cid}--developer") if m.role == "tool"]
    assert "from the channel" in tool[0].content


async def test_relevance_calculate_scores_a_message_without_posting_it(team: ApiStack) -> None:
    viewer, operator = team.http("viewer"), team.http("operator")
    fresh = await viewer.post("/relevance/calculate", json={"content": CODING, "agents": ["developer", "analyst"]})
    assert fresh.status_code == 200, fresh.text
    scores = {s["agent"]: s for s in fresh.json()["scores"]}
    assert scores["developer"]["decision"] == "intervene" and scores["analyst"]["decision"] == "ignore"
    assert {f["factor"] for f in scores["developer"]["factors"]} >= {"expertise_match", "recent_participation"}

    cid = (await create(operator))["channel_id"]
    await operator.post(f"/channels/{cid}/posts", json={"content": CODING, "author": "alice"})
    now = await viewer.post("/relevance/calculate", json={"content": CODING, "channel_id": cid})
    developer = next(s for s in now.json()["scores"] if s["agent"] == "developer")
    cooldown = next(f for f in developer["factors"] if f["factor"] == "recent_participation")
    assert cooldown["raw"] < 0.05 and developer["score"] < scores["developer"]["score"]
    assert len((await viewer.get(f"/channels/{cid}/messages")).json()["messages"]) == 2, "nothing was posted"
    problem(await viewer.post("/relevance/calculate", json={"content": "hi"}), 422, "invalid-request")
    problem(await viewer.post("/relevance/calculate", json={"content": "hi", "agents": ["poet"]}), 422, "unknown-agent")
    problem(await viewer.post("/relevance/calculate", json={"content": "x" * 4001, "agents": ["developer"]}), 422)


async def test_thresholds_set_at_run_time_apply_to_the_next_post_of_a_running_channel(team: ApiStack) -> None:
    admin, operator = team.http("admin"), team.http("operator")
    assert (await admin.get("/relevance/thresholds")).json()["thresholds"] == FILE_THRESHOLDS
    cid = (await create(operator))["channel_id"]
    assert (await operator.post(f"/channels/{cid}/posts", json={"content": CODING, "author": "alice"})).json()["spoke"] == ["developer"]
    problem(await operator.put("/relevance/thresholds", json={"observe": 0.2, "intervene": 0.6, "high_priority": 0.9}),
            403, "forbidden")  # fmt: skip
    problem(await admin.put("/relevance/thresholds", json={"observe": 0.7, "intervene": 0.6, "high_priority": 0.9}), 422)
    try:
        strict = await admin.put("/relevance/thresholds", json={"observe": 0.2, "intervene": 0.99, "high_priority": 0.995})
        assert strict.status_code == 200 and strict.json()["source"] == "run-time"
        assert strict.json()["updated_by"] == "admin-key"
        later = (await operator.post(f"/channels/{cid}/posts", json={"content": DATA, "author": "alice"})).json()
        assert later["spoke"] == [] and "analyst" in later["observed"]
    finally:
        await admin.put("/relevance/thresholds", json=FILE_THRESHOLDS)


async def test_scores_feedback_and_analytics(team: ApiStack) -> None:
    operator, approver, viewer = team.http("operator"), team.http("approver"), team.http("viewer")
    cid = (await create(operator))["channel_id"]
    result = (await operator.post(f"/channels/{cid}/posts", json={"content": CODING, "author": "alice"})).json()
    score_id = result["scores"][0]["score_id"]

    page = (await viewer.get(f"/channels/{cid}/scores")).json()
    assert {(s["message_id"], s["agent"]) for s in page["items"]} == {
        ("1", "developer"), ("1", "analyst"), ("1", "moderator"), ("2", "analyst"), ("2", "moderator")}
    mine = (await viewer.get("/relevance/scores/developer", params={"channel_id": cid})).json()["items"]
    assert [(s["id"], s["outcome"]) for s in mine] == [(score_id, "replied")]

    first = await approver.post("/relevance/feedback", json={"score_id": score_id, "feedback": "useful"})
    assert first.status_code == 201 and first.json()["person"] == "approver-key"
    again = await approver.post("/relevance/feedback", json={"score_id": score_id, "feedback": "conflict", "note": "hm"})
    assert again.status_code == 200 and again.json()["feedback"] == "conflict"
    problem(await viewer.post("/relevance/feedback", json={"score_id": score_id, "feedback": "useful"}), 403, "forbidden")
    problem(await operator.post("/relevance/feedback", json={"score_id": 2**62, "feedback": "useful"}), 404, "score-not-found")

    stats = (await viewer.get("/relevance/analytics", params={"channel_id": cid})).json()
    developer = next(a for a in stats["agents"] if a["agent"] == "developer")
    assert (developer["scored"], developer["intervention_rate"]) == (1, 1.0)
    assert developer["outcomes"] == {"replied": 1} and developer["feedback"] == {"conflict": 1}
    assert stats["scored"] == 5 and sum(stats["histogram"]) == 5
    problem(await viewer.get("/relevance/analytics", params={"since": "2030-01-01T00:00:00Z",
                                                             "until": "2020-01-01T00:00:00Z"}), 422, "invalid-time-range")
