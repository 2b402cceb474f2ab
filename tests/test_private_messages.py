"""Private messages on the real dev server, a real worker and the fake model: the accept rule
(busy, outside the expertise, the model's answer), input-required round trips, the collaboration
records and the trust they give."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from sqlmodel import Session, col, select

from control.conversations import Conversations
from control.errors import NotWaitingForInput, PrivateMessageExists
from models.conversation import ConversationState
from models.private_messages import MessageState, ProvideInput, deepthink_conversation_id, dm_conversation_id, message_workflow_id
from store.engine import make_engine
from store.private_messages import PrivateMessageStore
from store.relevance import RelevanceStore
from store.tables import Message
from models.channel import Post
from models.relevance import Factor
from tests.channel_support import open_channel
from tests.message_support import dm_conversations_ended, CODING, DEVELOPER, FIX, WEATHER, agents_answer, last_user_text, messages_of, person_message, replies  # noqa: F401 (the fixture)
from tests.test_conversation import wait_for


async def _state(messages, message_id: str) -> MessageState:
    return (await messages.status(message_id)).state


async def test_a_busy_recipient_refuses_then_accepts_once_its_work_is_done(daemon, fake_ollama):
    agents_answer(fake_ollama, **{DEVELOPER: replies("NEED INPUT: which Python version?", FIX)})
    messages = messages_of(daemon, message_max_open=1)
    first = await messages.send(person_message(messages))
    asked = await wait_for(lambda: _question(messages, first.message_id), timeout=60)
    assert asked.question == "which Python version?" and asked.input_rounds == 1

    busy = await messages.result((await messages.send(person_message(messages, sender="bob"))).message_id)
    assert busy.state == MessageState.REFUSED and busy.decided_by == "workload"
    assert "developer is busy: 1 accepted requests not finished (the limit is 1)" in (busy.reason or "")

    await messages.provide_input(first.message_id, ProvideInput(content="Python 3.12", author="alice"))
    done = await messages.result(first.message_id)
    assert done.state == MessageState.COMPLETED and done.reply == FIX and done.input_rounds == 1
    assert done.conversation_id == dm_conversation_id("developer") and done.reply_seq is not None
    transcript = [(m.role, m.content) for m in daemon.store.list_messages(dm_conversation_id("developer"))]
    assert [role for role, _ in transcript] == ["user", "assistant", "user", "assistant"]
    assert CODING in transcript[0][1] and "Python 3.12" in transcript[2][1] and transcript[3][1] == FIX

    again = await messages.result((await messages.send(person_message(messages, sender="bob"))).message_id)
    assert again.state == MessageState.COMPLETED and again.decided_by == "model" and again.reason == "this is my field"
    with pytest.raises(NotWaitingForInput):
        await messages.provide_input(first.message_id, ProvideInput(content="too late"))

    report = await messages.collaboration(None, None)
    pairs = {(p.sender, p.recipient): p for p in report.pairs}
    assert (pairs["alice", "developer"].completed, pairs["alice", "developer"].accepted) == (1, 1)
    bob = pairs["bob", "developer"]
    assert (bob.sent, bob.refused, bob.completed, bob.accepted, bob.trust) == (2, 1, 1, 1, 0.5)
    developer = next(a for a in report.agents if a.agent == "developer")
    assert (developer.received.sent, developer.received.completed, developer.received.refused) == (3, 2, 1)
    took = [round((m.finished_at - m.created_at).total_seconds() * 1000, 1) for m in (done, again)]
    assert developer.received.mean_duration_ms == pytest.approx(sum(took) / 2, abs=0.1)  # the messages' own times
    await _trust_reaches_the_relevance_engine(daemon)


async def _trust_reaches_the_relevance_engine(daemon) -> None:
    """alice's one completed message gives the developer a trust of (1 + 1) / (1 + 2) towards her:
    a channel scoring her post reads it (the factor weighs 0 by default, so it is shown, not counted)."""
    channel = await open_channel(daemon, agents=["developer"], people=["alice"])
    await channel.post(Post(author="alice", content=CODING), wait_s=None)
    [score] = RelevanceStore(daemon.store.engine).scores_of("developer", channel_id=channel.id).items
    [trust] = [f for f in score.factors if f.factor == Factor.RELATIONSHIP_TRUST]
    assert trust.raw == 0.6667 and trust.contribution == 0
    await channel.end("test over")


async def test_messages_accepted_at_the_same_moment_take_no_more_places_than_the_recipient_has(daemon, fake_ollama):
    """Three messages pass the workload check together (the recipient's model is asked about all
    three while none is accepted yet); accepting is atomic (``messages.admit``): with one place,
    one is accepted and two are refused as busy — never three at work."""
    considered = threading.Barrier(3)

    def decide(body: dict[str, Any]) -> str:
        if "accept" in ((body.get("format") or {}).get("properties") or {}):
            considered.wait(timeout=30)  # all three were found not busy before any is answered
            return json.dumps({"accept": True, "reason": "this is my field"})
        return json.dumps({"memories": []})

    agents_answer(fake_ollama, **{DEVELOPER: replies("NEED INPUT: which Python version?", FIX)})
    fake_ollama.structured_responder = decide
    messages = messages_of(daemon, message_max_open=1)
    sent = [await messages.send(person_message(messages, sender=who)) for who in ("alice", "bob", "carol")]
    statuses = await wait_for(lambda: _all_decided(messages, sent), timeout=60)

    at_work = [s for s in statuses if s.state == MessageState.INPUT_REQUIRED]
    refused = [s for s in statuses if s.state == MessageState.REFUSED]
    assert len(at_work) == 1 and len(refused) == 2, [(s.sender, s.state, s.reason) for s in statuses]
    assert all(s.decided_by == "workload" and "developer is busy: 1 accepted requests" in (s.reason or "")
               for s in refused)  # fmt: skip
    await messages.provide_input(at_work[0].message_id, ProvideInput(content="Python 3.12"))
    assert (await asyncio.wait_for(messages.result(at_work[0].message_id), 60)).state == MessageState.COMPLETED


async def _all_decided(messages, sent) -> list | None:
    statuses = [await messages.status(s.message_id) for s in sent]
    decided = all(s.state in (MessageState.INPUT_REQUIRED, MessageState.REFUSED, MessageState.COMPLETED) for s in statuses)
    return statuses if decided else None


async def _question(messages, message_id: str):
    status = await messages.status(message_id)
    return status if status.state == MessageState.INPUT_REQUIRED else None


async def test_outside_its_expertise_or_declined_by_its_model_a_message_is_refused_with_the_reason(daemon, fake_ollama):
    agents_answer(fake_ollama)
    messages = messages_of(daemon)
    off_topic = await messages.result((await messages.send(person_message(messages, WEATHER))).message_id)
    assert off_topic.state == MessageState.REFUSED and off_topic.decided_by == "expertise"
    assert "outside developer's expertise" in (off_topic.reason or "")
    assert not fake_ollama.structured_requests(), "refused before its model was asked"

    agents_answer(fake_ollama, accept=False)
    fake_ollama.structured_responder = _declining("I only take reviewed tickets")
    declined = await messages.result((await messages.send(person_message(messages))).message_id)
    assert (declined.state, declined.decided_by, declined.reason) == (MessageState.REFUSED, "model", "I only take reviewed tickets")
    assert not fake_ollama.chat_requests(), "a refused message never reaches the recipient's conversation"

    hop = await messages.result((await messages.send(person_message(messages, hops=4))).message_id)
    assert hop.state == MessageState.REFUSED and hop.decided_by == "hops" and "the limit is 3" in (hop.reason or "")
    with pytest.raises(PrivateMessageExists):
        await messages.send(person_message(messages, message_id=hop.message_id))
    stored = PrivateMessageStore(make_engine(daemon.settings.effective_database_url))
    assert stored.trust("alice", ["developer"]) == {"developer": 0.25}, "two refusals by the developer: (0 + 1) / (2 + 2)"
    # The notification centre's source (GET /notifications): the refusals, newest first.
    mine = [m for m in stored.for_people(100) if m.message_id in {off_topic.message_id, declined.message_id, hop.message_id}]
    assert [(m.message_id, m.decided_by) for m in mine] == [(hop.message_id, "hops"), (declined.message_id, "model"),
                                                            (off_topic.message_id, "expertise")]


def _declining(reason: str):
    def respond(body: dict) -> str:
        return json.dumps({"accept": False, "reason": reason})

    return respond


def _thinking(body: dict) -> str:
    """The developer's deepthink: a private line per step, then the summary."""
    asked = last_user_text(body)
    if "Deepthink, step" in asked:
        return f"PRIVATE-REASONING step {asked.split('step ')[1][:1]}: the traceback points at the fixture."
    if "Now write the answer" in asked:
        return "Summary: the fixture is wrong; run pytest -x to see it."
    return FIX


async def test_a_deepthink_is_read_by_operators_and_never_reaches_another_conversation(daemon, fake_ollama):
    agents_answer(fake_ollama, **{DEVELOPER: _thinking})
    messages = messages_of(daemon, deepthink_steps=2)
    done = await messages.result((await messages.send(person_message(messages, deepthink=True))).message_id)
    assert done.state == MessageState.COMPLETED and done.reply == "Summary: the fixture is wrong; run pytest -x to see it."
    thought = deepthink_conversation_id(done.message_id, "developer")
    assert done.deepthink_conversation_id == done.conversation_id == thought

    conversation = await Conversations(daemon.client, daemon.task_queue, 30).find(thought)
    history = [(m.role, m.content) for m in await conversation.history(50)]
    assert [role for role, _ in history] == ["user", "assistant"] * 3
    assert [c for _, c in history[1::2]][:2] == [f"PRIVATE-REASONING step {n}: the traceback points at the fixture."
                                                 for n in (1, 2)]
    await wait_for(lambda: _ended(conversation), timeout=30)
    with Session(daemon.store.engine) as session:
        holders = set(session.exec(select(Message.conversation_id).where(col(Message.content).contains("PRIVATE-REASONING"))))
    assert holders == {thought}, "the reasoning is in the deepthink transcript only"
    assert daemon.store.list_messages(dm_conversation_id("developer")) == []


async def _ended(conversation) -> bool:
    return (await conversation.status()).state == ConversationState.ENDED


async def test_a_message_takes_its_store_steps_as_local_activities(daemon, fake_ollama):
    """Record, workload, similarity and admission run inside the message's workflow tasks
    (``LOCAL_STEPS_PATCH``): only the recipient's model is an ordinary activity, and a refused
    message schedules none (each one saved is a workflow task a message no longer waits for)."""
    agents_answer(fake_ollama)
    messages = messages_of(daemon)
    refused = await messages.result((await messages.send(person_message(messages, WEATHER))).message_id)
    answered = await messages.result((await messages.send(person_message(messages))).message_id)
    assert (refused.state, answered.state) == (MessageState.REFUSED, MessageState.COMPLETED)
    for status, ordinary in ((refused, []), (answered, ["messages.consider"])):
        history = await daemon.client.get_workflow_handle(message_workflow_id(status.message_id)).fetch_history()
        scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                     if e.HasField("activity_task_scheduled_event_attributes")]
        local = [e for e in history.events if e.HasField("marker_recorded_event_attributes")
                 and e.marker_recorded_event_attributes.marker_name == "core_local_activity"]
        assert scheduled == ordinary and len(local) >= 3, (scheduled, len(local))
