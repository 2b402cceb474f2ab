"""Every endpoint × every role (and no key, and a wrong key), over real HTTP.

A role that lacks the permission gets 403; no key or an unknown key gets 401 with
``WWW-Authenticate: Bearer``; a role that has it gets past auth to the endpoint's real answer.
Mutating calls aim at a conversation that does not exist, so an allowed call answers 404 — proof
that it passed auth without ending anything another case needs; reads use a real, finished
conversation, and the monitoring report of one real run. The matrix below is the one documented in
docs/ARCHITECTURE.md §7.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import httpx
import pytest

from tests.fixtures.api import ApiStack
from tests.monitoring_support import monitoring_round

ROLES = ("viewer", "operator", "approver", "admin")
READ = set(ROLES)
OPERATE = {"operator", "admin"}
DECIDE = {"approver", "admin"}
CONFIGURE = {"admin"}
FEEDBACK = {"operator", "approver", "admin"}
PUBLIC = None


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    allowed: set[str] | None
    """Roles allowed; None: public (no key needed)."""
    ok: int
    body: dict | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


REAL = "{real}"
REAL_CHANNEL = "{real_channel}"
GHOST = "{ghost}"
CALLS = [
    Call("GET", "/conversations", READ, 200),
    Call("POST", "/conversations", OPERATE, 201, {"agent": "assistant"}),
    Call("GET", f"/conversations/{REAL}", READ, 200),
    Call("GET", f"/conversations/{REAL}/messages", READ, 200),
    Call("GET", f"/conversations/{REAL}/events", READ, 200),
    Call("GET", f"/conversations/{REAL}/turns/turn-unknown", READ, 404),
    Call("GET", f"/conversations/{REAL}/payloads/{'0' * 64}", READ, 404),
    Call("POST", f"/conversations/{GHOST}/messages", OPERATE, 404, {"content": "hi"}),
    Call("POST", f"/conversations/{GHOST}/pause", OPERATE, 404, {"reason": "x"}),
    Call("POST", f"/conversations/{GHOST}/resume", OPERATE, 404),
    Call("POST", f"/conversations/{GHOST}/inject", OPERATE, 404, {"content": "x"}),
    Call("POST", f"/conversations/{GHOST}/end", OPERATE, 404),
    Call("PUT", f"/conversations/{GHOST}/auto-accept", OPERATE, 404, {"enabled": False}),
    Call("PUT", f"/conversations/{GHOST}/double-texting", OPERATE, 404, {"policy": "reject"}),
    Call("GET", "/approvals", READ, 200),
    Call("POST", f"/approvals/{GHOST}/1-0", DECIDE, 404, {"decision": "approve"}),
    Call("GET", "/agents", READ, 200),
    Call("GET", "/health", READ, 200),
    Call("GET", "/monitoring/report", READ, 200),
    Call("GET", "/monitoring/alerts", READ, 200),
    Call("GET", "/monitoring/trends", READ, 200),
    Call("GET", "/monitoring/trends/7d", READ, 200),
    Call("GET", "/analytics/agents/developer", READ, 200),
    Call("GET", "/analytics/snapshots", READ, 200),
    Call("GET", "/analytics/snapshots/2147483647", READ, 404),
    Call("GET", "/optimisations", READ, 200),
    Call("GET", "/optimisations/2147483647", READ, 404),
    Call("POST", "/optimisations/2147483647/revert", OPERATE, 404, {"reason": "matrix"}),
    Call("GET", "/channels", READ, 200),
    Call("POST", "/channels", OPERATE, 201, {"agents": ["assistant"]}),
    Call("GET", f"/channels/{REAL_CHANNEL}", READ, 200),
    Call("GET", f"/channels/{REAL_CHANNEL}/messages", READ, 200),
    Call("GET", f"/channels/{REAL_CHANNEL}/events", READ, 200),
    Call("GET", f"/channels/{REAL_CHANNEL}/scores", READ, 200),
    Call("GET", f"/channels/{REAL_CHANNEL}/posts/post-unknown", READ, 404),
    Call("POST", f"/channels/{GHOST}/posts", OPERATE, 404, {"content": "hi"}),
    Call("POST", f"/channels/{GHOST}/pause", OPERATE, 404, {"reason": "x"}),
    Call("POST", f"/channels/{GHOST}/resume", OPERATE, 404),
    Call("POST", f"/channels/{GHOST}/inject", OPERATE, 404, {"content": "x"}),
    Call("POST", f"/channels/{GHOST}/end", OPERATE, 404),
    Call("POST", "/relevance/calculate", READ, 200, {"content": "hello there", "agents": ["assistant"]}),
    Call("GET", "/relevance/scores/developer", READ, 200),
    Call("GET", "/relevance/analytics", READ, 200),
    Call("GET", "/relevance/thresholds", READ, 200),
    Call("PUT", "/relevance/thresholds", CONFIGURE, 422, {"observe": 0.9, "intervene": 0.1, "high_priority": 0.5}),
    Call("POST", "/relevance/feedback", FEEDBACK, 404, {"score_id": 2**62, "feedback": "useful"}),
    # task plans (issue 15)
    Call("GET", "/plans", READ, 200),
    Call("POST", "/plans", OPERATE, 201, {"tasks": [{"id": "a", "prompt": "matrix"}]}),
    Call("GET", f"/plans/{GHOST}", READ, 404),
    Call("POST", f"/plans/{GHOST}/tasks", OPERATE, 404, {"tasks": [{"id": "b", "prompt": "x"}]}),
    Call("POST", f"/plans/{GHOST}/tasks/a/priority", OPERATE, 404, {"priority": "high"}),
    Call("POST", f"/plans/{GHOST}/cancel", OPERATE, 404, {"reason": "x"}),
    Call("POST", f"/plans/{GHOST}/pause", OPERATE, 404, {"reason": "x"}),
    Call("POST", f"/plans/{GHOST}/resume", OPERATE, 404),
    # private messages, collaboration, per-agent control, archives, notifications (issue 14)
    Call("GET", "/messages", READ, 200),
    Call("POST", "/messages", OPERATE, 422, {"to": "nobody-agent", "content": "hi"}),
    Call("GET", "/messages/m-unknown", READ, 404),
    Call("POST", "/messages/m-unknown/input", OPERATE, 404, {"content": "x"}),
    Call("GET", "/analytics/collaboration", READ, 200),
    Call("POST", "/agents/nobody-agent/pause", OPERATE, 404, {"reason": "matrix"}),
    Call("POST", "/agents/nobody-agent/resume", OPERATE, 404),
    Call("POST", "/agents/nobody-agent/tasks", OPERATE, 404, {"content": "x"}),
    Call("GET", "/agents/nobody-agent/debug", READ, 404),
    Call("GET", "/archives", READ, 200),
    Call("GET", "/notifications", READ, 200),
    Call("GET", "/metrics", PUBLIC, 200),
    Call("GET", "/openapi.json", PUBLIC, 200),
    Call("GET", "/docs", PUBLIC, 200),
    Call("GET", "/ui/", PUBLIC, 200),
]
WHO = (*ROLES, "no-key", "wrong-key")


@pytest.fixture(scope="module")
async def finished_conversation(api_stack: ApiStack) -> str:
    """A conversation with one turn, ended: reads answer 200 and its event stream closes by itself."""
    cid = f"matrix-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=api_stack.url, headers=api_stack.headers("admin"), timeout=60) as http:
        assert (await http.post("/conversations", json={"conversation_id": cid, "message": "hi"})).status_code == 201
        assert (await http.post(f"/conversations/{cid}/end")).status_code == 202
        for _ in range(300):
            if (await http.get(f"/conversations/{cid}")).json()["execution"] == "completed":
                break
            await asyncio.sleep(0.1)
    return cid


@pytest.fixture(scope="module")
async def finished_channel(api_stack: ApiStack) -> str:
    """A channel without posts, ended: reads answer 200 and its event stream closes by itself."""
    cid = f"matrix-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(base_url=api_stack.url, headers=api_stack.headers("admin"), timeout=60) as http:
        assert (await http.post("/channels", json={"channel_id": cid, "agents": ["assistant"]})).status_code == 201
        assert (await http.post(f"/channels/{cid}/end")).status_code == 202
        for _ in range(300):
            if (await http.get(f"/channels/{cid}")).json()["execution"] == "completed":
                break
            await asyncio.sleep(0.1)
    return cid


@pytest.fixture(scope="module")
async def monitoring_report(api_stack: ApiStack) -> None:
    """One monitoring run on the stack's worker, so ``GET /monitoring/report`` has a report (200)."""
    await monitoring_round(api_stack.client, api_stack.settings)


def test_every_endpoint_is_in_the_matrix(api_stack: ApiStack) -> None:
    """A new endpoint must be added to CALLS (and so to the documented matrix)."""
    schema = httpx.get(f"{api_stack.url}/openapi.json").json()
    documented = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    covered = {(c.method, _templated(c.path)) for c in CALLS}
    assert documented <= covered, f"not in the auth matrix: {sorted(documented - covered)}"


def _templated(path: str) -> str:
    """A call's path as the OpenAPI document writes it."""
    if path.startswith("/plans"):  # task plans (issue 15)
        return path.replace(GHOST, "{plan_id}").replace("/tasks/a/", "/tasks/{task_id}/")
    if path.startswith("/channels"):
        return (path.replace(REAL_CHANNEL, "{channel_id}").replace(GHOST, "{channel_id}")
                .replace("post-unknown", "{post_id}"))  # fmt: skip
    return (path.replace(REAL, "{conversation_id}").replace(GHOST, "{conversation_id}")
            .replace("turn-unknown", "{turn_id}").replace("/1-0", "/{tool_call_id}")
            .replace("/agents/developer", "/agents/{agent}").replace("/scores/developer", "/scores/{agent}")
            .replace("/agents/nobody-agent", "/agents/{agent}").replace("/messages/m-unknown", "/messages/{message_id}")
            .replace("/" + "0" * 64, "/{digest}").replace("/snapshots/2147483647", "/snapshots/{snapshot_id}")
            .replace("/optimisations/2147483647", "/optimisations/{hint_id}"))  # fmt: skip


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("call", CALLS, ids=str)
@pytest.mark.usefixtures("monitoring_report")
async def test_auth_matrix(api: ApiStack, finished_conversation: str, finished_channel: str, call: Call, who: str) -> None:
    headers = {}
    if who in ROLES:
        headers = api.headers(who)
    elif who == "wrong-key":
        headers = {"Authorization": f"Bearer not-a-key-{uuid.uuid4().hex}"}
    path = (call.path.replace(REAL_CHANNEL, finished_channel).replace(REAL, finished_conversation)
            .replace(GHOST, f"ghost-{uuid.uuid4().hex[:8]}"))  # fmt: skip
    async with httpx.AsyncClient(base_url=api.url, headers=headers, timeout=60) as http:
        response = await http.request(call.method, path, json=call.body)

    if call.allowed is PUBLIC:
        assert response.status_code == call.ok, response.text
        return
    if who in ("no-key", "wrong-key"):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"].startswith("application/problem+json")
        return
    if who in call.allowed:
        assert response.status_code == call.ok, response.text
    else:
        assert response.status_code == 403, response.text
        detail = response.json()["detail"]
        assert who in detail and all(role in detail for role in call.allowed)
