"""ConversationWorkflow on a real dev server, a real worker, a real store and the fake Ollama."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.service import RPCError

from models.conversation import ConversationState, End, HistoryQuery, Inject, Pause, SendMessage, Status
from models.events import ConversationEvent, EventsQuery, EventType
from tests.fakes.ollama import Reply, ToolCall
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow


async def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1):
    """Poll an async predicate until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        await asyncio.sleep(interval)


async def status_of(handle) -> Status:
    return await handle.query(ConversationWorkflow.status)


async def test_a_turn_is_answered_and_stored_once(daemon, fake_ollama):
    handle = await daemon.start(agent="assistant")
    result = await daemon.send(handle, "hello there")

    assert result.turn == 1
    assert result.reply == "echo: hello there"
    assert result.usage.model_calls == 1 and result.usage.completion_tokens > 0
    conversation_id = handle.id.removeprefix("conversation-")
    messages = daemon.store.list_messages(conversation_id)
    assert [(m.seq, m.role, m.content) for m in messages] == [
        (1, "user", "hello there"),
        (2, "assistant", "echo: hello there"),
    ]
    assert len(daemon.store.usage(conversation_id)) == 1
    chat = fake_ollama.chat_requests()[-1]
    assert chat["model"] == "llama3.2"
    assert chat["messages"][0]["role"] == "system" and "Current date and time" in chat["messages"][0]["content"]
    assert chat["options"]["num_ctx"] == 8192

    status = await status_of(handle)
    assert status.state == ConversationState.IDLE and status.turn == 1 and status.agent == "assistant"
    history = await handle.query(ConversationWorkflow.history, HistoryQuery(limit=1))
    assert [(m.role, m.content) for m in history] == [("assistant", "echo: hello there")]


async def test_second_turn_sees_the_first(daemon, fake_ollama):
    handle = await daemon.start()
    await daemon.send(handle, "my name is Ada")
    await daemon.send(handle, "what is my name?")
    contents = [m["content"] for m in fake_ollama.chat_requests()[-1]["messages"][1:]]
    assert contents == ["my name is Ada", "echo: my name is Ada", "what is my name?"]


async def test_update_with_start_creates_the_conversation_on_first_message(daemon):
    conversation_id = uuid.uuid4().hex[:12]
    first = await daemon.send_with_start(conversation_id, "first", agent="developer")
    second = await daemon.send_with_start(conversation_id, "second", agent="developer")
    assert (first.turn, second.turn) == (1, 2)
    handle = daemon.client.get_workflow_handle(f"conversation-{conversation_id}")
    assert (await status_of(handle)).agent == "developer"


async def test_initial_message_is_answered_first(daemon):
    handle = await daemon.start(initial_message="from the start")
    result = await daemon.send(handle, "then this")
    assert result.turn == 2
    assert [m.content for m in daemon.store.list_messages(handle.id.removeprefix("conversation-"))][:2] == [
        "from the start",
        "echo: from the start",
    ]


@pytest.mark.parametrize(
    ("content", "reason"),
    [("", "empty"), ("   \n", "empty"), ("x" * 101, "the limit is 100")],
)
async def test_bad_messages_are_rejected_by_the_validator(daemon, content, reason):
    handle = await daemon.start(max_message_chars=100)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await daemon.send(handle, content)
    assert reason in str(err.value.cause)
    assert (await status_of(handle)).turn == 0
    history = await handle.fetch_history()
    assert not any(e.HasField("workflow_execution_update_accepted_event_attributes") for e in history.events)


async def test_unknown_agent_fails_the_workflow_with_the_known_names(daemon):
    handle = await daemon.start(agent="nope")
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    message = str(err.value.cause)
    assert "unknown agent template 'nope'" in message and "assistant, developer" in message


async def test_invalid_input_fails_the_workflow_instead_of_sticking(daemon):
    handle = await daemon.client.start_workflow(
        "ConversationWorkflow", {"agent": "assistant", "max_steps_per_turn": "many"},
        id=f"conversation-{uuid.uuid4().hex[:8]}", task_queue=daemon.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    assert "max_steps_per_turn" in str(err.value.cause)


async def test_messages_sent_while_paused_wait_for_resume(daemon, fake_ollama):
    handle = await daemon.start()
    await handle.signal(ConversationWorkflow.pause, Pause(reason="lunch"))
    pending = asyncio.create_task(daemon.send(handle, "are you there?"))
    status = await wait_for(lambda: _status_if(handle, lambda s: s.queued == 1))
    assert status.paused and status.state == ConversationState.PAUSED and status.pause_reason == "lunch"
    await asyncio.sleep(0.5)
    assert not pending.done() and fake_ollama.chat_requests() == []
    await handle.signal(ConversationWorkflow.resume)
    assert (await pending).reply == "echo: are you there?"
    assert (await status_of(handle)).state == ConversationState.IDLE


async def _status_if(handle, condition):
    status = await status_of(handle)
    return status if condition(status) else None


async def test_inject_mid_turn_is_seen_by_the_next_step(daemon, fake_ollama):
    fake_ollama.script(
        Reply(tool_calls=[ToolCall(name="made_up_tool", arguments={})], delay_s=1.5),
        Reply(content="done"),
    )
    handle = await daemon.start()
    turn = asyncio.create_task(daemon.send(handle, "start working"))
    await wait_for(lambda: _async(len(fake_ollama.chat_requests()) == 1))
    await handle.signal(ConversationWorkflow.inject, Inject(content="use Python 3.12", role="system"))
    result = await turn
    assert result.reply == "done"
    assert [c.tool for c in result.tool_calls] == ["made_up_tool"]
    second = fake_ollama.chat_requests()[1]["messages"]
    assert {"role": "system", "content": "use Python 3.12"} in [
        {"role": m["role"], "content": m.get("content")} for m in second
    ]
    assert any(m["role"] == "tool" and "no tool named 'made_up_tool'" in m.get("content", "") for m in second)


async def _async(value):
    return value


async def test_inject_next_goes_before_queued_messages_and_queue_gets_its_own_turn(daemon, fake_ollama):
    handle = await daemon.start()
    await handle.signal(ConversationWorkflow.pause)
    queued = asyncio.create_task(daemon.send(handle, "queued question"))
    await wait_for(lambda: _status_if(handle, lambda s: s.queued == 1))
    await handle.signal(ConversationWorkflow.inject, Inject(content="later turn", priority="queue"))
    await handle.signal(ConversationWorkflow.inject, Inject(content="context first"))
    await handle.signal(ConversationWorkflow.resume)
    assert (await queued).reply == "echo: queued question"
    await wait_for(lambda: _status_if(handle, lambda s: s.turn == 2 and s.state == ConversationState.IDLE))
    conversation_id = handle.id.removeprefix("conversation-")
    assert [m.content for m in daemon.store.list_messages(conversation_id)] == [
        "context first",
        "queued question",
        "echo: queued question",
        "later turn",
        "echo: later turn",
    ]


async def test_end_completes_the_workflow_and_rejects_new_messages(daemon):
    handle = await daemon.start()
    await daemon.send(handle, "hi")
    await handle.signal(ConversationWorkflow.end, End(reason="done for today"))
    summary = await handle.result()
    assert summary.turns == 1 and summary.ended_reason == "done for today"
    conversation = daemon.store.get_conversation(handle.id.removeprefix("conversation-"))
    assert conversation.ended_at is not None and conversation.end_reason == "done for today"
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await daemon.send(handle, "still there?")


async def test_end_while_paused_fails_waiting_callers_clearly(daemon):
    handle = await daemon.start()
    await handle.signal(ConversationWorkflow.pause)
    waiting = asyncio.create_task(daemon.send(handle, "never answered"))
    await wait_for(lambda: _status_if(handle, lambda s: s.queued == 1))
    await handle.signal(ConversationWorkflow.end, End(reason="shutting down"))
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await waiting
    assert "ended before this message was answered: shutting down" in str(err.value.cause)
    await handle.result()


async def test_model_not_found_fails_the_turn_with_ollamas_message(daemon):
    handle = await daemon.start(model="no-such-model")
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await daemon.send(handle, "hi")
    assert "no-such-model" in str(err.value.cause) and "ollama pull no-such-model" in str(err.value.cause)
    status = await status_of(handle)
    assert "no-such-model" in status.last_error and status.state == ConversationState.IDLE


async def test_ollama_down_then_back_the_turn_completes(daemon, fake_ollama):
    handle = await daemon.start()
    fake_ollama.down()
    turn = asyncio.create_task(daemon.send(handle, "are you up?"))
    status = await wait_for(lambda: _status_if(handle, lambda s: s.last_error is not None), timeout=30)
    assert "cannot reach Ollama" in status.last_error
    fake_ollama.up()
    result = await asyncio.wait_for(turn, timeout=60)
    assert result.reply == "echo: are you up?"
    assert (await status_of(handle)).last_error is None


async def test_server_errors_are_retried(daemon, fake_ollama):
    fake_ollama.fail_next(2, status=500, error="model runner crashed")
    handle = await daemon.start()
    assert (await daemon.send(handle, "hi")).reply == "echo: hi"


async def test_search_attributes_and_details_follow_the_state(daemon):
    handle = await daemon.start(agent="analyst")
    await daemon.send(handle, "hi")
    await handle.signal(ConversationWorkflow.pause, Pause(reason="review"))
    await wait_for(lambda: _status_if(handle, lambda s: s.state == ConversationState.PAUSED))
    description = await handle.describe()
    attributes = description.typed_search_attributes
    assert attributes.get(search_attributes.AGENT) == "analyst"
    assert attributes.get(search_attributes.STATE) == "paused"
    query = f'WorkflowId = "{handle.id}" AND DaemonflowState = "paused" AND DaemonflowAgent = "analyst"'
    found = await wait_for(lambda: _list_ids(daemon.client, query))
    assert found == [handle.id]
    metadata = await handle.query("__temporal_workflow_metadata")
    assert metadata.current_details == "paused: review"


async def _list_ids(client, query):
    return [w.id async for w in client.list_workflows(query)]


async def test_continue_as_new_keeps_queued_messages_and_pause_state(daemon, fake_ollama):
    handle = await daemon.start(turns_per_run=2)
    first_run = (await handle.describe()).run_id
    await daemon.send(handle, "one")
    await handle.signal(ConversationWorkflow.pause)
    fake_ollama.script(Reply(content="slow second answer", delay_s=1.5))
    await handle.signal(ConversationWorkflow.inject, Inject(content="second", priority="queue"))
    await handle.signal(ConversationWorkflow.inject, Inject(content="third, in the next run", priority="queue"))
    await handle.signal(ConversationWorkflow.resume)
    # Pause during the second turn, the last one of this run: the new run must start paused.
    await wait_for(lambda: _async(len(fake_ollama.chat_requests()) == 2))
    await handle.signal(ConversationWorkflow.pause, Pause(reason="across runs"))
    latest = daemon.client.get_workflow_handle(handle.id)
    await wait_for(lambda: _run_changed(latest, first_run))
    status = await status_of(latest)
    assert (status.paused, status.pause_reason, status.queued, status.turn) == (True, "across runs", 1, 2)
    assert status.state == ConversationState.PAUSED
    await latest.signal(ConversationWorkflow.resume)
    await wait_for(lambda: _status_if(latest, lambda s: s.turn == 3 and s.state == ConversationState.IDLE))
    result = await daemon.send(latest, "after the new run")
    assert result.turn == 4 and result.reply == "echo: after the new run"
    conversation_id = handle.id.removeprefix("conversation-")
    messages = daemon.store.list_messages(conversation_id, limit=100)
    assert [m.seq for m in messages] == list(range(1, 9))
    assert [m.content for m in messages if m.role == "user"] == [
        "one", "second", "third, in the next run", "after the new run"
    ]


async def _run_changed(handle, first_run):
    description = await handle.describe()
    return description.run_id != first_run and description.status.name == "RUNNING"


async def _memory_stored(handle, turn: int) -> bool:
    events = await handle.query(ConversationWorkflow.events, EventsQuery(), result_type=list[ConversationEvent])
    return any(e.type == EventType.MEMORY_STORED and e.data["turn"] == turn for e in events)


async def test_history_grows_by_a_bounded_amount_per_turn(daemon, fake_ollama):
    """Message bodies live in the store: a turn costs the same history whatever came before.
    Without live tokens: streamed batches cross history by design, as many as the model's writing
    time makes (``bench/streaming.py`` measures them; ``test_streaming.py`` tests them)."""
    long_text = "lorem ipsum " * 400
    fake_ollama.responder = lambda request: Reply(content=long_text)
    handle = await daemon.start(stream_tokens=False)
    sizes = []
    for i in range(6):
        turn = (await daemon.send(handle, f"message {i} " + "x" * 2000)).turn
        await wait_for(lambda: _memory_stored(handle, turn))  # the turn's last step
        sizes.append(len((await handle.fetch_history()).to_json()))
    deltas = [b - a for a, b in zip(sizes, sizes[1:])]
    assert max(deltas) - min(deltas) < 200, deltas
