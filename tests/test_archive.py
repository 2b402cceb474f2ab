"""Archiving after inactivity and revival, on the real dev server, a real worker and store, the
fake Ollama: conversations and channels archive on a short timer, stay readable, and a new
message (through the control client, as the API and the CLI send it) revives them."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid

import pytest
from temporalio.client import WorkflowExecutionStatus

from control.agents import AgentControl
from control.channels import Channels
from control.conversations import Conversations
from control.turns import WaitReason
from models.archive import ArchiveKind
from models.channel import ChannelNote, ChannelState, Post, PostResult, member_conversation_id
from models.conversation import Approve, ConversationInput, ConversationState, TurnResult
from store.agent_pauses import AgentPauseStore
from store.archives import ArchiveStore
from tests.channel_support import CODING, open_channel, team_answers
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.temporal import temporal_binary
from tests.test_conversation import status_of, wait_for
from tests.test_memory_conversations import PI, extraction
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow

ARCHIVE_S = 2
TOLD = "my deployment target is a Raspberry Pi 5"


async def closed(handle) -> WorkflowExecutionStatus | None:
    status = (await handle.describe()).status
    return status if status != WorkflowExecutionStatus.RUNNING else None


async def test_an_idle_conversation_archives_and_a_new_message_revives_it(daemon, fake_ollama):
    fake_ollama.script_structured(extraction(PI))
    conversations = Conversations(daemon.client, daemon.task_queue)
    conversation_id = uuid.uuid4().hex[:12]
    request = ConversationInput(conversation_id=conversation_id, archive_after_s=ARCHIVE_S, user_id="ada")
    started = await conversations.start(request, "archive test", message=TOLD, wait_s=30)
    assert isinstance(started.outcome, TurnResult)
    handle = daemon.client.get_workflow_handle_for(ConversationWorkflow.run, started.conversation.workflow_id)
    assert await wait_for(lambda: closed(handle), timeout=30) == WorkflowExecutionStatus.COMPLETED

    summary = await handle.result()
    assert summary.archive is not None and summary.turns == 1 and summary.ended_reason.startswith("archived after")
    described = await handle.describe()
    assert described.typed_search_attributes.get(search_attributes.STATE) == "archived"
    [record] = ArchiveStore(daemon.store.engine).records(ArchiveKind.CONVERSATION, conversation_id)
    assert (record.turns, record.revived_at, record.idle_s) == (1, None, ARCHIVE_S)
    assert record.archived_at >= record.last_activity_at
    assert not daemon.store.get_conversation(conversation_id).ended_at  # archived, not ended
    assert (await status_of(handle)).state == ConversationState.ARCHIVED  # queried from the closed run

    # The history stays readable with the plain temporal CLI.
    shown = subprocess.run([temporal_binary(), "workflow", "show", "--workflow-id", handle.id, "--address",
                            daemon.settings.temporal_address, "--output", "json"], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    events = json.loads(shown.stdout)["events"]
    activities = [e["activityTaskScheduledEventAttributes"]["activityType"]["name"] for e in events
                  if "activityTaskScheduledEventAttributes" in e]  # fmt: skip
    assert activities[-1] == "archive.write" and events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"

    conversation = await conversations.find(conversation_id)
    assert conversation.execution.archived
    outcome = await conversation.send("what should I compile for my deployment target?", wait_s=30)
    assert isinstance(outcome, TurnResult) and outcome.turn == 2  # the turn count goes on
    asked = fake_ollama.chat_requests()[-1]["messages"]
    window = [m["content"] for m in asked[1:]]
    assert window == [TOLD, f"echo: {TOLD}", "what should I compile for my deployment target?"]  # the transcript window, from the store
    assert PI in asked[0]["content"]  # the memory extracted before it archived is recalled
    assert [m.seq for m in daemon.store.list_messages(conversation_id)] == [1, 2, 3, 4]
    [record] = ArchiveStore(daemon.store.engine).records(ArchiveKind.CONVERSATION, conversation_id)
    assert record.revived_at is not None
    described = await daemon.client.get_workflow_handle(handle.id).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING and described.run_id != record.run_id
    events = [e.type.value for e in await conversation.events(0, 200)]
    assert "revived" in events


async def test_no_archiving_while_an_approval_waits(daemon, fake_ollama):
    fake_ollama.script(Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo hi"})]),
                       Reply(content="done"))  # fmt: skip
    handle = await daemon.start(agent="developer", archive_after_s=1)
    turn = asyncio.create_task(daemon.send(handle, "please work"))
    pending = await wait_for(lambda: _pending(handle))
    await asyncio.sleep(3 * 1 + 1)  # three periods while a person is asked
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await status_of(handle)).state == ConversationState.AWAITING_APPROVAL
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending.tool_call_id, decision="approve",
                                                              approver="alice", arguments_hash=pending.args_hash))  # fmt: skip
    assert (await turn).reply == "done"
    assert await wait_for(lambda: closed(handle), timeout=30) == WorkflowExecutionStatus.COMPLETED
    summary = await handle.result()
    assert summary.archive is not None and summary.turns == 1


async def test_queued_messages_of_a_paused_conversation_keep_it_open(daemon, fake_ollama):
    handle = await daemon.start(archive_after_s=1)
    conversation = await Conversations(daemon.client, daemon.task_queue).find(handle.id)
    await conversation.pause("hold")
    waiting = await conversation.send("while paused", wait_s=0.5)
    assert waiting.reason == WaitReason.PAUSED
    await asyncio.sleep(3)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await conversation.resume()
    assert (await conversation.follow(waiting.turn_id, wait_s=30)).turn == 1


async def _pending(handle):
    status = await status_of(handle)
    return status.pending_approvals[0] if status.pending_approvals else None


async def test_an_idle_channel_archives_and_a_new_post_revives_it(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon, archive_after_s=ARCHIVE_S)
    first = await channel.post(Post(author="alice", content=CODING), wait_s=None)
    assert isinstance(first, PostResult) and first.spoke == ["developer"]
    handle = daemon.client.get_workflow_handle(channel.workflow_id)
    assert await wait_for(lambda: closed(handle), timeout=30) == WorkflowExecutionStatus.COMPLETED
    [record] = ArchiveStore(daemon.store.engine).records(ArchiveKind.CHANNEL, channel.id)
    assert record.turns == 1
    assert (await handle.describe()).typed_search_attributes.get(search_attributes.STATE) == ChannelState.ARCHIVED.value

    member = member_conversation_id(channel.id, "developer")
    seat = daemon.client.get_workflow_handle(f"conversation-{member}")
    assert await wait_for(lambda: closed(seat), timeout=30) == WorkflowExecutionStatus.COMPLETED  # its own clock

    found = await Channels(daemon.client, daemon.task_queue).find(channel.id)
    assert found.execution.archived
    # Its members are only known once the new run has read the archive: the mention is checked then.
    second = await found.post(Post(author="alice", content=CODING + " Again, please.", mentions=["developer"]), wait_s=None)
    assert isinstance(second, PostResult) and second.spoke == ["developer"] and second.seq == first.seq + 2
    status = await found.status()
    assert status.posts == 2 and [m.agent for m in status.agents if m.replies] == ["developer"]
    assert [m.role for m in daemon.store.list_messages(member)] == ["user", "assistant", "user", "assistant"]
    # The agents' conversations archived on the channel's clock too; the channel revived the one it asked.
    [archived] = ArchiveStore(daemon.store.engine).records(ArchiveKind.CONVERSATION, member)
    assert archived.revived_at is not None
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert (await seat.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_a_note_to_an_archived_channel_revives_it_and_its_agents_read_it(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon, archive_after_s=ARCHIVE_S)
    await channel.post(Post(author="alice", content=CODING), wait_s=None)
    handle = daemon.client.get_workflow_handle(channel.workflow_id)
    assert await wait_for(lambda: closed(handle), timeout=30) == WorkflowExecutionStatus.COMPLETED

    found = await Channels(daemon.client, daemon.task_queue).find(channel.id)
    await found.inject(ChannelNote(content="The release is frozen until Monday.", author="alice"))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING  # revived, not refused
    again = await found.post(Post(author="alice", content=CODING + " Again, please.", mentions=["developer"]), wait_s=None)
    assert isinstance(again, PostResult) and again.spoke == ["developer"]
    [record] = ArchiveStore(daemon.store.engine).records(ArchiveKind.CHANNEL, channel.id)
    assert record.revived_at is not None
    assert "The release is frozen until Monday." in json.dumps(fake_ollama.chat_requests()[-1]["messages"])


async def test_a_conversation_revived_while_its_agent_is_paused_starts_paused(daemon, fake_ollama):
    conversations = Conversations(daemon.client, daemon.task_queue)
    agents = AgentControl(conversations, AgentPauseStore(daemon.store.engine))
    handle = await daemon.start(agent="moderator", archive_after_s=1)
    assert await wait_for(lambda: closed(handle), timeout=30) == WorkflowExecutionStatus.COMPLETED
    paused = await agents.pause("moderator", "night")
    assert paused.reached == 0  # nothing of it runs: only the flag is set

    conversation = await conversations.find(handle.id)
    waiting = await conversation.send("are you there?", wait_s=1)
    assert waiting.reason == WaitReason.PAUSED and waiting.pause_reason == "agent moderator paused: night"
    resumed = await agents.resume("moderator")
    assert resumed.reached == 1 and resumed.conversations[0].conversation_id == conversation.id
    assert (await conversation.follow(waiting.turn_id, wait_s=30)).reply == "echo: are you there?"
