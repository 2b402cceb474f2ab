"""Confirmed decisions: the ``decide`` update answers with the applied decision or a typed rejection,
by the same rules as the ``approve`` signal; driven through the control client and the plain
`temporal` CLI, on a real dev server and worker. Every decision here is a deny or a refusal, so
nothing runs in a sandbox (no Docker needed)."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.client import WorkflowUpdateFailedError

from control.conversations import Conversations
from control.errors import ConversationEnded, DecisionRejected
from models.conversation import Approve, RejectionReason
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.temporal import temporal_binary
from tests.test_conversation import _status_if, status_of, wait_for
from workflows.conversation import ConversationWorkflow


def command(text: str) -> Reply:
    return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": text})])


async def waiting_call(daemon, fake, text: str = "echo decide me", **options):
    """A developer conversation whose first turn waits for a person; its pending approval."""
    fake.script(command(text), Reply(content="done"))
    handle = await daemon.start(agent="developer", **options)
    turn = asyncio.create_task(daemon.send(handle, "please work"))
    pending = await wait_for(lambda: _pending(handle))
    return handle, turn, pending


async def _pending(handle):
    status = await status_of(handle)
    return status.pending_approvals[0] if status.pending_approvals else None


def control(daemon) -> Conversations:
    return Conversations(daemon.client, daemon.task_queue)


async def rejection_of(conversation, decision: Approve):
    with pytest.raises(DecisionRejected) as refused:
        await conversation.decide(decision)
    return refused.value.rejection


async def test_decide_applies_a_decision_and_refuses_void_ones_with_a_typed_reason(daemon, fake_ollama):
    handle, turn, pending = await waiting_call(daemon, fake_ollama)
    conversation = await control(daemon).find(handle.id)
    call = pending.tool_call_id

    unknown = await rejection_of(conversation, Approve(tool_call_id="9-9", decision="approve"))
    assert (unknown.reason, unknown.waiting) == (RejectionReason.UNKNOWN_CALL, [call])
    changed = await rejection_of(conversation, Approve(tool_call_id=call, decision="approve", arguments_hash="0" * 64))
    assert (changed.reason, changed.args_hash) == (RejectionReason.ARGUMENTS_CHANGED, pending.args_hash)
    bare_edit = await rejection_of(conversation, Approve(tool_call_id=call, decision="edit"))
    assert bare_edit.reason == RejectionReason.EDIT_WITHOUT_ARGUMENTS
    other = await rejection_of(conversation, Approve(tool_call_id=call, decision="approve", arguments={"command": "ls"}))
    assert other.reason == RejectionReason.ARGUMENTS_NOT_SHOWN and "use decision=edit" in other.detail
    assert (await status_of(handle)).pending_approvals == [pending], "refused decisions leave the call waiting"

    applied = await conversation.decide(Approve(tool_call_id=call, decision="deny", reason="not now", approver="bob",
                                                arguments_hash=pending.args_hash))  # fmt: skip
    assert applied.model_dump() == {"tool_call_id": call, "tool": "run_command", "decision": "deny", "approver": "bob",
                                    "arguments": None, "args_hash": pending.args_hash}  # fmt: skip
    assert (await turn).tool_calls[0].decision == "deny"

    again = await rejection_of(conversation, Approve(tool_call_id=call, decision="approve", approver="carol"))
    assert again.reason == RejectionReason.ALREADY_DECIDED
    assert (again.decided.decision, again.decided.approver) == ("deny", "bob") and "by bob" in again.detail

    # Refusals come from the validator: they never reach the history; the applied decision does, once.
    history = await handle.fetch_history()
    accepted = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    names = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name for e in accepted]
    assert names.count("decide") == 1


async def test_the_signal_follows_the_same_rules_and_a_timed_out_call_stays_decided(daemon, fake_ollama):
    fake_ollama.script(command("echo too late"), Reply(content="done"))
    handle = await daemon.start(agent="developer", approval_timeout_s=1)
    [call] = (await daemon.send(handle, "please work")).tool_calls
    assert call.decision == "timeout"
    conversation = await control(daemon).find(handle.id)
    late = await rejection_of(conversation, Approve(tool_call_id=call.id, decision="approve"))
    assert late.reason == RejectionReason.ALREADY_DECIDED and late.decided.decision == "timeout"
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=call.id, decision="deny", approver="dave"))
    status = await wait_for(lambda: _status_if(handle, lambda s: s.ignored_approvals))
    assert status.ignored_approvals == [f"{call.id} (deny by dave): {late.detail}"]


async def test_a_decision_on_an_ended_conversation_is_refused_before_anything_is_sent(daemon, fake_ollama):
    handle, turn, pending = await waiting_call(daemon, fake_ollama)
    await handle.signal(ConversationWorkflow.end)
    await handle.result()
    conversation = await control(daemon).find(handle.id)
    with pytest.raises(ConversationEnded, match="completed; nothing in it waits for a decision"):
        await conversation.decide(Approve(tool_call_id=pending.tool_call_id, decision="deny"))
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await turn
    assert "conversation ended during this turn" in str(failed.value.cause)


async def run_temporal(address: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        temporal_binary(), *args, "--address", address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_decide_and_approve_from_the_plain_temporal_cli(daemon, fake_ollama):
    """``temporal workflow update execute --name decide`` answers; the ``approve`` signal still works."""
    handle, turn, pending = await waiting_call(daemon, fake_ollama)
    address, call = daemon.settings.temporal_address, pending.tool_call_id

    def decide(decision: dict) -> list[str]:
        return ["workflow", "update", "execute", "--workflow-id", handle.id, "--name", "decide",
                "--input", json.dumps(decision), "--output", "json"]  # fmt: skip

    code, out, err = await run_temporal(address, *decide({"tool_call_id": "9-9", "decision": "deny"}))
    assert code != 0 and "no tool call waits under this id" in out + err
    code, out, err = await run_temporal(address, *decide({"tool_call_id": call, "decision": "deny", "approver": "ops"}))
    assert code == 0, err
    assert {"tool_call_id": call, "decision": "deny", "approver": "ops", "arguments": None}.items() <= _json_result(out).items()
    assert (await turn).tool_calls[0].decision == "deny"

    # The signal, exactly as before: fire and forget; a second one is listed as ignored.
    code, _, err = await run_temporal(address, "workflow", "signal", "--workflow-id", handle.id, "--name", "approve",
                                      "--input", json.dumps({"tool_call_id": call, "decision": "approve"}))  # fmt: skip
    assert code == 0, err
    status = await wait_for(lambda: _status_if(handle, lambda s: s.ignored_approvals))
    assert "already decided: deny by ops" in status.ignored_approvals[0]


def _json_result(out: str) -> dict:
    """The update result from ``temporal workflow update execute --output json``."""
    answer = json.loads(out)
    return answer.get("result", answer)
