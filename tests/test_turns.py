"""A turn that waits is not an error; what the model has not seen yet is visible at once; one state
object carries a conversation across runs — on a real dev server and worker, through the control
client (``control.turns`` races ``send_message`` against the ``watch_turn`` update)."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest

from control.conversations import Conversations
from control.errors import MessageRejected
from control.turns import TurnWaiting, WaitReason
from models.conversation import Approve, ConversationState, Inject, Pause, TurnResult
from tests.fakes.ollama import Reply, ToolCall
from tests.test_conversation import _status_if, wait_for
from workflows.conversation import ConversationWorkflow

HISTORIES = Path(__file__).parent / "histories"


def control(daemon) -> Conversations:
    return Conversations(daemon.client, daemon.task_queue)


async def test_a_turn_waiting_for_a_person_answers_at_once_with_what_waits(daemon, fake_ollama):
    fake_ollama.script(Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo hi"})]),
                       Reply(content="told"))  # fmt: skip
    handle = await daemon.start(agent="developer")
    conversation = await control(daemon).find(handle.id)

    waiting = await conversation.send("run it", wait_s=None)  # "as long as it takes": the person is the wait
    assert isinstance(waiting, TurnWaiting), waiting
    assert (waiting.reason, waiting.state) == (WaitReason.AWAITING_APPROVAL, ConversationState.AWAITING_APPROVAL)
    [pending] = waiting.pending_approvals
    assert (pending.tool, pending.arguments) == ("run_command", {"command": "echo hi"})
    assert "waiting for a person to decide run_command" in waiting.detail

    await conversation.decide(Approve(tool_call_id=pending.tool_call_id, decision="deny", approver="alice"))
    answered = await conversation.follow(waiting.turn_id, wait_s=None)
    assert isinstance(answered, TurnResult) and answered.reply == "told"
    assert await conversation.turn(waiting.turn_id) == answered


async def test_a_message_to_a_paused_conversation_answers_at_once_and_after_resume(daemon):
    handle = await daemon.start()
    conversation = await control(daemon).find(handle.id)
    await conversation.pause("lunch")
    await wait_for(lambda: _status_if(handle, lambda s: s.state == ConversationState.PAUSED))

    waiting = await conversation.send("later", wait_s=None)
    assert isinstance(waiting, TurnWaiting)
    assert (waiting.reason, waiting.state, waiting.pause_reason) == (WaitReason.PAUSED, ConversationState.PAUSED, "lunch")
    assert await conversation.turn(waiting.turn_id) is None

    await conversation.resume()
    answered = await conversation.follow(waiting.turn_id, wait_s=None)
    assert isinstance(answered, TurnResult) and answered.reply == "echo: later"


async def test_a_slow_turn_answers_when_the_budget_runs_out(daemon, fake_ollama):
    """The model takes far longer than the caller's budget (20×), so the budget runs out first."""
    fake_ollama.script(Reply(content="slow answer", delay_s=10))
    handle = await daemon.start()
    conversation = await control(daemon).find(handle.id)
    waiting = await conversation.send("take your time", wait_s=0.5)
    assert isinstance(waiting, TurnWaiting)
    assert (waiting.reason, waiting.state) == (WaitReason.WAIT_BUDGET, ConversationState.THINKING)
    answered = await conversation.follow(waiting.turn_id, wait_s=None)
    assert isinstance(answered, TurnResult) and answered.reply == "slow answer"


async def test_not_waiting_still_reports_a_rejected_message(daemon):
    handle = await daemon.start(max_message_chars=5)
    conversation = await control(daemon).find(handle.id)
    with pytest.raises(MessageRejected, match="the limit is 5"):
        await conversation.send("far too long", wait_s=0)
    accepted = await conversation.send("short", wait_s=0)
    assert isinstance(accepted, TurnWaiting) and accepted.reason == WaitReason.NOT_WAITED


async def test_injected_notes_and_queued_messages_show_at_once_as_pending_in_order(daemon):
    handle = await daemon.start()
    conversation = await control(daemon).find(handle.id)
    await conversation.send("first", wait_s=None)
    await conversation.inject(Inject(content="be brief", role="system"))
    pending = await wait_for(conversation.pending_messages)  # no turn needed to see it
    assert [(m.role, m.content, m.seq) for m in pending] == [("system", "be brief", None)]
    assert (await conversation.history(3))[-1].pending and not (await conversation.history(3))[0].pending

    await conversation.pause()
    await wait_for(lambda: _status_if(handle, lambda s: s.state == ConversationState.PAUSED))
    await conversation.inject(Inject(content="queued note", priority="queue"))
    await conversation.send("second", wait_s=0)
    await conversation.inject(Inject(content="late note", role="system"))
    pending = await wait_for(lambda: _when(conversation.pending_messages, lambda p: len(p) == 4))
    # Notes first (they reach the model at its next step), then the queue in its order.
    assert [m.content for m in pending] == ["be brief", "late note", "queued note", "second"]

    await conversation.resume()
    await wait_for(lambda: _status_if(handle, lambda s: s.turn == 3 and s.state == ConversationState.IDLE))
    assert await conversation.pending_messages() == []
    written = [m.content for m in daemon.store.list_messages(conversation.id)]
    assert written == ["first", "echo: first", "be brief", "late note", "queued note", "echo: queued note",
                       "second", "echo: second"]  # fmt: skip


async def _when(probe, condition):
    value = await probe()
    return value if condition(value) else None


async def test_a_run_started_with_the_old_carried_state_goes_on(daemon):
    """Histories recorded before the one-state model carried ``CarriedState`` field by field; a run
    started with such an input (taken from a recorded history) must go on where it stopped."""
    recorded = json.loads((HISTORIES / "continue_as_new-1.json").read_text())
    started = recorded["events"][0]["workflowExecutionStartedEventAttributes"]
    old_input = json.loads(base64.b64decode(started["input"]["payloads"][0]["data"]))
    carried_turn = old_input["carried"]["turn"]
    assert carried_turn >= 1 and old_input["carried"]["template"]["name"] == "assistant"
    conversation_id = uuid.uuid4().hex[:12]
    old_input["conversation_id"] = old_input["carried"]["conversation_id"] = conversation_id
    old_input["turns_per_run"] = 100

    handle = await daemon.client.start_workflow("ConversationWorkflow", old_input, id=f"conversation-{conversation_id}",
                                                task_queue=daemon.task_queue)  # fmt: skip
    result = await daemon.send(handle, "and now?")
    assert (result.turn, result.reply) == (carried_turn + 1, "echo: and now?")
    status = await handle.query(ConversationWorkflow.status)
    assert (status.agent, status.turn) == ("assistant", carried_turn + 1)
    stored = daemon.store.list_messages(conversation_id)
    assert [m.seq for m in stored] == [old_input["carried"]["next_seq"], old_input["carried"]["next_seq"] + 1]


async def test_continue_as_new_hands_the_whole_state_to_the_next_run(daemon, fake_ollama):
    handle = await daemon.start(turns_per_run=1)
    first_run = (await handle.describe()).run_id
    await handle.signal(ConversationWorkflow.pause, Pause(reason="kept"))
    await handle.signal(ConversationWorkflow.resume)
    await daemon.send(handle, "one")
    latest = daemon.client.get_workflow_handle(handle.id)
    await wait_for(lambda: _other_run(latest, first_run))
    await latest.signal(ConversationWorkflow.inject, Inject(content="carried note", role="system"))
    status = await wait_for(lambda: _status_if(latest, lambda s: s.turn == 1))
    assert status.conversation_id == handle.id.removeprefix("conversation-")
    result = await daemon.send(latest, "two")
    assert result.turn == 2
    events = await latest.query(ConversationWorkflow.events)
    assert [e.id for e in events] == list(range(1, len(events) + 1)), "event ids go on across runs"


async def _other_run(handle, run_id):
    return (await handle.describe()).run_id != run_id
