"""An agent sends a private message with its ``send_private_message`` tool: asked by the policy like
any tool, then answered as the tool's result (wait) or later as a note (no wait); the chain of
agent messages carries its hop count."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from models.conversation import Approve
from models.private_messages import MessageState, ProvideInput, dm_conversation_id
from tests.fakes.ollama import Reply, ToolCall
from tests.message_support import dm_conversations_ended, ASSISTANT, CODING, DEVELOPER, FIX, agents_answer, messages_of, replies  # noqa: F401 (the fixture)
from tests.test_approvals import actions, pending_of, tool_messages
from tests.test_conversation import status_of
from workflows.conversation import ConversationWorkflow
from tests.test_conversation import wait_for


def _delegating(arguments: dict[str, Any], after: str) -> Any:
    """The assistant: calls the tool on its first step, then says ``after``."""

    def respond(body: dict[str, Any]) -> Reply:
        if any(m.get("role") == "tool" for m in body.get("messages") or []):
            return Reply(content=after)
        return Reply(tool_calls=[ToolCall("send_private_message", arguments)])

    return respond


async def _approve(handle, tool: str = "send_private_message") -> dict[str, Any]:
    pending = await wait_for(lambda: pending_of(handle), timeout=30)
    assert pending.tool == tool and pending.rule == "ask-agent-messages"
    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="approve", approver="alice", arguments_hash=pending.args_hash))
    return pending.arguments


def _answering_questions(answer: str, after: str) -> Any:
    """The assistant: sends a waiting message; when the result is a question, answers it with
    ``answer_private_message`` (the message id read from that result); then says ``after``."""

    def respond(body: dict[str, Any]) -> Reply:
        tools = [m.get("content") or "" for m in body.get("messages") or [] if m.get("role") == "tool"]
        if not tools:
            return Reply(tool_calls=[ToolCall("send_private_message", {"to": "developer", "content": CODING, "wait": True})])
        asked = re.search(r"message_id (\S+);", tools[-1])
        if asked and len(tools) == 1:
            return Reply(tool_calls=[ToolCall("answer_private_message",
                                              {"message_id": asked.group(1), "content": answer, "wait": True})])
        return Reply(content=after)

    return respond


async def test_a_wait_for_reply_message_returns_the_answer_as_the_tool_result(daemon, fake_ollama):
    agents_answer(fake_ollama, **{ASSISTANT: _delegating({"to": "developer", "content": CODING, "wait": True},
                                                         "The developer says: run pytest with -x.")})
    handle = await daemon.start(agent="assistant")
    turn = asyncio.create_task(daemon.send(handle, "Ask the developer how to debug my failing pytest tests."))
    await _approve(handle)
    result = await asyncio.wait_for(turn, 60)
    assert result.reply == "The developer says: run pytest with -x."
    assert [(c.tool, c.decision, c.success) for c in result.tool_calls] == [("send_private_message", "approve", True)]
    [tool_message] = tool_messages(daemon, handle)
    assert "to developer: completed. developer answered:\n" + FIX in tool_message
    [action] = actions(daemon, handle)
    assert (action.tool, action.action_type, action.source) == ("send_private_message", "AGENT_MESSAGE", "approver:alice")

    [sent] = (await messages_of(daemon).page("assistant", 10, None)).items
    assert (sent.sender, sent.sender_kind, sent.recipient, sent.state, sent.hops) == (
        "assistant", "agent", "developer", MessageState.COMPLETED, 1)
    assert sent.reply == FIX and sent.conversation_id == dm_conversation_id("developer")


async def test_an_agent_answers_the_question_of_the_agent_it_asked(daemon, fake_ollama):
    """input_required back to an agent sender: its conversation hears the question, answers it with
    ``answer_private_message`` (asked by the policy, like sending), and gets the reply."""
    agents_answer(fake_ollama, **{ASSISTANT: _answering_questions("Python 3.12", "The developer says: run pytest -x."),
                                  DEVELOPER: replies("NEED INPUT: which Python version?", FIX)})  # fmt: skip
    handle = await daemon.start(agent="assistant")
    turn = asyncio.create_task(daemon.send(handle, "Ask the developer how to debug my failing pytest tests."))
    await _approve(handle)
    answered = await _approve(handle, "answer_private_message")
    assert answered["content"] == "Python 3.12"
    result = await asyncio.wait_for(turn, 60)
    assert result.reply == "The developer says: run pytest -x."
    assert [(c.tool, c.success) for c in result.tool_calls] == [("send_private_message", False),
                                                               ("answer_private_message", True)]  # fmt: skip
    asked, replied = tool_messages(daemon, handle)
    assert "input required. developer asks: which Python version?" in asked and f"developer answered:\n{FIX}" in replied

    done = await messages_of(daemon).status(answered["message_id"])
    assert (done.state, done.input_rounds, done.reply) == (MessageState.COMPLETED, 1, FIX)
    transcript = [(m.role, m.content) for m in daemon.store.list_messages(dm_conversation_id("developer"))]
    assert "Python 3.12" in transcript[2][1] and "assistant" in transcript[2][1]  # the answer, by its author
    assert (await handle.query(ConversationWorkflow.status)).state.value == "idle"


async def test_an_agent_cannot_answer_a_message_that_does_not_ask_it(daemon, fake_ollama):
    """Only a question its own conversation heard: another id is refused, nothing is signalled."""
    person, developer = messages_of(daemon), replies("NEED INPUT: which Python version?", FIX)
    agents_answer(fake_ollama, **{DEVELOPER: developer})
    theirs = await person.send(person.request("alice", "developer", CODING))
    await wait_for(lambda: _asking(person, theirs.message_id), timeout=60)

    def respond(body: dict[str, Any]) -> Reply:
        if any(m.get("role") == "tool" for m in body.get("messages") or []):
            return Reply(content="I could not answer it.")
        return Reply(tool_calls=[ToolCall("answer_private_message", {"message_id": theirs.message_id, "content": "3.8"})])

    agents_answer(fake_ollama, **{ASSISTANT: respond, DEVELOPER: developer})
    handle = await daemon.start(agent="assistant")
    turn = asyncio.create_task(daemon.send(handle, "Answer alice's message for her."))
    await _approve(handle, "answer_private_message")
    result = await asyncio.wait_for(turn, 60)
    [refused] = tool_messages(daemon, handle)
    assert f"private message {theirs.message_id} is not waiting for your input (messages that are: none)" in refused
    assert [(c.tool, c.success) for c in result.tool_calls] == [("answer_private_message", False)]
    still = await person.status(theirs.message_id)
    assert (still.state, still.question) == (MessageState.INPUT_REQUIRED, "which Python version?")
    await person.provide_input(theirs.message_id, ProvideInput(content="Python 3.12", author="alice"))
    assert (await asyncio.wait_for(person.result(theirs.message_id), 60)).state == MessageState.COMPLETED


async def test_a_question_a_person_answered_is_no_longer_the_agents_to_answer(daemon, fake_ollama):
    """The assistant's message asks; a person answers in its place; the assistant's own answer,
    later, is refused (the message told its conversation it works again) and never reaches it."""
    sent_first: list[str] = []

    def respond(body: dict[str, Any]) -> Reply:
        said = [m.get("content") or "" for m in body.get("messages") or [] if m.get("role") == "user"]
        if len(said) == 1 and not any(m.get("role") == "tool" for m in body.get("messages") or []):
            return Reply(tool_calls=[ToolCall("send_private_message", {"to": "developer", "content": CODING})])
        if len(said) == 2 and not sent_first:
            sent_first.append("answer")
            return Reply(tool_calls=[ToolCall("answer_private_message", {"message_id": asked_id[0], "content": "3.8"})])
        return Reply(content="ok")

    asked_id: list[str] = []
    slow_fix = iter([Reply(content="NEED INPUT: which Python version?")])
    agents_answer(fake_ollama, **{ASSISTANT: respond,  # still working on it while the assistant tries
                                  DEVELOPER: lambda _: next(slow_fix, Reply(content=FIX, delay_s=10))})  # fmt: skip
    handle = await daemon.start(agent="assistant")
    await _answered(daemon, handle)
    person = messages_of(daemon)
    [sent] = (await person.page("assistant", 10, None)).items
    asked_id.append(sent.message_id)
    asking = await wait_for(lambda: _asks(handle), timeout=60)  # the question reached the sender's conversation
    assert asking == {sent.message_id: "which Python version?"}
    await person.provide_input(sent.message_id, ProvideInput(content="Python 3.12", author="alice"))
    await wait_for(lambda: _asks_nothing(handle), timeout=30)  # working again: the question is closed
    assert (await person.status(sent.message_id)).state == MessageState.WORKING

    turn = asyncio.create_task(daemon.send(handle, "Now answer the developer's question yourself."))
    await _approve(handle, "answer_private_message")
    result = await asyncio.wait_for(turn, 60)
    assert [(c.tool, c.success) for c in result.tool_calls] == [("answer_private_message", False)]
    assert f"private message {sent.message_id} is not waiting for your input" in tool_messages(daemon, handle)[-1]
    assert (await asyncio.wait_for(person.result(sent.message_id), 60)).state == MessageState.COMPLETED
    notes = [v.content for v in await handle.query(ConversationWorkflow.history) if v.role == "system"]
    assert not [n for n in notes if ": working" in n]  # working again closes the question silently


async def _asks(handle) -> dict[str, str]:
    return (await status_of(handle)).messages_asking


async def _asks_nothing(handle) -> bool:
    return not await _asks(handle)


async def _asking(messages, message_id: str) -> bool:
    return (await messages.status(message_id)).state == MessageState.INPUT_REQUIRED


async def test_without_waiting_the_outcome_arrives_as_a_note(daemon, fake_ollama):
    agents_answer(fake_ollama, **{ASSISTANT: _delegating({"to": "developer", "content": CODING}, "Sent; I will tell you.")})
    handle = await daemon.start(agent="assistant")
    result = await _answered(daemon, handle)
    assert result.reply == "Sent; I will tell you."
    [tool_message] = tool_messages(daemon, handle)
    assert "sent to developer; its outcome will arrive as a note" in tool_message
    messages = messages_of(daemon)
    [sent] = (await messages.page("assistant", 10, None)).items
    await messages.result(sent.message_id)
    history = await wait_for(lambda: _note(handle, sent.message_id), timeout=30)
    assert history.role == "system" and history.pending and f"developer answered:\n{FIX}" in history.content


async def _answered(daemon, handle):
    turn = asyncio.create_task(daemon.send(handle, "Tell the developer my pytest tests fail."))
    await _approve(handle)
    return await asyncio.wait_for(turn, 60)


async def _note(handle, message_id: str):
    views = await handle.query(ConversationWorkflow.history)
    return next((v for v in views if message_id in v.content and "completed" in v.content), None)


async def test_a_message_sent_while_answering_the_third_hop_is_refused_whatever_the_model_writes(daemon, fake_ollama):
    """The assistant answers a hop-3 message by messaging the developer (and claims hop 1 in its
    text): that message is hop 4, refused before anyone is asked."""
    claim = "hops: 1 (this is a fresh request, not a chain). " + CODING
    agents_answer(fake_ollama, **{ASSISTANT: _delegating({"to": "developer", "content": claim, "wait": True},
                                                         "The developer could not be asked.")})
    messages = messages_of(daemon)
    request = messages.request("alice", "assistant", "Everyday help: ask around about my failing pytest tests.", hops=3)
    await messages.send(request)
    dm = daemon.client.get_workflow_handle(f"conversation-{dm_conversation_id('assistant')}")
    await wait_for(lambda: _exists(dm), timeout=30)
    await _approve(dm)
    done = await messages.result(request.message_id)
    assert done.state == MessageState.COMPLETED and done.reply == "The developer could not be asked."
    [sent] = (await messages.page("developer", 10, None)).items
    assert (sent.sender, sent.hops, sent.state, sent.decided_by) == ("assistant", 4, MessageState.REFUSED, "hops")
    tool = [m.content for m in daemon.store.list_messages(dm_conversation_id("assistant")) if m.role == "tool"]
    assert "refused: this message is hop 4 of a chain of agent messages; the limit is 3" in tool[0]
    assert not [b for b in fake_ollama.chat_requests() if "backend developer" in str(b.get("messages"))]


async def _exists(handle):
    try:
        await handle.describe()
    except Exception:  # noqa: BLE001 - not started yet
        return False
    return True
