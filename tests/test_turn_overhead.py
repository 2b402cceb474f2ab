"""Turns that cost little more than Temporal itself (issue 17 points 2–4), on a real dev server,
real SQLite/PostgreSQL and the fake Ollama: what a turn sends, writes and records, and that
nothing is lost, written twice or hidden on the way."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.llm import LlmActivities
from activities.memory import MemoryService
from activities.memory.turn_batches import turn_groups
from config.templates import load_template
from control.conversation_stream import ConversationStream
from models.conversation import Approve, ConversationInput, End, SendMessage, conversation_workflow_id
from models.events import ConversationEvent, EventsQuery, EventType
from models.llm import ChatRequest
from models.memory import MemoryScope, NewMemory, StoreTurnMemories
from models.prompt_config import PromptConfig, prompt_ref
from models.tools import ActionRecord
from models.transcript import AppendMessage
from models.turn_writes import TurnWrites
from store.actions import ActionStore
from store.engine import make_engine
from store.tables import Message, Payload
from store.transcript import TranscriptStore
from store.turn_writes import TurnWriter
from tests.fakes.ollama import Reply, ToolCall
from tests.test_approvals import tool_messages
from tests.fixtures.temporal import daemon_settings
from tests.test_conversation import _memory_stored, wait_for
from workers.main import build_worker
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow

ALLOW_ECHO = [{"id": "allow-echo", "decision": "allow", "tools": ["run_command"], "command": ["echo *"]}]


async def scheduled(handle) -> list:
    """The conversation's scheduled activities as (type, id, input JSON, summary), in order."""
    history = await handle.fetch_history()
    found = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            summary = json.loads(event.user_metadata.summary.data) if event.HasField("user_metadata") else ""
            inputs = [json.loads(p.data) for p in attributes.input.payloads]
            found.append((attributes.activity_type.name, attributes.activity_id, inputs, summary, event.ByteSize()))
    return found


async def events_of(handle, kind: EventType) -> list[ConversationEvent]:
    events = await handle.query(ConversationWorkflow.events, EventsQuery(limit=200), result_type=list[ConversationEvent])
    return [e for e in events if e.type == kind]


# --- one round trip per model step ---------------------------------------------------------------


async def test_a_turn_is_one_activity_that_writes_recalls_and_answers(daemon, fake_ollama):
    fake_ollama.min_duration_s = 2.0  # not a quick model: every step is an activity (workflows/model_step.py)
    handle = await daemon.start(user_id="alice", memory_extraction_every=100, memory_extraction_delay_s=3600)
    conversation_id = handle.id.removeprefix("conversation-")
    first = await daemon.send(handle, "hello")
    second = await daemon.send(handle, "again")

    activities = await scheduled(handle)
    assert [kind for kind, *_ in activities] == ["transcript.open", "llm.chat", "llm.chat"]
    (_, _, [one], _, _), (_, _, [two], _, two_bytes) = activities[1:]
    assert one["template"] is None and one["prompt"] and one["prompt_ref"] == prompt_ref(one["prompt"])
    assert two["prompt"] is None and two["prompt_ref"] == one["prompt_ref"]  # the template crossed history once
    assert [m["content"] for m in one["writes"]["messages"]] == ["hello"] and one["recall"]["seq"] == 1
    assert two_bytes < 1024, two_bytes
    assert [(m.seq, m.role, m.content) for m in daemon.store.list_messages(conversation_id)] == [
        (1, "user", "hello"), (2, "assistant", first.reply), (3, "user", "again"), (4, "assistant", second.reply)]
    recalled = await events_of(handle, EventType.MEMORY_RECALLED)
    assert [e.data["turn"] for e in recalled] == [1, 2] and all(e.data["error"] is None for e in recalled)
    assert len(fake_ollama.embed_requests()) == 2  # one query embedding per turn, inside llm.chat


async def test_a_worker_without_the_prompt_config_asks_for_it_again(daemon, fake_ollama):
    handle = await daemon.start(memory_extraction_every=100, memory_extraction_delay_s=3600)
    conversation_id = handle.id.removeprefix("conversation-")
    await daemon.send(handle, "one")
    [ref] = [inputs[0]["prompt_ref"] for kind, _, inputs, _, _ in await scheduled(handle) if kind == "llm.chat"]
    with daemon.store.engine.begin() as connection:  # the stored copy is gone; a new worker has no cached one
        connection.execute(delete(Payload).where(Payload.conversation_id == conversation_id, Payload.digest == ref))
    request = ChatRequest(conversation_id=conversation_id, turn=2, reply_seq=3, upto_seq=2, now=datetime.now(UTC),
                          model="llama3.2", prompt_ref=ref)
    with pytest.raises(ApplicationError) as missing:
        await ActivityEnvironment().run(LlmActivities(daemon.store, daemon.settings).chat, request)
    assert missing.value.type == "PromptConfigMissing" and missing.value.non_retryable
    assert daemon.store.get(conversation_id, 3) is None  # refused before anything was written or asked


async def test_the_workflow_resends_the_prompt_config_a_worker_lacks(temporal_env, temporal_address, fake_ollama, tmp_path):
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    client = temporal_env.client
    conversation_id = f"resend-{uuid.uuid4().hex[:8]}"
    fake_ollama.min_duration_s = 2.0  # not a quick model: every step is an activity, its input in history
    # One process, one owner of the embedded memory store (its lock): both workers share it.
    async with MemoryService.from_settings(settings) as memory:
        async with build_worker(client, settings, memory=memory):
            handle = await client.start_workflow(
                ConversationWorkflow.run, ConversationInput(conversation_id=conversation_id, memory_extraction_every=100),
                id=conversation_workflow_id(conversation_id), task_queue=settings.task_queue)
            await handle.execute_update(ConversationWorkflow.send_message, SendMessage(content="one"))
        store = TranscriptStore(make_engine(settings.effective_database_url))
        with store.engine.begin() as connection:
            connection.execute(delete(Payload).where(Payload.conversation_id == conversation_id))
        async with build_worker(client, settings, memory=memory):  # a new worker: no prompt config cached or stored
            reply = await handle.execute_update(ConversationWorkflow.send_message, SendMessage(content="two"))
    assert reply.reply == "echo: two"
    chats = [inputs[0] for kind, _, inputs, _, _ in await scheduled(handle) if kind == "llm.chat"]
    assert [bool(c["prompt"]) for c in chats] == [True, False, True]  # sent, by digest, refused, sent again
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(Payload).where(
            Payload.conversation_id == conversation_id)).scalar_one() == 1


# --- tool calls ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("docker_client")
async def test_a_tool_call_is_an_activity_and_its_rows_travel_with_the_next_model_call(daemon, fake_ollama):
    fake_ollama.script(
        Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo hi"}),
                          ToolCall(name="run_command", arguments={"command": "ls -a"})]),
        Reply(content="done"),
    )
    handle = await daemon.start(agent="developer", policy=ALLOW_ECHO, memory_extraction_every=100,
                                memory_extraction_delay_s=3600)
    conversation_id = handle.id.removeprefix("conversation-")
    turn = asyncio.create_task(daemon.send(handle, "work"))
    await wait_for(lambda: _pending(handle, "2-1"))
    # Before waiting for a person, the first call's audit row and tool message were written.
    assert [a.tool_call_id for a in ActionStore(daemon.store.engine).actions(conversation_id=conversation_id)] == ["2-0"]
    assert tool_messages(daemon, handle) == ["hi\n\n[exit code 0]"]
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id="2-1", decision="deny", approver="bob"))
    result = await turn
    assert [(c.tool, c.decision) for c in result.tool_calls] == [("run_command", "allow"), ("run_command", "deny")]

    activities = await scheduled(handle)
    assert [(kind, ident) for kind, ident, *_ in activities if kind != "transcript.open"] == [
        ("llm.chat", "2"), ("tools.run", "tool-2-0"), ("transcript.write", "4"), ("llm.chat", "5")]
    [(_, _, _, summary, _)] = [a for a in activities if a[0] == "tools.run"]
    assert summary == "run_command `echo hi`"
    children = [e for e in (await handle.fetch_history()).events
                if e.HasField("start_child_workflow_execution_initiated_event_attributes")]
    assert not children
    [last_chat] = [inputs[0] for kind, ident, inputs, *_ in activities if ident == "5"]
    assert [a["tool_call_id"] for a in last_chat["writes"]["actions"]] == ["2-1"]  # the denied call's row
    audit = ActionStore(daemon.store.engine).actions(conversation_id=conversation_id)
    assert [(a.tool_call_id, a.decision, a.source) for a in audit] == [
        ("2-0", "allow", "rule:allow-echo"), ("2-1", "deny", "approver:bob")]


async def _pending(handle, tool_call_id):
    status = await handle.query(ConversationWorkflow.status)
    return any(p.tool_call_id == tool_call_id for p in status.pending_approvals)


# --- memory extraction ---------------------------------------------------------------------------


async def test_extraction_waits_for_a_quiet_moment_or_a_few_turns_and_runs_before_the_end(daemon, fake_ollama):
    fake_ollama.script_structured(
        '{"memories": [{"text": "The user works in Lyon.", "kind": "semantic"}]}',
        '{"memories": [{"text": "The user drinks tea.", "kind": "semantic"}]}',
        '{"memories": [{"text": "The user owns a Pi 5.", "kind": "semantic"}]}',
    )
    handle = await daemon.start(user_id="zoe", memory_extraction_every=3, memory_extraction_delay_s=0.5)
    for text in ("I work in Lyon", "I drink tea", "I have a Pi 5"):  # back to back: the third fills the backlog
        await daemon.send(handle, text)
    [batch] = await wait_for(lambda: events_of(handle, EventType.MEMORY_STORED))
    assert batch.data["turn"] == 3 and batch.data["turns"] == 3 and batch.data["added"] == 1
    [request] = fake_ollama.structured_requests()
    shown = request["messages"][-1]["content"]
    assert all(said in shown for said in ("I work in Lyon", "I drink tea", "I have a Pi 5"))  # one call, three turns

    await daemon.send(handle, "bye for now")
    await wait_for(lambda: _memory_stored(handle, 4))  # alone, once the conversation was quiet for 0.5 s
    await daemon.send(handle, "one more thing")
    await handle.signal(ConversationWorkflow.end, End(reason="done"))
    await handle.result()
    stored = [e.data for e in await events_of(handle, EventType.MEMORY_STORED)]
    assert [d["turn"] for d in stored] == [3, 4, 5]  # the last turn before the conversation closed
    assert len(fake_ollama.structured_requests()) == 3


async def test_a_busy_conversation_never_waits_for_extraction(daemon, fake_ollama):
    fake_ollama.script_structured(Reply(content='{"memories": []}', delay_s=5.0))  # a slow extraction
    handle = await daemon.start(memory_extraction_every=1, memory_extraction_delay_s=3600)
    await daemon.send(handle, "first")
    await wait_for(lambda: _structured_asked(fake_ollama))  # the first turn is being read…
    await daemon.send(handle, "second")  # …and the second is answered meanwhile
    assert not await _memory_stored(handle, 1)
    await wait_for(lambda: _memory_stored(handle, 1), timeout=30)


async def test_continue_as_new_hands_the_backlog_to_the_next_run_instead_of_extracting_first(daemon, fake_ollama):
    fake_ollama.script_structured('{"memories": [{"text": "The user works in Lyon.", "kind": "semantic"}]}')
    handle = await daemon.start(user_id="zoe", turns_per_run=2, memory_extraction_every=5, memory_extraction_delay_s=3600)
    first_run = (await handle.describe()).run_id
    for text in ("I work in Lyon", "I drink tea", "I have a Pi 5"):  # back to back, across the run's end
        await daemon.send(handle, text)
    first = daemon.client.get_workflow_handle(handle.id, run_id=first_run)
    assert [kind for kind, *_ in await scheduled(first)] == ["transcript.open", "llm.chat", "llm.chat"]  # no extraction
    latest = daemon.client.get_workflow_handle(handle.id)
    assert (await latest.describe()).run_id != first_run
    await latest.signal(ConversationWorkflow.end, End(reason="done"))
    await latest.result()
    [batch] = [e.data for e in await events_of(latest, EventType.MEMORY_STORED)]
    assert (batch["turn"], batch["turns"], batch["added"]) == (3, 3, 1)  # the carried turns with this run's
    [request] = fake_ollama.structured_requests()
    shown = request["messages"][-1]["content"]
    assert all(said in shown for said in ("I work in Lyon", "I drink tea", "I have a Pi 5"))


async def test_an_extraction_running_when_the_run_ends_is_waited_for_not_repeated(daemon, fake_ollama):
    fake_ollama.script_structured(Reply(content='{"memories": []}', delay_s=1.0), '{"memories": []}')
    handle = await daemon.start(turns_per_run=1, memory_extraction_every=1, memory_extraction_delay_s=3600)
    first_run = (await handle.describe()).run_id
    await daemon.send(handle, "first")  # read at once (every turn); the run ends once it is read
    first = daemon.client.get_workflow_handle(handle.id, run_id=first_run)
    await wait_for(lambda: _closed(first))
    assert [kind for kind, *_ in await scheduled(first)] == ["transcript.open", "llm.chat", "memory.store"]
    latest = daemon.client.get_workflow_handle(handle.id)
    await daemon.send(latest, "second")
    await wait_for(lambda: _memory_stored(latest, 2))
    assert [e.data["turn"] for e in await events_of(latest, EventType.MEMORY_STORED)] == [1, 2]
    assert len(fake_ollama.structured_requests()) == 2


async def _closed(handle) -> bool:
    return (await handle.describe()).status.name != "RUNNING"


async def _structured_asked(fake) -> bool:
    return bool(fake.structured_requests())


def _message(seq: int, role: str, content: str) -> Message:
    return Message(conversation_id="c", seq=seq, role=role, content=content)


def test_turns_are_read_together_while_they_fit_one_extraction():
    from activities.memory.extraction import TURN_CHARS  # noqa: PLC0415

    long = "x" * (TURN_CHARS - 30)  # fits alone with its answer, not with a turn beside it
    messages = [_message(1, "user", "a"), _message(2, "assistant", "b"), _message(3, "user", long),
                _message(4, "assistant", "c"), _message(5, "user", "d"), _message(6, "assistant", "e")]
    request = StoreTurnMemories(conversation_id="c", turn=7, from_seq=1, upto_seq=6, agent="a", turn_starts=[1, 3, 5])
    groups = [([m.seq for m in group], turn) for group, turn in turn_groups(messages, request)]
    assert groups == [([1, 2], 5), ([3, 4], 6), ([5, 6], 7)]  # the long turn alone; none cut for the others
    short = [_message(1, "user", "a"), _message(2, "assistant", "b"), _message(3, "user", "c")]
    together = StoreTurnMemories(conversation_id="c", turn=2, from_seq=1, upto_seq=3, agent="a", turn_starts=[1, 3])
    assert [([m.seq for m in g], t) for g, t in turn_groups(short, together)] == [([1, 2, 3], 2)]
    single = StoreTurnMemories(conversation_id="c", turn=9, from_seq=1, upto_seq=3, agent="a")
    assert [t for _, t in turn_groups(short, single)] == [9]


# --- local model steps (workflows/model_step.py) ---------------------------------------------------


def _model_steps(history) -> tuple[int, int]:
    """(llm.chat activities, local activity markers) in a run's history."""
    activities = sum(e.activity_task_scheduled_event_attributes.activity_type.name == "llm.chat" for e in history.events
                     if e.HasField("activity_task_scheduled_event_attributes"))  # fmt: skip
    local = sum(e.marker_recorded_event_attributes.marker_name == "core_local_activity" for e in history.events
                if e.HasField("marker_recorded_event_attributes"))  # fmt: skip
    return activities, local


async def test_a_quick_models_next_steps_run_inside_the_workflow_task(daemon, fake_ollama):
    handle = await daemon.start(user_id="alice", memory_extraction_every=100, memory_extraction_delay_s=3600)
    conversation_id = handle.id.removeprefix("conversation-")
    replies = [(await daemon.send(handle, text)).reply for text in ("one", "two", "three")]
    assert replies == ["echo: one", "echo: two", "echo: three"]
    history = await handle.fetch_history()
    assert _model_steps(history) == (1, 2)  # the first step learns the model is quick; the next two are local
    assert [(m.seq, m.content) for m in daemon.store.list_messages(conversation_id)] == [
        (1, "one"), (2, "echo: one"), (3, "two"), (4, "echo: two"), (5, "three"), (6, "echo: three")]
    recalled = await events_of(handle, EventType.MEMORY_RECALLED)
    assert [e.data["turn"] for e in recalled] == [1, 2, 3] and all(e.data["error"] is None for e in recalled)
    assert len(fake_ollama.embed_requests()) == 3 and len(fake_ollama.chat_requests()) == 3
    assert len(daemon.store.usage(conversation_id)) == 3
    from tests.test_replay import replayer  # noqa: PLC0415 - the replay test's replayer, one definition

    await replayer().replay_workflow(history)


async def test_a_slow_model_or_a_watched_stream_keeps_the_steps_activities(daemon, fake_ollama):
    fake_ollama.min_duration_s = 2.0  # the model reports two seconds a call
    slow = await daemon.start(memory_extraction_every=100, memory_extraction_delay_s=3600)
    for text in ("one", "two"):
        await daemon.send(slow, text)
    assert _model_steps(await slow.fetch_history()) == (2, 0)

    fake_ollama.min_duration_s = 0.0
    watched = await daemon.start(memory_extraction_every=100, memory_extraction_delay_s=3600)
    await daemon.send(watched, "one")
    stream = ConversationStream(daemon.client, watched.id, timedelta(seconds=30))
    follower = asyncio.create_task(_drain(stream.follow(0)))
    await wait_for(lambda: _watched(watched))
    reply = await daemon.send(watched, "two")  # a viewer sees its tokens: an activity, which can publish them
    follower.cancel()
    assert reply.reply == "echo: two" and _model_steps(await watched.fetch_history()) == (2, 0)


async def test_a_local_step_that_fails_is_retried_and_one_refused_fails_the_turn(daemon, fake_ollama):
    handle = await daemon.start(memory_extraction_every=100, memory_extraction_delay_s=3600)
    await daemon.send(handle, "one")
    fake_ollama.script(Reply(error="overloaded", status=503))
    assert (await daemon.send(handle, "two")).reply == "echo: two"  # the local activity's own retry
    fake_ollama.script(Reply(error="bad request", status=400))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await daemon.send(handle, "three")
    assert "bad request" in str(refused.value.cause)
    status = await handle.query(ConversationWorkflow.status)
    assert status.last_error and "bad request" in status.last_error
    assert _model_steps(await handle.fetch_history())[1] >= 2


async def _drain(items) -> None:
    async for _ in items:
        pass


async def _watched(handle) -> bool:
    return await handle.query("stream_watched")


# --- visible state -------------------------------------------------------------------------------


async def test_a_quick_model_does_not_flip_the_state_attribute_a_slow_one_does(daemon, fake_ollama):
    handle = await daemon.start(memory_extraction_every=100, memory_extraction_delay_s=3600)
    for i in range(3):
        await daemon.send(handle, f"quick {i}")
    # 80 words: the model reports 1.6 s of generation (its own time, as Ollama's total_duration).
    fake_ollama.script(Reply(content="word " * 80), Reply(content="ok"))
    await daemon.send(handle, "slow")  # the previous answer was quick: no flip yet
    await daemon.send(handle, "after a slow one")  # the model took over a second: thinking, then idle
    upserts = [e for e in (await handle.fetch_history()).events if e.HasField("upsert_workflow_search_attributes_event_attributes")]
    states = []
    for event in upserts:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        if search_attributes.STATE.name in fields:
            states.append(json.loads(fields[search_attributes.STATE.name].data))
    assert states == ["thinking", "idle", "thinking", "idle"]  # turn 1 (nothing known yet), then turn 5
    thinking = await events_of(handle, EventType.STATE)
    assert [e.data["state"] for e in thinking].count("thinking") == 5  # status and events always follow


# --- heartbeats ----------------------------------------------------------------------------------


async def test_the_model_call_heartbeats_only_when_it_lasts(daemon, fake_ollama):
    daemon.store.open_conversation("beats", "assistant", "llama3.2")
    config = PromptConfig(template=load_template("assistant"), tools=[]).text()
    llm = LlmActivities(daemon.store, daemon.settings)
    beats: list = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    def request(seq: int) -> ChatRequest:
        writes = TurnWrites(conversation_id="beats", messages=[AppendMessage(conversation_id="beats", seq=seq,
                                                                             role="user", content=f"hi {seq}")])
        return ChatRequest(conversation_id="beats", turn=seq, reply_seq=seq + 1, upto_seq=seq, now=datetime.now(UTC),
                           model="llama3.2", prompt_ref=prompt_ref(config), prompt=config, writes=writes)

    await env.run(llm.chat, request(1))
    assert beats == []  # over before a heartbeat was due (2 s): nothing sent to the server
    fake_ollama.delay_s = 2.5
    await env.run(llm.chat, request(3))
    fake_ollama.delay_s = 0.0
    assert len(beats) >= 1  # a model that takes its time is heartbeaten all the same


# --- store writes --------------------------------------------------------------------------------


def _writes(seq: int, content: str, call: str | None = None) -> TurnWrites:
    actions = [ActionRecord(conversation_id="w", tool_call_id=call, turn=1, agent="a", tool="run_command",
                            action_type="TERMINAL_COMMAND", args_hash="h", decision="allow", source="rule:x")] if call else []
    return TurnWrites(conversation_id="w", messages=[AppendMessage(conversation_id="w", seq=seq, role="user",
                                                                   content=content)], actions=actions)


def test_turn_writes_are_written_once_and_the_first_wins(transcript_store):
    writer = TurnWriter(transcript_store.engine)
    transcript_store.open_conversation("w", "a", "m")
    writer.write(_writes(1, "first", "1-0"))
    writer.write(_writes(1, "retried with other content", "1-0"))
    writer.write_reply("w", 2, 1, "answer", [{"id": "2-0", "name": "t", "arguments": {}}],
                       dict(model="m", prompt_tokens=5, completion_tokens=2))
    writer.write_reply("w", 2, 1, "another answer", None, dict(model="m", prompt_tokens=9, completion_tokens=9))
    assert [(m.seq, m.content) for m in transcript_store.list_messages("w")] == [(1, "first"), (2, "answer")]
    assert transcript_store.get("w", 2).tool_calls == [{"id": "2-0", "name": "t", "arguments": {}}]
    [usage] = transcript_store.usage("w")
    assert (usage.turn, usage.prompt_tokens, usage.completion_tokens) == (1, 5, 2)
    assert [a.tool_call_id for a in ActionStore(transcript_store.engine).actions(conversation_id="w")] == ["1-0"]


def test_concurrent_turn_writes_of_one_conversation_never_collide(transcript_store):
    """Two attempts of the same activity (a retry racing a worker thought dead) write the same rows."""
    writer = TurnWriter(transcript_store.engine)
    transcript_store.open_conversation("w", "a", "m")
    threads = [threading.Thread(target=writer.write, args=(_writes(seq, f"attempt {n}", f"{seq}-0"),))
               for seq in range(1, 11) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [m.seq for m in transcript_store.list_messages("w")] == list(range(1, 11))
    assert len(ActionStore(transcript_store.engine).actions(conversation_id="w")) == 10


async def test_concurrent_recalls_touching_the_same_memories_never_deadlock(fresh_postgres_url, fake_ollama, tmp_path):
    from activities.memory import MemoryService  # noqa: PLC0415
    from config.settings import Settings  # noqa: PLC0415

    settings = Settings(_env_file=None, var_dir=tmp_path, database_url=fresh_postgres_url, memory_backend="pgvector",
                        ollama_host=fake_ollama.url)
    async with MemoryService.from_settings(settings) as memory:
        records = await memory.remember_many([NewMemory(text=f"fact {i} about tea", scope=MemoryScope.AGENT,
                                                        scope_id="a") for i in range(8)])
        ids = [r.id for r, _ in records]
        later = records[0][0].last_used_at + timedelta(hours=2)

        async def touch(seed: int) -> None:  # overlapping recalls, as many conversations make them
            chosen = random.Random(seed)
            for step in range(40):
                await memory.store.touch(chosen.sample(ids, 5), later.replace(microsecond=step))

        await asyncio.gather(*(touch(seed) for seed in range(12)))
        assert all(r.last_used_at >= later.replace(microsecond=0) for r in await memory.get_many(ids))
