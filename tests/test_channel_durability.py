"""A channel survives its worker: a worker process killed in the middle of an agent's turn, and a
new one finishing the post — nothing lost, nothing twice."""

from __future__ import annotations

import asyncio

from control.channels import Channels
from control.conversations import Conversations
from models.channel import ChannelInput, Post, PostResult, member_conversation_id
from models.events import EventType
from store.channels import ChannelStore
from store.relevance import RelevanceStore
from tests.channel_support import ANSWERS, CODING, TEAM, channel_id, team_answers
from tests.fakes.ollama import Reply
from tests.test_conversation import wait_for
from tests.test_durability import WorkerProcess, _daemon_without_worker, _true


async def test_a_worker_killed_mid_channel_turn_loses_nothing_and_repeats_nothing(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    team_answers(fake_ollama)
    fake_ollama.script(Reply(content="the first attempt never finishes", delay_s=30))
    first = WorkerProcess(daemon.env(), tmp_path / "worker-1.log")
    second = None
    try:
        channel = await Channels(daemon.client, daemon.task_queue, 30).start(
            ChannelInput(channel_id=channel_id(), agents=TEAM, people=["alice"]), "durability")
        posting = asyncio.create_task(channel.post(Post(author="alice", content=CODING), wait_s=None))
        await wait_for(lambda: _true(len(fake_ollama.chat_requests()) == 1), timeout=60)
        first.kill()
        second = WorkerProcess(daemon.env(), tmp_path / "worker-2.log")
        result = await asyncio.wait_for(posting, timeout=120)
        await _check_once(daemon, fake_ollama, channel, result)
    finally:
        for worker in (first, second):
            if worker:
                worker.close()


async def _check_once(daemon, fake_ollama, channel, result) -> None:
    assert isinstance(result, PostResult) and result.spoke == ["developer"]
    assert result.replies[0].preview == ANSWERS["developer"]
    stored = ChannelStore(daemon.store.engine).between(channel.id, 0)
    assert [(m.seq, m.author, m.content) for m in stored] == [(1, "alice", CODING), (2, "developer", ANSWERS["developer"])]
    member = member_conversation_id(channel.id, "developer")
    assert [m.role for m in daemon.store.list_messages(member)] == ["user", "assistant"]
    assert len(fake_ollama.chat_requests()) == 2 and len(daemon.store.usage(member)) == 1
    records = RelevanceStore(daemon.store.engine)
    by_message = sorted(r.message_id for agent in TEAM for r in records.scores_of(agent, channel_id=channel.id).items)
    assert by_message == ["1", "1", "1", "2", "2"], "each message scored once per agent (its author aside)"
    events = await channel.events(0)
    assert len([e for e in events if e.type == "turn_requested"]) == 1
    developer = await Conversations(daemon.client, daemon.task_queue, 30).find(member)
    reported = [e for e in await developer.events(0) if e.type == EventType.TURN_REPORTED]
    assert len(reported) == 1
