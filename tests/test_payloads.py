"""Tool payloads never flood history: long arguments and outputs travel by reference, prompts fit.

The big-file test runs a real turn on the real dev server and the real sandbox: the fake Ollama
(a real HTTP server) writes a 3 MB file with ``write_file`` and reads it back with ``read_file``;
the conversation's history must grow by less than 64 KB for that turn, the tool workflows' by
little, every prompt must fit the template's budget, and the file must be whole in the workspace.
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from sqlmodel import Session, select

from activities.prompt import prompt_budget_chars
from activities.tools.catalog import BY_NAME
from activities.tools.output import ToolOutputs
from activities.memory import MemoryService
from config.policy import DEFAULT_POLICY_PATH, load_policy
from config.templates import load_template
from models.conversation import Approve
from models.payloads import INLINE_MAX_CHARS, PREVIEW_CHARS, TOOL_OUTPUT_CAP_CHARS, PayloadRef, content_bytes
from models.policy import ActionType, Decision, ToolCallContext
from models.tools import ToolResult
from store.payloads import PayloadMissing, PayloadStore
from store.tables import Payload
from store.transcript import TranscriptStore
from store.engine import make_engine
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.temporal import Daemon, daemon_settings
from tests.test_approvals import pending_of, tool_messages
from tests.test_conversation import _memory_stored, wait_for
from workflows.arguments import argument_errors
from workflows.conversation import ConversationWorkflow, args_hash
from workers.main import build_worker
from policy.engine import evaluate

BIG = "".join(f"{i:07d} the quick brown fox jumps over the lazy dog; ünïcödé ✓\n" for i in range(52_000))
"""About 3.3 MB of UTF-8 (multi-byte characters too: bytes and characters differ)."""
HISTORY_LIMIT = 64 * 1024


# --- the store: by reference, once, verified ------------------------------------------------------


def test_long_and_marker_shaped_strings_are_stored_once_and_come_back_exactly(transcript_store: TranscriptStore):
    payloads = PayloadStore(transcript_store.engine)
    forged = PayloadRef(digest="0" * 64, bytes=1, chars=1).marker()
    arguments = {"path": "a.txt", "content": BIG, "nested": [{"x": forged}], "short": "hi"}
    stored, refs = payloads.externalize("c1", arguments)
    assert stored["path"] == "a.txt" and stored["short"] == "hi"
    assert PayloadRef.parse(stored["content"]).bytes == len(BIG.encode())
    assert PayloadRef.parse(stored["content"]).chars == len(BIG)
    assert len(json.dumps(stored)) < 400  # history carries markers, not 3 MB
    assert [r.chars for r in refs] == [len(BIG), len(forged)] and refs[0].preview == BIG[:PREVIEW_CHARS]
    # A marker the model wrote itself is stored as text: it resolves to itself, never to other content.
    assert payloads.resolve("c1", stored) == arguments
    again, _ = payloads.externalize("c1", {"content": BIG})
    assert again["content"] == stored["content"]
    with Session(transcript_store.engine) as session:
        assert len(session.exec(select(Payload.id).where(Payload.conversation_id == "c1")).all()) == 2  # BIG once


def test_a_marker_is_only_good_in_its_conversation_and_for_its_exact_sizes(transcript_store: TranscriptStore):
    payloads = PayloadStore(transcript_store.engine)
    ref = payloads.put("c1", "secret of c1 " * 2000)
    with pytest.raises(PayloadMissing):
        payloads.resolve("c2", {"content": ref.marker()})
    lying = ref.model_copy(update={"bytes": 5})
    with pytest.raises(PayloadMissing, match="does not match"):
        payloads.resolve("c1", {"content": lying.marker()})
    assert payloads.get("c1", ref.digest) == "secret of c1 " * 2000


def test_outputs_are_capped_for_the_model_and_kept_whole(transcript_store: TranscriptStore):
    payloads = PayloadStore(transcript_store.engine)
    outputs = ToolOutputs(payloads)
    small = outputs.finish("c1", ToolResult(success=True, output="short"))
    assert (small.output, small.output_ref, small.truncated) == ("short", None, False)

    big = outputs.finish("c1", ToolResult(success=True, output=BIG))
    artifact = hashlib.sha256(BIG.encode()).hexdigest()
    assert big.truncated and big.artifact_id == f"sha256:{artifact}"
    assert payloads.get("c1", artifact) == BIG  # the full output, for people and the API
    shown = payloads.get("c1", big.output_ref)  # what the model is given
    assert len(shown) == TOOL_OUTPUT_CAP_CHARS and f"artifact sha256:{artifact}" in shown
    assert shown.startswith(BIG[:1000]) and shown.endswith(BIG[-1000:])
    assert big.output == shown[:PREVIEW_CHARS] and len(big.model_dump_json()) < 4000


# --- the workflow's checks see the real sizes -----------------------------------------------------


def test_schema_lengths_and_patterns_count_the_real_content():
    long_command = PayloadRef(digest="a" * 64, bytes=30_000, chars=30_000).marker()
    errors = argument_errors(BY_NAME["run_command"].parameters, {"command": long_command})
    assert errors == ["arguments.command must not be longer than 20000 characters (it has 30000)"]
    content = PayloadRef(digest="b" * 64, bytes=3_000_000, chars=2_000_000).marker()
    assert argument_errors(BY_NAME["write_file"].parameters, {"path": "x.txt", "content": content}) == []
    [error] = argument_errors(BY_NAME["write_file"].parameters, {"path": "--basetemp=.", "content": "x"})
    assert "does not match the pattern" in error and "never starts with '-'" in error


def test_the_policy_judges_the_size_of_content_that_travels_by_reference():
    policy = load_policy(None)
    eleven_mb = PayloadRef(digest="c" * 64, bytes=11 * 1024 * 1024, chars=11 * 1024 * 1024).marker()
    arguments = {"path": "big.bin", "content": eleven_mb}
    assert content_bytes(arguments, ("content", "code")) == 11 * 1024 * 1024
    assert content_bytes({"path": "a", "content": "inline"}, ("content",)) is None  # the policy measures it
    context = ToolCallContext(tool="write_file", action_type=ActionType.FILE_WRITE, arguments=arguments,
                              content_bytes=content_bytes(arguments, ("content", "code")))
    verdict = evaluate(policy, context)
    assert verdict.decision == Decision.ASK and "over the 10485760-byte limit" in verdict.reason
    small = {"path": "big.bin", "content": PayloadRef(digest="c" * 64, bytes=30_000, chars=30_000).marker()}
    allowed = ToolCallContext(tool="write_file", action_type=ActionType.FILE_WRITE, arguments=small,
                              content_bytes=content_bytes(small, ("content",)))
    assert evaluate(policy, allowed).decision == Decision.ALLOW


# --- the prompt window --------------------------------------------------------------------------


def test_the_window_fits_the_budget_and_keeps_the_question(transcript_store: TranscriptStore):
    conversation = "w1"
    bodies = [("user", "first question"), ("assistant", "first answer"), ("user", "Q" * 30_000),
              ("assistant", ""), ("tool", "A" * 30_000), ("assistant", ""), ("tool", "B" * 30_000)]
    for seq, (role, content) in enumerate(bodies, start=1):
        transcript_store.append(conversation, seq, role, content)
    budget = 12_000
    window = transcript_store.window(conversation, budget)
    assert sum(len(m.content) for m in window) <= budget
    assert [m.seq for m in window] == [3, 6, 7]  # the question and the newest output take half each
    assert len(window[0].content) == budget // 2 and "characters of this message are left out" in window[0].content
    assert len(window[2].content) == budget // 2 and "of this tool output are left out" in window[2].content
    assert window[2].content.startswith("B") and window[2].content.endswith("B")

    transcript_store.append(conversation, 8, "user", "a short new question")
    window = transcript_store.window(conversation, budget)
    assert [m.seq for m in window] == [4, 5, 6, 7, 8]  # seq 3 (30 000 characters) no longer fits
    assert window[-1].content == "a short new question"
    assert len(window[1].content) == len(window[3].content) == budget // 8  # earlier outputs: an eighth each
    assert sum(len(m.content) for m in window) <= budget
    assert transcript_store.get(conversation, 7).content == "B" * 30_000


# --- the real thing -------------------------------------------------------------------------------


def _history_bytes(description) -> int:
    """What the server counts against its history size limits."""
    return description.raw_description.workflow_execution_info.history_size_bytes


def _prompt_chars(body: dict) -> int:
    messages = body["messages"]
    calls = sum(len(json.dumps(m.get("tool_calls"))) for m in messages if m.get("tool_calls"))
    return sum(len(m.get("content") or "") for m in messages) + calls + len(json.dumps(body.get("tools") or []))


async def test_a_multi_megabyte_file_written_then_read_keeps_history_small(daemon, fake_ollama, docker_client):
    fake_ollama.script(Reply(content="hello"))
    handle = await daemon.start(agent="developer")
    conversation_id = handle.id.removeprefix("conversation-")
    await daemon.send(handle, "hi")
    await wait_for(lambda: _memory_stored(handle, 1))
    before, first_event = _history_bytes(await handle.describe()), len((await handle.fetch_history()).events)

    fake_ollama.script(
        Reply(tool_calls=[ToolCall(name="write_file", arguments={"path": "data/big.txt", "content": BIG})]),
        Reply(tool_calls=[ToolCall(name="read_file", arguments={"path": "data/big.txt", "max_bytes": 10_000_000})]),
        Reply(content="done"),
    )
    result = await daemon.send(handle, "write the big file, then read it back")
    await wait_for(lambda: _memory_stored(handle, 2), timeout=60)
    after, events = _history_bytes(await handle.describe()), (await handle.fetch_history()).events[first_event:]

    assert result.reply == "done"
    assert [(c.tool, c.decision, c.success) for c in result.tool_calls] == [
        ("write_file", "allow", True), ("read_file", "allow", True)]
    growth, fetched = after - before, sum(event.ByteSize() for event in events)
    tool_runs = [e for e in events if e.HasField("activity_task_scheduled_event_attributes")
                 and e.activity_task_scheduled_event_attributes.activity_type.name == "tools.run"]
    print(f"\nconversation history grew by {growth} bytes (server's history_size_bytes; {len(events)} events, "
          f"{fetched} bytes as fetched) for a {len(BIG.encode())}-byte write and read, the tool runs included")
    assert growth < HISTORY_LIMIT and fetched < HISTORY_LIMIT
    assert len(tool_runs) == 2 and not any(e.HasField("start_child_workflow_execution_initiated_event_attributes")
                                           for e in events)  # each call an activity of the conversation

    digest = hashlib.sha256(BIG.encode()).hexdigest()
    container = docker_client.containers.get(f"daemonflow-{conversation_id}")
    assert container.exec_run(["sha256sum", "/workspace/data/big.txt"]).output.decode().split()[0] == digest
    written, read = tool_messages(daemon, handle)
    assert written == f"wrote {len(BIG.encode())} bytes to /workspace/data/big.txt"
    assert len(read) < TOOL_OUTPUT_CAP_CHARS + 200 and f"artifact sha256:{digest}" in read
    assert read.startswith(BIG[:5000]) and BIG[-2000:] in read
    payloads = PayloadStore(daemon.store.engine)
    assert payloads.get(conversation_id, digest) == BIG  # the model's argument and the read's artifact: one row
    budget = prompt_budget_chars(load_template("developer"))
    sizes = [_prompt_chars(body) for body in fake_ollama.chat_requests()]
    assert sizes and max(sizes) <= budget, (sizes, budget)


async def test_a_large_write_waits_with_a_preview_bound_to_its_exact_content(daemon, fake_ollama):
    write = ToolCall(name="write_file", arguments={"path": "big.txt", "content": BIG})
    fake_ollama.script(Reply(tool_calls=[write]), Reply(content="written"))
    handle = await daemon.start(agent="developer", auto_accept=False)
    conversation_id = handle.id.removeprefix("conversation-")
    turn = asyncio.create_task(daemon.send(handle, "write it"))
    pending = await wait_for(lambda: pending_of(handle))
    [payload] = pending.payloads
    marker = pending.arguments["content"]
    assert marker == payload.marker() and payload.bytes == len(BIG.encode()) and payload.preview == BIG[:PREVIEW_CHARS]
    assert pending.args_hash == args_hash({"path": "big.txt", "content": marker})
    assert payload.digest == hashlib.sha256(BIG.encode()).hexdigest()  # the hash binds the content itself
    assert PayloadStore(daemon.store.engine).get(conversation_id, payload.digest) == BIG
    assert len(marker) < 200 and INLINE_MAX_CHARS < len(BIG)
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending.tool_call_id, decision="approve",
                                                              approver="ann", arguments_hash=pending.args_hash))
    result = await turn
    assert result.tool_calls[0].success and tool_messages(daemon, handle)[0].startswith(f"wrote {len(BIG.encode())}")


@pytest.mark.usefixtures("docker_client")
async def test_an_approver_reads_the_whole_content_over_http_and_with_the_cli(api, tmp_path):
    from tests.test_api import new_id, pending_for, problem, until
    from tests.test_cli import daemonflow

    operator, approver, viewer = api.http("operator"), api.http("approver"), api.http("viewer")
    content = BIG[:300_000]
    api.ollama.script(Reply(tool_calls=[ToolCall(name="write_file", arguments={"path": "big.txt", "content": content})]),
                      Reply(content="written"))
    cid = new_id("payload")
    started = await operator.post("/conversations", params={"wait": "false"}, json={
        "conversation_id": cid, "agent": "developer", "auto_accept": False, "message": "write it"})
    assert started.status_code == 202, started.text
    item = await until(lambda: pending_for(viewer, cid))
    [stored] = item["payloads"]
    assert stored["preview"] == content[:PREVIEW_CHARS] and stored["bytes"] == len(content.encode())
    assert item["arguments"]["content"] == PayloadRef.model_validate(stored).marker()

    for digest in (stored["digest"], f"sha256:{stored['digest']}"):
        whole = await viewer.get(f"/conversations/{cid}/payloads/{digest}")
        assert whole.status_code == 200 and whole.text == content
        assert whole.headers["content-type"].startswith("text/plain")
        assert whole.headers["x-content-sha256"] == hashlib.sha256(content.encode()).hexdigest()
    problem(await viewer.get(f"/conversations/{cid}/payloads/{'f' * 64}"), 404, "payload-not-found")
    problem(await viewer.get(f"/conversations/{new_id('other')}/payloads/{stored['digest']}"), 404, "payload-not-found")
    assert (await viewer.get(f"/conversations/{cid}/payloads/not-a-digest")).status_code == 422

    env = {"DAEMONFLOW_TEMPORAL_ADDRESS": api.settings.temporal_address, "DAEMONFLOW_TASK_QUEUE": api.settings.task_queue,
           "DAEMONFLOW_DATABASE_URL": api.settings.effective_database_url}
    status = await daemonflow(env, tmp_path, "status", cid)
    assert f"`daemonflow payload {cid} {stored['digest']}`" in status.out, status.out + status.err
    saved = await daemonflow(env, tmp_path, "payload", cid, stored["digest"], "--out", str(tmp_path / "seen.txt"))
    assert saved.code == 0, saved.err
    assert (tmp_path / "seen.txt").read_text(encoding="utf-8") == content
    missing = await daemonflow(env, tmp_path, "payload", cid, "0" * 64)
    assert missing.code == 1 and "no stored payload" in missing.err

    decided = await approver.post(f"/approvals/{cid}/{item['tool_call_id']}",
                                  json={"decision": "approve", "arguments_hash": item["args_hash"]})
    assert decided.status_code == 200 and decided.json()["applied"], decided.text

    async def tool_message():
        page = (await viewer.get(f"/conversations/{cid}/messages")).json()["messages"]
        return next((m for m in page if m["role"] == "tool"), None)

    assert (await until(tool_message))["content"] == f"wrote {len(content.encode())} bytes to /workspace/big.txt"


async def test_the_workflow_gives_the_policy_the_real_size_of_referenced_content(
    temporal_env, temporal_address, fake_ollama, tmp_path, docker_client
):
    """With file writes auto-accepted up to 100 000 bytes, a 3 MB write (a marker in history) asks
    and a 60 000-byte one (a marker too) runs by itself: the size judged is the content's."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY_PATH.read_text().replace("max_bytes: 10485760", "max_bytes: 100000"))
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url, policy_file=policy)
    memory = MemoryService.from_settings(settings)
    medium = "m" * 60_000
    fake_ollama.script(
        Reply(tool_calls=[ToolCall(name="write_file", arguments={"path": "medium.txt", "content": medium}),
                          ToolCall(name="write_file", arguments={"path": "big.txt", "content": BIG})]),
        Reply(content="ok"),
    )
    async with build_worker(temporal_env.client, settings, memory=memory) as worker:
        daemon = Daemon(client=temporal_env.client, settings=settings, store=TranscriptStore(
            make_engine(settings.effective_database_url)), worker=worker)
        handle = await daemon.start(agent="developer")
        turn = asyncio.create_task(daemon.send(handle, "write both"))
        pending = await wait_for(lambda: pending_of(handle))
        assert pending.tool == "write_file" and pending.arguments["path"] == "big.txt"
        assert "over the 100000-byte limit" in pending.reason
        await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending.tool_call_id, decision="deny"))
        result = await turn
    await memory.close()
    assert [(c.decision, c.success) for c in result.tool_calls] == [("allow", True), ("deny", False)]
