"""A private message survives its worker: the worker process is killed while the recipient's model
answers, a new one finishes the message — one request, one answer, one record."""

from __future__ import annotations

import asyncio

from control.conversations import Conversations
from models.events import EventType
from models.private_messages import MessageState, dm_conversation_id
from tests.fakes.ollama import Reply
from tests.message_support import FIX, agents_answer, dm_conversations_ended, messages_of, person_message  # noqa: F401 (the fixture)
from tests.test_conversation import wait_for
from tests.test_durability import WorkerProcess, _daemon_without_worker, _true


async def test_a_worker_killed_mid_message_loses_nothing_and_repeats_nothing(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    agents_answer(fake_ollama)
    fake_ollama.script(Reply(content="the first attempt never finishes", delay_s=30))
    first = WorkerProcess(daemon.env(), tmp_path / "worker-1.log")
    second = None
    try:
        messages = messages_of(daemon)
        sent = await messages.send(person_message(messages))
        await wait_for(lambda: _true(len(fake_ollama.chat_requests()) == 1), timeout=60)
        assert (await messages.status(sent.message_id)).state == MessageState.WORKING
        first.kill()
        second = WorkerProcess(daemon.env(), tmp_path / "worker-2.log")
        done = await asyncio.wait_for(messages.result(sent.message_id), timeout=120)
        assert done.state == MessageState.COMPLETED and done.reply == FIX
        dm = dm_conversation_id("developer")
        assert [(m.role, m.content == FIX) for m in daemon.store.list_messages(dm)] == [("user", False), ("assistant", True)]
        assert len(fake_ollama.structured_requests()) == 1, "accepted once"
        conversation = await Conversations(daemon.client, daemon.task_queue, 30).find(dm)
        events = await conversation.events(0)
        assert [e.type for e in events if e.type in (EventType.TURN_REQUESTED, EventType.TURN_REPORTED)] == [
            EventType.TURN_REQUESTED, EventType.TURN_REPORTED]
        [pair] = (await messages.collaboration(None, None)).pairs
        assert (pair.sent, pair.accepted, pair.completed, pair.open) == (1, 1, 1, 0)
    finally:
        for worker in (first, second):
            if worker:
                worker.close()
