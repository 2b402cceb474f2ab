"""Tool calls judged by the policy and approved by people, through real signals, run in real sandboxes."""

from __future__ import annotations

import asyncio

import pytest

from models.conversation import Approve, ConversationState, Pause, SetAutoAccept
from store.actions import ActionStore
from tests.fakes.ollama import Reply, ToolCall
from tests.test_conversation import _status_if, status_of, wait_for
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow, args_hash

pytestmark = pytest.mark.usefixtures("docker_client")


def command(text: str) -> Reply:
    return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": text})])


async def start_turn(daemon, fake, *replies: Reply, **options):
    fake.script(*replies, Reply(content="done"))
    handle = await daemon.start(agent="developer", **options)
    turn = asyncio.create_task(daemon.send(handle, "please work"))
    return handle, turn


async def pending_of(handle):
    status = await status_of(handle)
    return status.pending_approvals[0] if status.pending_approvals else None


def actions(daemon, handle):
    return ActionStore(daemon.store.engine).actions(conversation_id=handle.id.removeprefix("conversation-"))


def tool_messages(daemon, handle):
    return [m.content for m in daemon.store.list_messages(handle.id.removeprefix("conversation-")) if m.role == "tool"]


async def test_a_command_waits_for_approval_then_runs(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("echo hello from the sandbox"))
    pending = await wait_for(lambda: pending_of(handle))
    assert pending.tool == "run_command" and pending.arguments == {"command": "echo hello from the sandbox"}
    assert pending.args_hash == args_hash(pending.arguments)
    status = await status_of(handle)
    assert status.state == ConversationState.AWAITING_APPROVAL
    metadata = await handle.query("__temporal_workflow_metadata")
    assert metadata.current_details == "awaiting approval: run_command `echo hello from the sandbox`"
    query = f'WorkflowId = "{handle.id}" AND DaemonflowAwaitingApproval = true'
    await wait_for(lambda: _ids(daemon.client, query))

    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="approve", approver="alice", arguments_hash=pending.args_hash))
    result = await turn
    assert [(c.tool, c.decision, c.success) for c in result.tool_calls] == [("run_command", "approve", True)]
    assert "hello from the sandbox" in tool_messages(daemon, handle)[0]
    [action] = actions(daemon, handle)
    assert (action.decision, action.source, action.success, action.exit_code) == ("approve", "approver:alice", True, 0)
    assert action.args_hash == pending.args_hash and action.policy_version
    description = await handle.describe()
    assert description.typed_search_attributes.get(search_attributes.AWAITING_APPROVAL) is False


async def _ids(client, query):
    return [w.id async for w in client.list_workflows(query)]


async def test_deny_tells_the_model_and_runs_nothing(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("touch /workspace/should-not-exist"))
    pending = await wait_for(lambda: pending_of(handle))
    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="deny", reason="not today", approver="bob"))
    result = await turn
    assert result.tool_calls[0].decision == "deny"
    assert tool_messages(daemon, handle) == ["error: not run: denied by a person: not today"]
    assert actions(daemon, handle)[0].source == "approver:bob"
    assert ActionStore(daemon.store.engine).cached_result(handle.id.removeprefix("conversation-"), pending.tool_call_id) is None


async def test_edit_runs_the_edited_arguments_but_cannot_unlock_a_denied_call(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("echo original"))
    pending = await wait_for(lambda: pending_of(handle))
    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="edit", arguments={"command": "echo edited"}, approver="carol"))
    result = await turn
    assert result.tool_calls[0].decision == "edit"
    assert "edited" in tool_messages(daemon, handle)[0] and "original" not in tool_messages(daemon, handle)[0]

    fake_ollama.script(command("echo fine"), Reply(content="ok"))
    second = asyncio.create_task(daemon.send(handle, "again"))
    pending = await wait_for(lambda: pending_of(handle))
    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="edit", arguments={"command": "rm -rf /"}, approver="carol"))
    result = await second
    assert result.tool_calls[0].decision == "deny"
    assert "not allowed" in tool_messages(daemon, handle)[-1]


async def test_approve_always_allows_that_exact_call_afterwards(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("echo again"))
    pending = await wait_for(lambda: pending_of(handle))
    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="approve_always", approver="dave"))
    await turn
    fake_ollama.script(command("echo again"), Reply(content="ran without asking"))
    assert (await daemon.send(handle, "repeat")).tool_calls[0].decision == "allow"
    fake_ollama.script(command("echo something else"), Reply(content="x"))
    other = asyncio.create_task(daemon.send(handle, "different"))
    assert (await wait_for(lambda: pending_of(handle))).arguments == {"command": "echo something else"}
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=(await pending_of(handle)).tool_call_id, decision="deny"))
    await other


async def test_an_unanswered_approval_times_out_and_fails_closed(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("echo too late"), approval_timeout_s=2)
    result = await turn
    assert result.tool_calls[0].decision == "timeout"
    assert tool_messages(daemon, handle) == ["error: not run: nobody approved it in time"]
    assert actions(daemon, handle)[0].source == "timeout"


async def test_void_decisions_are_ignored_and_recorded(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("echo x"))
    pending = await wait_for(lambda: pending_of(handle))
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id="nope", decision="approve"))
    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="approve", arguments_hash="0" * 64))
    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="approve", arguments={"command": "echo y"}))
    status = await wait_for(lambda: _status_if(handle, lambda s: len(s.ignored_approvals) == 3))
    assert "no tool call waits under this id" in status.ignored_approvals[0]
    assert "not the ones waiting" in status.ignored_approvals[1]
    assert "use decision=edit" in status.ignored_approvals[2]
    assert status.pending_approvals[0].tool_call_id == pending.tool_call_id
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending.tool_call_id, decision="approve"))
    await turn
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending.tool_call_id, decision="approve"))
    status = await wait_for(lambda: _status_if(handle, lambda s: len(s.ignored_approvals) == 4))
    assert "already decided" in status.ignored_approvals[3]


async def test_pause_during_a_wait_keeps_it_and_the_tool_runs_after_resume(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("echo after resume"))
    pending = await wait_for(lambda: pending_of(handle))
    await handle.signal(ConversationWorkflow.pause, Pause(reason="coffee"))
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending.tool_call_id, decision="approve"))
    await wait_for(lambda: _status_if(handle, lambda s: s.state == ConversationState.PAUSED))
    assert tool_messages(daemon, handle) == [] and not turn.done()
    await handle.signal(ConversationWorkflow.resume)
    result = await turn
    assert result.tool_calls[0].success and "after resume" in tool_messages(daemon, handle)[0]


async def test_policy_denies_destructive_commands_without_asking(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("cd /workspace && rm -rf ."))
    result = await turn
    assert result.tool_calls[0].decision == "deny"
    assert tool_messages(daemon, handle)[0].startswith("error: not run: denied by policy")
    assert actions(daemon, handle)[0].source.startswith("rule:")


async def test_safe_actions_run_by_themselves_unless_auto_accept_is_off(daemon, fake_ollama):
    write = Reply(tool_calls=[ToolCall(name="write_file", arguments={"path": "notes.txt", "content": "hi"})])
    handle, turn = await start_turn(daemon, fake_ollama, write)
    result = await turn
    assert (result.tool_calls[0].decision, result.tool_calls[0].success) == ("allow", True)
    await handle.signal(ConversationWorkflow.set_auto_accept, SetAutoAccept(enabled=False))
    fake_ollama.script(write, Reply(content="ok"))
    second = asyncio.create_task(daemon.send(handle, "write again"))
    pending = await wait_for(lambda: pending_of(handle))
    assert pending.tool == "write_file"
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending.tool_call_id, decision="deny"))
    await second


async def test_invalid_arguments_are_explained_to_the_model(daemon, fake_ollama):
    bad = Reply(tool_calls=[ToolCall(name="write_file", arguments={"path": "x.txt", "mode": "w"})])
    handle, turn = await start_turn(daemon, fake_ollama, bad)
    result = await turn
    assert result.tool_calls[0].decision == "invalid"
    message = tool_messages(daemon, handle)[0]
    assert "arguments.content is required" in message and "arguments.mode is not a known argument" in message


async def test_per_conversation_rules_apply_and_bad_ones_fail_the_start(daemon, fake_ollama):
    allow_echo = {"id": "allow-echo", "decision": "allow", "tools": ["run_command"], "command": ["echo *"],
                  "match": ["echo hi"], "not_match": ["ls"]}
    handle, turn = await start_turn(daemon, fake_ollama, command("echo trusted"), policy=[allow_echo])
    result = await turn
    assert result.tool_calls[0].decision == "allow"
    assert actions(daemon, handle)[0].source == "rule:allow-echo"

    broken = {**allow_echo, "not_match": ["echo this matches"]}
    bad = await daemon.start(policy=[broken])
    with pytest.raises(Exception) as err:
        await bad.result()
    assert "allow-echo" in str(err.value.cause)


async def test_daemonflow_approve_and_deny_from_the_command_line(daemon, fake_ollama, tmp_path):
    from tests.test_cli import daemonflow

    handle, turn = await start_turn(daemon, fake_ollama, command("echo via cli"))
    conversation_id = handle.id.removeprefix("conversation-")
    pending = await wait_for(lambda: pending_of(handle))
    status = await daemonflow(daemon.env(), tmp_path, "status", conversation_id)
    assert f"run_command {{\"command\": \"echo via cli\"}}  (call {pending.tool_call_id}" in status.out
    missing = await daemonflow(daemon.env(), tmp_path, "approve", conversation_id, "no-such-call")
    assert missing.code == 1 and "waiting: " + pending.tool_call_id in missing.err
    edited = await daemonflow(daemon.env(), tmp_path, "approve", conversation_id, pending.tool_call_id,
                              "--edit", '{"command": "echo edited via cli"}', "--approver", "eve")
    assert edited.code == 0, edited.err
    assert edited.out.strip() == (f'edit applied: run_command {{"command": "echo edited via cli"}} (call {pending.tool_call_id}) '
                                  f"in conversation {conversation_id} (judged again by the policy before it runs)")
    result = await turn
    assert result.tool_calls[0].decision == "edit" and "edited via cli" in tool_messages(daemon, handle)[0]
    assert actions(daemon, handle)[0].source == "approver:eve"

    fake_ollama.script(command("echo second"), Reply(content="ok"))
    second = asyncio.create_task(daemon.send(handle, "again"))
    pending = await wait_for(lambda: pending_of(handle))
    denied = await daemonflow(daemon.env(), tmp_path, "deny", conversation_id, pending.tool_call_id, "--reason", "no",
                              "--approver", "frank")  # fmt: skip
    assert denied.code == 0, denied.err
    assert denied.out.startswith(f"deny applied: run_command (call {pending.tool_call_id})")
    assert (await second).tool_calls[0].decision == "deny"
    again = await daemonflow(daemon.env(), tmp_path, "approve", conversation_id, pending.tool_call_id)
    assert again.code == 1 and "already decided: deny by frank" in again.err and "Traceback" not in again.err


async def test_approve_with_the_plain_temporal_cli(daemon, fake_ollama):
    from tests.test_temporal_cli import temporal

    handle, turn = await start_turn(daemon, fake_ollama, command("echo via temporal"))
    pending = await wait_for(lambda: pending_of(handle))
    listed = await temporal(daemon.settings.temporal_address, "workflow", "list", "--query",
                            f'DaemonflowAwaitingApproval=true AND WorkflowId="{handle.id}"')
    assert handle.id in listed
    await temporal(daemon.settings.temporal_address, "workflow", "signal", "--workflow-id", handle.id,
                   "--name", "approve", "--input",
                   f'{{"tool_call_id": "{pending.tool_call_id}", "decision": "approve", "approver": "ops"}}')
    assert (await turn).tool_calls[0].decision == "approve"


async def test_daemonflow_chat_asks_for_approval_inline(daemon, fake_ollama, tmp_path):
    from tests.test_cli import daemonflow

    fake_ollama.script(command("echo from chat"), Reply(content="the command ran"))
    run = await daemonflow(daemon.env(), tmp_path, "chat", "--agent", "developer", "--user", "frank",
                           stdin="run something\ny\n/quit\n")
    assert run.code == 0, run.err
    assert 'approval needed: run_command {"command": "echo from chat"}' in run.out
    assert "→ approve" in run.out and "developer> the command ran" in run.out
    assert "tool run_command: approve ok" in run.out
    # The chat asked through the decide update (it heard back), never the fire-and-forget signal.
    conversation_id = run.out.split("conversation ", 1)[1].split(" ", 1)[0]
    history = await daemon.client.get_workflow_handle(f"conversation-{conversation_id}").fetch_history()
    updates = [e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name for e in history.events
               if e.HasField("workflow_execution_update_accepted_event_attributes")]  # fmt: skip
    signals = [e.workflow_execution_signaled_event_attributes.signal_name for e in history.events
               if e.HasField("workflow_execution_signaled_event_attributes")]  # fmt: skip
    assert "decide" in updates and "approve" not in signals
