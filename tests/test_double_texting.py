"""Double-texting (issue 16): a message sent while a turn runs is queued (``enqueue``, the default),
refused with the running turn (``reject``, 409), or interrupts the model and is answered next
(``interrupt``). Over real HTTP (API process, worker, Temporal dev server, fake Ollama streaming
slowly), and through the plain `temporal` CLI."""

from __future__ import annotations

import asyncio
import json

from tests.fakes.ollama import Reply
from tests.fixtures.api import ApiStack
from tests.streaming_support import read_frames
from tests.test_api import new_id, polled_status, problem, until
from tests.test_streaming import LONG, tokens
from tests.test_temporal_cli import temporal

SLOW_CHUNK_S = 0.1
"""40 chunks: the first reply takes 4 s to write, time enough to send a second message meanwhile."""


async def _start_a_long_turn(api: ApiStack, prefix: str, **options) -> tuple[str, str]:
    """A conversation whose first turn is being written slowly; (conversation id, turn id)."""
    api.ollama.chunk_delay_s = SLOW_CHUNK_S
    api.ollama.script(Reply(content=LONG))
    http = api.http("operator")
    cid = new_id(prefix)
    created = await http.post("/conversations", params={"wait": "false"},
                              json={"conversation_id": cid, "message": "first", **options})  # fmt: skip
    assert created.status_code == 202, created.text
    await asyncio.wait_for(read_frames(api.http("viewer"), cid, lambda f: len(tokens(f)) >= 1), 60)
    return cid, created.json()["turn_id"]


async def test_enqueue_answers_both_in_order(api: ApiStack) -> None:
    cid, first = await _start_a_long_turn(api, "dt-enqueue")
    http = api.http("operator")
    second = await http.post(f"/conversations/{cid}/messages", json={"content": "second"})
    assert second.status_code == 200, second.text
    assert second.json()["turn"] == 2 and second.json()["reply"] == "echo: second"
    assert (await http.get(f"/conversations/{cid}/turns/{first}")).json()["result"]["reply"] == LONG


async def test_reject_refuses_a_message_while_a_turn_runs_with_that_turn(api: ApiStack) -> None:
    cid, first = await _start_a_long_turn(api, "dt-reject", double_texting="reject")
    http = api.http("operator")
    refused = problem(await http.post(f"/conversations/{cid}/messages", json={"content": "too soon"}), 409, "turn-running")
    assert refused["running_turn"] == {"turn": 1, "state": "thinking", "message": "first"}
    await until(lambda: _idle(http, cid))
    later = await http.post(f"/conversations/{cid}/messages", json={"content": "now"})
    assert later.status_code == 200 and later.json()["reply"] == "echo: now"
    kept = [(m["role"], m["content"]) for m in (await http.get(f"/conversations/{cid}/messages")).json()["messages"]]
    assert ("user", "too soon") not in kept  # refused means never queued


async def test_interrupt_set_by_update_keeps_the_partial_reply_and_answers_the_new_message(api: ApiStack) -> None:
    cid, first = await _start_a_long_turn(api, "dt-interrupt")
    http = api.http("operator")
    changed = await http.put(f"/conversations/{cid}/double-texting", json={"policy": "interrupt"})
    assert changed.status_code == 200 and changed.json() == {"conversation_id": cid, "double_texting": "interrupt"}
    newer = await http.post(f"/conversations/{cid}/messages", json={"content": "stop, this instead"})
    assert newer.status_code == 200, newer.text
    assert newer.json()["turn"] == 2 and newer.json()["reply"] == "echo: stop, this instead"

    interrupted = (await http.get(f"/conversations/{cid}/turns/{first}")).json()["result"]["reply"]
    assert interrupted.endswith("[interrupted]") and interrupted.startswith("word0")
    partial = interrupted.removesuffix("\n\n[interrupted]")
    assert LONG.startswith(partial) and len(partial) < len(LONG)  # cut while it was being written
    stored = [(m["role"], m["content"]) for m in (await http.get(f"/conversations/{cid}/messages")).json()["messages"]]
    assert stored == [("user", "first"), ("assistant", interrupted), ("user", "stop, this instead"),
                      ("assistant", "echo: stop, this instead")]  # fmt: skip
    assert (await http.get(f"/conversations/{cid}")).json()["status"]["double_texting"] == "interrupt"
    problem(await http.put(f"/conversations/{cid}/double-texting", json={"policy": "sometimes"}), 422)


async def test_the_policy_from_the_temporal_cli(api: ApiStack) -> None:
    http = api.http("operator")
    cid = new_id("dt-cli")
    assert (await http.post("/conversations", json={"conversation_id": cid})).status_code == 201
    address = api.settings.temporal_address
    out = await temporal(address, "workflow", "update", "execute", "--workflow-id", f"conversation-{cid}",
                         "--name", "set_double_texting", "--input", '{"policy":"reject"}', "--output", "json")  # fmt: skip
    assert "reject" in out
    status = json.loads(await temporal(address, "workflow", "query", "--workflow-id", f"conversation-{cid}",
                                       "--name", "status", "--output", "json"))  # fmt: skip
    assert status["queryResult"][0]["double_texting"] == "reject"


async def _idle(http, cid: str) -> bool:
    status = await polled_status(http, cid)
    return status is not None and status["state"] == "idle"
