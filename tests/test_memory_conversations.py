"""Memory in conversations, end to end on the dev server: recall in the prompt, extraction with
structured outputs, the memory tools, scopes, and `daemonflow memory`.

What the model saw is read from the fake Ollama's request log: the system prompt of the
conversation's chat calls, and the ``format`` of the extraction calls.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from activities.memory import MemoryService
from activities.memory.extraction import extraction_schema
from models.conversation import ConversationInput
from models.events import ConversationEvent, EventsQuery, EventType
from models.memory import MemoryAdminRequest
from store.actions import ActionStore
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.temporal import daemon_settings
from tests.test_cli import daemonflow
from tests.test_conversation import wait_for
from workers.main import build_worker
from workflows.conversation import ConversationWorkflow
from workflows.memory_admin import MemoryAdminWorkflow

PI = "The user's deployment target is a Raspberry Pi 5."


def extraction(*texts: str, importance: float = 0.8) -> str:
    return json.dumps({"memories": [{"text": t, "kind": "semantic", "importance": importance} for t in texts]})


def system_prompt(request: dict) -> str:
    return request["messages"][0]["content"]


async def events_of(handle) -> list[ConversationEvent]:
    return await handle.query(ConversationWorkflow.events, EventsQuery(), result_type=list[ConversationEvent])


async def stored(handle, turn: int) -> dict | None:
    """The ``memory_stored`` event of ``turn`` once extraction has finished."""
    for event in await events_of(handle):
        if event.type == EventType.MEMORY_STORED and event.data["turn"] == turn:
            return event.data
    return None


async def memories_of(daemon, user_id: str) -> list:
    """Through the worker, which holds the embedded store open (as `daemonflow memory list` does)."""
    result = await daemon.client.execute_workflow(
        MemoryAdminWorkflow.run, args=[MemoryAdminRequest(action="list", scope="user", scope_id=user_id), None],
        id=f"memory-admin-{uuid.uuid4().hex[:8]}", task_queue=daemon.task_queue)
    return result.memories


async def test_a_fact_told_in_one_conversation_is_in_the_prompt_of_the_next(daemon, fake_ollama):
    fake_ollama.script_structured(extraction(PI))
    first = await daemon.start(user_id="alice")
    await daemon.send(first, "my deployment target is a Raspberry Pi 5")
    assert await wait_for(lambda: stored(first, 1)) == {"turn": 1, "added": 1, "updated": 0, "skipped": None}
    extract_call = fake_ollama.structured_requests()[0]
    assert extract_call["format"] == extraction_schema()
    assert extract_call["format"]["properties"]["memories"]["maxItems"] == 5
    assert "my deployment target is a Raspberry Pi 5" in extract_call["messages"][1]["content"]

    second = await daemon.start(user_id="alice")
    await daemon.send(second, "what should I compile for my deployment target?")
    prompt = system_prompt(fake_ollama.chat_requests()[-1])
    assert "## Memory" in prompt and PI in prompt
    assert "memory_store" in prompt  # how to use the memory tools
    recalled = [e.data for e in await events_of(second) if e.type == EventType.MEMORY_RECALLED]
    assert recalled == [{"turn": 1, "count": 1, "error": None}]

    # Another user asks the same: alice's memory is not theirs to see.
    other = await daemon.start(user_id="bob")
    await daemon.send(other, "what should I compile for my deployment target?")
    assert PI not in system_prompt(fake_ollama.chat_requests()[-1])


async def test_the_same_fact_twice_updates_the_memory_instead_of_adding_one(daemon, fake_ollama):
    fake_ollama.script_structured(extraction(PI, importance=0.5), extraction(PI, importance=0.9))
    handle = await daemon.start(user_id="carol")
    await daemon.send(handle, "my deployment target is a Raspberry Pi 5")
    await wait_for(lambda: stored(handle, 1))
    await daemon.send(handle, "again: it is a Raspberry Pi 5")
    assert await wait_for(lambda: stored(handle, 2)) == {"turn": 2, "added": 0, "updated": 1, "skipped": None}


async def test_an_extraction_answer_outside_the_schema_is_skipped_and_the_conversation_goes_on(daemon, fake_ollama):
    fake_ollama.script_structured('{"memories": "not a list"}')
    handle = await daemon.start(user_id="dave")
    assert (await daemon.send(handle, "hello")).reply == "echo: hello"
    result = await wait_for(lambda: stored(handle, 1))
    assert result["added"] == 0 and "does not fit the memory schema" in result["skipped"]
    assert (await daemon.send(handle, "still there?")).reply == "echo: still there?"


async def test_secrets_proposed_by_the_extractor_are_not_kept(daemon, fake_ollama):
    fake_ollama.script_structured(extraction("The user's API key: sk-abcdefghijklmnopqrstuvwx", "The user prefers Rust."))
    handle = await daemon.start(user_id="erin")
    await daemon.send(handle, "hello")
    assert (await wait_for(lambda: stored(handle, 1)))["added"] == 1
    assert [m.record.text for m in await memories_of(daemon, "erin")] == ["The user prefers Rust."]


async def test_memory_tools_run_on_the_worker_without_asking_even_with_auto_accept_off(daemon, fake_ollama):
    fake_ollama.script(
        Reply(tool_calls=[ToolCall(name="memory_store", arguments={"text": "The user's editor is Helix.",
                                                                     "kind": "semantic", "importance": 0.7})]),
        Reply(tool_calls=[ToolCall(name="memory_recall", arguments={"query": "which editor does the user use"})]),
        Reply(content="You use Helix."),
    )
    conversation_id = uuid.uuid4().hex[:12]
    handle = await daemon.start(conversation_id, user_id="frank", auto_accept=False)
    result = await daemon.send(handle, "remember that I use Helix, then tell me my editor")
    assert [(c.tool, c.decision, c.success) for c in result.tool_calls] == [
        ("memory_store", "allow", True), ("memory_recall", "allow", True)]
    tool_messages = [m.content for m in daemon.store.list_messages(conversation_id) if m.role == "tool"]
    assert tool_messages[0].startswith("stored (semantic, importance 0.70): The user's editor is Helix.")
    assert "The user's editor is Helix." in tool_messages[1]
    actions = ActionStore(daemon.store.engine).actions(conversation_id=conversation_id)
    assert {(a.tool, a.action_type, a.source) for a in actions} == {
        ("memory_store", "MEMORY", "builtin:memory"), ("memory_recall", "MEMORY", "builtin:memory")}


async def test_a_missing_embedding_model_costs_the_prompt_its_memories_not_the_turn(daemon, fake_ollama):
    fake_ollama.models.remove("all-minilm")
    handle = await daemon.start(user_id="gina")
    assert (await daemon.send(handle, "hello")).reply == "echo: hello"
    recalled = [e.data for e in await events_of(handle) if e.type == EventType.MEMORY_RECALLED]
    assert recalled[0]["count"] == 0 and "all-minilm" in recalled[0]["error"]


async def test_a_template_without_memory_neither_recalls_nor_extracts(temporal_env, temporal_address, fake_ollama, tmp_path):
    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "private.yaml").write_text("name: private\nmemory: false\nsystem_prompt: You forget everything.\n")
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url, agents_dir=agents)
    async with build_worker(temporal_env.client, settings):
        handle = await temporal_env.client.start_workflow(
            ConversationWorkflow.run, ConversationInput(agent="private"), id=f"conversation-{uuid.uuid4().hex[:12]}",
            task_queue=settings.task_queue)
        await handle.execute_update(ConversationWorkflow.send_message, {"content": "my target is a Pi"})
    assert fake_ollama.embed_requests() == [] and fake_ollama.structured_requests() == []
    assert "## Memory" not in system_prompt(fake_ollama.chat_requests()[0])


async def test_memory_cli_lists_searches_and_forgets_through_the_running_worker(daemon, fake_ollama, tmp_path: Path):
    """The test's worker holds the embedded store open, so the CLI goes through it."""
    fake_ollama.script_structured(extraction(PI, "The user prefers Rust."))
    handle = await daemon.start(user_id="hana")
    await daemon.send(handle, "my deployment target is a Raspberry Pi 5 and I like Rust")
    await wait_for(lambda: stored(handle, 1))

    def cli(*args: str):
        return daemonflow(daemon.env(), tmp_path, "memory", *args)

    run = await cli("list", "--user", "hana")
    assert run.code == 0, run.err
    assert PI in run.out and "The user prefers Rust." in run.out and "user:hana" in run.out
    run = await cli("search", "Raspberry Pi deployment", "--user", "hana", "-k", "1", "--json")
    assert run.code == 0, run.err
    found = json.loads(run.out)["memories"]
    assert [m["record"]["text"] for m in found] == [PI]
    run = await cli("forget", found[0]["record"]["id"])
    assert (run.code, run.out.strip()) == (0, "forgot 1 memory"), run.err
    run = await cli("list", "--user", "hana", "--json")
    assert [m["record"]["text"] for m in json.loads(run.out)["memories"]] == ["The user prefers Rust."]
    run = await cli("forget", "--all", "--user", "hana")
    assert (run.code, run.out.strip()) == (0, "forgot 1 memory"), run.err
    assert (await cli("list", "--user", "hana")).out.strip() == "no memories match"


async def test_memory_cli_opens_the_store_itself_when_no_worker_holds_it(fake_ollama, tmp_path: Path):
    settings = daemon_settings(tmp_path, "127.0.0.1:1", fake_ollama.url)  # no Temporal needed
    async with MemoryService.from_settings(settings) as memory:
        await memory.remember("The user lives in Lyon.", "user", "ines")
    env = {"DAEMONFLOW_VAR_DIR": str(settings.var_dir), "OLLAMA_HOST": fake_ollama.url,
           "DAEMONFLOW_TEMPORAL_ADDRESS": "127.0.0.1:1"}
    run = await daemonflow(env, tmp_path, "memory", "list", "--scope", "user", "--id", "ines")
    assert run.code == 0, run.err
    assert "The user lives in Lyon." in run.out
    run = await daemonflow(env, tmp_path, "memory", "search", "", "--user", "ines")
    assert run.code == 2 and "search needs a query text" in run.err


async def test_a_recall_that_finds_the_store_held_by_another_process_waits_for_it(daemon, fake_ollama):
    """``daemonflow memory`` may hold the embedded store for a moment before the worker first opens
    it: the recall is retried (``MemoryLocked``) instead of answering without memories (it is part of
    the turn's model call since one round trip per step: that call is retried, before it asks)."""
    holder = MemoryService.from_settings(daemon.settings)  # this test process: "another process"
    await holder.remember(PI, "user", "jules")  # and keeps the store open (the lock)
    handle = await daemon.start(user_id="jules")
    turn = asyncio.create_task(daemon.send(handle, "what should I compile for my deployment target?"))

    async def recall_failed_once():
        pending = (await handle.describe()).raw_description.pending_activities
        return [a for a in pending if a.activity_type.name == "llm.chat" and a.attempt >= 2
                and "MemoryLocked" in str(a.last_failure)]

    try:
        failed = await wait_for(recall_failed_once, interval=0.05)
        assert "open in another process" in failed[0].last_failure.message
    finally:
        await holder.close()
    assert (await turn).reply.startswith("echo:")
    recalled = [e.data for e in await events_of(handle) if e.type == EventType.MEMORY_RECALLED]
    assert recalled == [{"turn": 1, "count": 1, "error": None}]
    assert PI in system_prompt(fake_ollama.chat_requests()[-1])


async def test_pgvector_is_one_setting_away(temporal_env, temporal_address, fake_ollama, tmp_path, fresh_postgres_url):
    """The whole stack on PostgreSQL (records and memories), nothing else changed."""
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url).model_copy(
        update={"database_url": fresh_postgres_url, "memory_backend": "pgvector"})
    fake_ollama.script_structured(extraction(PI))
    client = temporal_env.client

    async def turn(text: str):
        handle = await client.start_workflow(
            ConversationWorkflow.run, ConversationInput(user_id="alice"), id=f"conversation-{uuid.uuid4().hex[:12]}",
            task_queue=settings.task_queue)
        await handle.execute_update(ConversationWorkflow.send_message, {"content": text})
        return handle

    async with build_worker(client, settings):
        first = await turn("my deployment target is a Raspberry Pi 5")
        await wait_for(lambda: stored(first, 1))
        await turn("what should I compile for my deployment target?")
    assert PI in system_prompt(fake_ollama.chat_requests()[-1])
    async with MemoryService.from_settings(settings) as memory:  # pgvector: any process may open it
        assert [r.text for r in await memory.list()] == [PI]
