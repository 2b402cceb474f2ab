"""Channels on the real dev server: who answers a post, who remembers it, who ignores it, and
what bounds the chain — through the control client, as the API and the CLI drive them. The fake
Ollama answers as each agent (keyed on its system prompt) and embeds by content words, so routing
is deterministic; every score and decision is the real engine's."""

from __future__ import annotations

import asyncio

from control.channels import Channels
from control.conversations import Conversations
from control.errors import ConversationNotFound
from control.posts import PostWaiting
from control.turns import WaitReason
from control.visibility import ChannelFilter, ConversationFilter
from models.channel import AuthorKind, ChannelNote, ChannelState, Post, PostResult, member_conversation_id, transcript_id
from models.conversation import Approve, ConversationState
from models.memory import MemoryAdminRequest
from models.relevance_records import Outcome
from models.relevance_scoring import Decision
from store.channels import ChannelStore
from store.relevance import RelevanceStore
from tests.channel_support import CODING, DATA, DISPUTE, WEATHER, agent_of, channel_id, open_channel, team_answers
from tests.fakes.ollama import Reply, ToolCall, by_system_prompt, system_prompt_of
from tests.test_conversation import wait_for
from workflows.conversation import ConversationWorkflow
from workflows.memory_admin import MemoryAdminWorkflow


async def post(channel, content: str, author: str = "alice", **fields) -> PostResult:
    result = await channel.post(Post(author=author, content=content, **fields), wait_s=None)
    assert isinstance(result, PostResult), result
    return result


def decisions(result: PostResult) -> dict[str, Decision]:
    return {score.agent: score.decision for score in result.scores}


def outcomes(daemon, channel_id: str, message: str) -> dict[str, Outcome | None]:
    records = RelevanceStore(daemon.store.engine)
    found = {}
    for agent in ("developer", "analyst", "moderator"):
        for record in records.scores_of(agent, channel_id=channel_id).items:
            if record.message_id == message:
                found[agent] = record.outcome
    return found


async def test_a_coding_question_is_answered_by_the_developer_only(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon, title="Release 2.3")
    result = await post(channel, CODING)

    assert result.spoke == ["developer"] and result.nobody is None and result.stopped is None
    assert decisions(result) == {"developer": Decision.INTERVENE, "analyst": Decision.IGNORE, "moderator": Decision.IGNORE}
    first = result.scores[0]
    assert first.agent == "developer" and first.high_priority and first.explanation.startswith("intervene (high priority)")
    assert first.score_id is not None
    [reply] = result.replies
    assert (reply.agent, reply.seq, reply.answers, reply.preview) == ("developer", 2, 1, "Run pytest with -x and read the traceback.")
    assert reply.reason == first.explanation and reply.usage.model_calls == 1
    assert [(s.agent, s.decision) for s in result.reactions[0].scores] == [("analyst", Decision.IGNORE), ("moderator", Decision.IGNORE)]

    stored = ChannelStore(daemon.store.engine).between(channel.id, 0)
    assert [(m.seq, m.author, m.kind, m.answers, m.reply_to) for m in stored] == [
        (1, "alice", AuthorKind.PERSON, None, None), (2, "developer", AuthorKind.AGENT, 1, "alice")]
    member = member_conversation_id(channel.id, "developer")
    asked, answered = daemon.store.list_messages(member)
    assert asked.role == "user" and f"[alice] {CODING}" in asked.content and "Answer the last message, from alice." in asked.content
    assert answered.content == "Run pytest with -x and read the traceback."
    system = fake_ollama.chat_requests()[0]["messages"][0]["content"]
    assert agent_of("developer") in system and f"channel #{channel.id}" in system and "analyst, moderator (agents)" in system
    assert outcomes(daemon, channel.id, "1") == {"developer": Outcome.REPLIED, "analyst": Outcome.IGNORED,
                                                 "moderator": Outcome.IGNORED}  # fmt: skip
    status = await channel.status()
    assert (status.state, status.posts, status.people) == (ChannelState.IDLE, 1, ["alice"])
    assert [(m.agent, m.replies) for m in status.agents] == [("developer", 1), ("analyst", 0), ("moderator", 0)]


async def test_channels_and_their_agents_are_found_by_search_attributes(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon, agents=["developer", "analyst"], people=["bob"])
    await post(channel, CODING, author="carol")
    conversations = Conversations(daemon.client, daemon.task_queue)
    members = await wait_for(lambda: _listed(conversations.matching(ConversationFilter(channel=channel.id), 10), 2))
    assert sorted(m.conversation_id for m in members) == [f"{channel.id}--analyst", f"{channel.id}--developer"]
    assert all(m.channel == channel.id for m in members)
    channels = Channels(daemon.client, daemon.task_queue)
    found = await wait_for(lambda: _listed(_page(channels.list(ChannelFilter(member="carol"), 10)), 1))
    assert [(c.channel_id, c.members) for c in found] == [(channel.id, ["developer", "analyst", "bob", "carol"])]
    quiet = await open_channel(daemon, agents=["moderator"], people=["dave"])
    [listed] = await wait_for(lambda: _listed(_page(channels.list(ChannelFilter(member="dave"), 10)), 1))
    assert (listed.channel_id, listed.state) == (quiet.id, "idle"), "a channel that never posted is listed idle"
    assert (await channel.status()).details.startswith("idle · 1 posts")


async def _page(listing):
    return (await listing)[0]


async def _listed(listing, n):
    items = await listing
    return items if len(items) >= n else None


async def test_a_data_question_is_answered_by_the_analyst_only(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon)
    result = await post(channel, DATA)
    assert result.spoke == ["analyst"]
    assert decisions(result)["developer"] == Decision.IGNORE
    moderator = next(s for s in result.scores if s.agent == "moderator")
    assert moderator.decision != Decision.INTERVENE and "gated" in moderator.explanation
    assert result.replies[0].preview == "The mean is 42 and it rises every month."


async def test_a_dispute_brings_in_the_moderator(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon)
    assert (await post(channel, CODING)).spoke == ["developer"]
    result = await post(channel, DISPUTE)
    assert result.spoke == ["moderator"]
    moderator = next(s for s in result.scores if s.agent == "moderator")
    assert moderator.decision == Decision.INTERVENE and "expertise" in moderator.explanation
    asked = daemon.store.list_messages(member_conversation_id(channel.id, "moderator"))[0].content
    assert f"[alice] {CODING}" in asked and "[developer to @alice] Run pytest" in asked and f"[alice] {DISPUTE}" in asked


async def test_a_mention_makes_an_agent_answer_whatever_its_score(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon)
    result = await post(channel, f"@analyst {WEATHER}")
    assert result.spoke == ["analyst"]
    analyst = result.scores[0]
    assert (analyst.agent, analyst.forced, analyst.decision) == ("analyst", "mentioned", Decision.INTERVENE)
    assert "(mentioned)" in analyst.explanation and "expertise 0.01 held it back" in analyst.explanation
    assert decisions(result)["developer"] == decisions(result)["moderator"] == Decision.IGNORE
    explicit = await post(channel, WEATHER, mentions=["moderator"])
    assert explicit.spoke == ["moderator"]


async def test_cooldown_holds_back_an_agent_that_just_spoke(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon, relevance={"thresholds": {"intervene": 0.8, "high_priority": 0.9}})
    first = await post(channel, CODING)
    assert first.spoke == ["developer"]
    again = await post(channel, "The pytest tests of my FastAPI endpoint fail with an exception again.")
    developer = next(s for s in again.scores if s.agent == "developer")
    assert developer.decision == Decision.OBSERVE and "cooldown 0.00" in developer.explanation
    record = RelevanceStore(daemon.store.engine).get(developer.score_id)
    cooldown = next(f for f in record.factors if f.factor == "recent_participation")
    assert cooldown.raw < 0.01 and cooldown.note.startswith("spoke 0 min ago")
    assert again.spoke == [] and again.observed == ["developer"]


async def test_an_observer_remembers_the_post_and_does_not_answer(daemon, fake_ollama):
    team_answers(fake_ollama)
    user = f"u-{channel_id()}"  # its own: other tests' observers remember for theirs, maybe still writing
    channel = await open_channel(daemon, relevance={"thresholds": {"intervene": 0.95, "high_priority": 0.97}},
                                 user_id=user)  # fmt: skip
    result = await post(channel, DATA)
    assert (result.spoke, result.observed) == ([], ["analyst", "moderator"])
    assert decisions(result)["developer"] == Decision.IGNORE
    assert result.nobody.startswith("no agent found this relevant: analyst 0.87 (observe 0.87: ")
    for agent in ("analyst", "moderator"):
        assert daemon.store.list_messages(member_conversation_id(channel.id, agent)) == [], "no turn, no reply"
    memories = await _memories(daemon, user)
    assert sorted(m.record.agent for m in memories) == ["analyst", "moderator"]
    [memory] = [m for m in memories if m.record.agent == "analyst"]
    assert memory.record.kind == "episodic" and memory.record.source_conversation == f"{channel.id}--analyst"
    assert memory.record.text.startswith(f"In channel #{channel.id} on ") and f"alice wrote: {DATA}" in memory.record.text
    assert outcomes(daemon, channel.id, "1")["analyst"] == Outcome.OBSERVED
    notice = ChannelStore(daemon.store.engine).get(channel.id, 2)
    assert (notice.kind, notice.author, notice.content) == (AuthorKind.NOTICE, "channel", result.nobody)


async def _memories(daemon, user_id: str) -> list:
    import uuid

    request = MemoryAdminRequest(action="list", scope="user", scope_id=user_id)
    result = await daemon.client.execute_workflow(MemoryAdminWorkflow.run, args=[request, None],
                                                  id=f"memory-admin-{uuid.uuid4().hex[:8]}", task_queue=daemon.task_queue)
    return result.memories


async def test_two_agents_answering_each_other_are_stopped_by_the_reply_budget(daemon, fake_ollama):
    team_answers(fake_ollama, developer="@analyst please check these numbers.",
                 analyst="@developer please check the code first.")  # fmt: skip
    channel = await open_channel(daemon, agents=["developer", "analyst"], budgets={"replies_per_post": 4})
    result = await post(channel, "@developer can you start?")
    assert result.spoke == ["developer", "analyst", "developer", "analyst"]
    assert result.stopped.startswith("reply budget reached: 4 agent replies to this post") and "developer did not answer" in result.stopped
    assert [n.agent for n in result.not_answered] == ["developer"]
    assert all(s.forced == "mentioned" for reaction in result.reactions for s in reaction.scores if s.decision == Decision.INTERVENE)
    history = await channel.history(20)
    assert history[-1].kind == AuthorKind.NOTICE and history[-1].content == result.stopped
    events = await channel.events(0)
    [budget] = [e for e in events if e.type == "budget_reached"]
    assert (budget.data["budget"], budget.data["skipped"]) == ("replies_per_post", ["developer"])
    assert outcomes(daemon, channel.id, "5")["developer"] == Outcome.FAILED


async def test_the_token_budget_ends_the_chains_once_spent(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon, budgets={"tokens": 100})
    first = await post(channel, CODING)
    assert first.spoke == ["developer"] and first.usage.prompt_tokens > 100
    second = await post(channel, DATA)
    assert second.spoke == [] and second.stopped.startswith("token budget spent: ")
    assert "of 100 tokens" in second.stopped and "analyst did not answer" in second.stopped
    assert (await channel.status()).tokens_used == first.usage.prompt_tokens + first.usage.completion_tokens


async def test_pause_holds_posts_resume_lets_them_through_and_end_ends_every_agent(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon)
    await channel.pause("lunch")
    waiting = await channel.post(Post(author="alice", content=CODING), wait_s=None)
    assert isinstance(waiting, PostWaiting) and waiting.reason == WaitReason.PAUSED
    assert waiting.pause_reason == "lunch" and "the channel is paused (lunch)" in waiting.detail
    conversations = Conversations(daemon.client, daemon.task_queue)
    developer = await wait_for(lambda: _found(conversations, member_conversation_id(channel.id, "developer")))
    await wait_for(lambda: _status_if(developer, lambda s: s.paused), timeout=10)
    assert fake_ollama.chat_requests() == []
    await channel.inject(ChannelNote(content="back at two"))
    note = await wait_for(lambda: _note_in(channel, "back at two"))
    assert (note.kind, note.author, (await channel.status()).paused) == (AuthorKind.NOTE, "operator", True)

    await channel.resume()
    done = await channel.follow(waiting.post_id, wait_s=None)
    assert isinstance(done, PostResult) and done.spoke == ["developer"]
    assert not (await developer.status()).paused

    await channel.end("wrapping up")
    await wait_for(lambda: _closed(channel))
    for agent in ("developer", "analyst", "moderator"):
        member = await conversations.find(member_conversation_id(channel.id, agent))
        execution = await wait_for(lambda m=member: _closed(m))
        assert execution.name == "completed"
    assert ChannelStore(daemon.store.engine).get_channel(channel.id).end_reason == "wrapping up"


async def _note_in(channel, content: str):
    return next((m for m in await channel.history(20) if m.content == content), None)


async def _found(conversations, conversation_id: str):
    try:
        return await conversations.find(conversation_id)
    except ConversationNotFound:
        return None


async def _status_if(handle, check):
    status = await handle.status()
    return status if check(status) else None


async def _closed(handle):
    execution = await handle.describe()
    return None if execution.running else execution


async def test_a_tool_call_waiting_for_a_person_answers_the_post_at_once_with_who_waits(daemon, fake_ollama):
    team_answers(fake_ollama)
    fake_ollama.responder = by_system_prompt({agent_of("developer"): _tool_then_answer()})
    channel = await open_channel(daemon)
    waiting = await channel.post(Post(author="alice", content=CODING), wait_s=None)
    assert isinstance(waiting, PostWaiting) and waiting.reason == WaitReason.AWAITING_APPROVAL
    [member] = waiting.waiting
    [call] = member.waiting
    assert (member.agent, member.state, call.tool) == ("developer", "awaiting_approval", "run_command")
    assert f"developer's run_command (call {call.tool_call_id}) in conversation {channel.id}--developer" in waiting.detail
    status = await channel.status()
    assert status.state == ChannelState.AWAITING_APPROVAL and status.details.startswith("developer awaiting approval: run_command")

    conversation = await Conversations(daemon.client, daemon.task_queue).find(f"{channel.id}--developer")
    await conversation.decide(Approve(tool_call_id=call.tool_call_id, decision="deny", approver="alice"))
    await wait_for(lambda: _status_if(channel, lambda s: s.state != ChannelState.AWAITING_APPROVAL))
    done = await channel.follow(waiting.post_id, wait_s=None)
    assert isinstance(done, PostResult) and done.spoke == ["developer"]
    assert done.replies[0].preview == "I did not run it."
    assert (await conversation.status()).state == ConversationState.IDLE


def _tool_then_answer():
    """First call: ask for a command; next ones (after the decision): answer."""
    calls = []

    def respond(request):
        calls.append(request)
        if len(calls) == 1:
            return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "pytest -x"})])
        return Reply(content="I did not run it.")

    return respond


async def test_a_channel_continues_as_new_between_posts_and_keeps_its_agents(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon, posts_per_run=1)
    first_run = (await daemon.client.get_workflow_handle(channel.workflow_id).describe()).run_id
    await post(channel, CODING)
    await wait_for(lambda: _new_run(daemon, channel.workflow_id, first_run))
    result = await post(channel, "The pytest tests of my FastAPI endpoint still raise an exception, @developer?")
    assert result.spoke == ["developer"] and result.seq == 3
    member = member_conversation_id(channel.id, "developer")
    second_ask = daemon.store.list_messages(member)[2].content
    assert CODING not in second_ask, "an agent is shown only what came since its last turn"
    developer = await Conversations(daemon.client, daemon.task_queue).find(member)
    assert developer.execution.running and (await developer.status()).turn == 2
    assert (await channel.status()).posts == 2


async def _new_run(daemon, workflow_id: str, run_id: str) -> bool:
    return (await daemon.client.get_workflow_handle(workflow_id).describe()).run_id != run_id


async def test_posts_are_handled_one_at_a_time_in_order(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon)
    first, second = await asyncio.gather(post(channel, CODING), post(channel, DATA))
    assert {first.seq, second.seq} == {1, 3}
    stored = ChannelStore(daemon.store.engine)
    assert stored.get(channel.id, 2).answers == 1, "the first post's chain ran before the second post was stored"
    assert daemon.store.get(transcript_id(channel.id), 3).content in (CODING, DATA), "bodies under channel:<id>"


async def test_an_agent_whose_conversation_is_terminated_mid_turn_is_noticed_not_waited_for_ever(daemon, fake_ollama):
    """A terminated conversation never reports; the channel checks its members every
    ``budgets.member_check_s`` while it waits, and the post finishes without that agent."""
    team_answers(fake_ollama, developer=Reply(content="too late", delay_s=30))
    channel = await open_channel(daemon, budgets={"member_check_s": 1})
    posting = asyncio.create_task(post(channel, CODING))
    await wait_for(lambda: _answering(channel, "developer"), timeout=30)
    # Only once its model call has begun is the turn the conversation's: terminated before the
    # channel's request reached it, the seat is rightly "cannot be reached" instead.
    await wait_for(lambda: _model_called(fake_ollama, "developer"), timeout=30)
    member = daemon.client.get_workflow_handle(f"conversation-{member_conversation_id(channel.id, 'developer')}")
    await member.terminate("an operator stops it mid-turn")
    result = await asyncio.wait_for(posting, 30)
    [missing] = result.not_answered
    assert missing.agent == "developer" and "its conversation stopped without answering" in missing.reason
    assert next(m for m in (await channel.status()).agents if m.agent == "developer").state == "gone"


async def _model_called(fake, agent: str) -> bool:
    return any(agent_of(agent) in system_prompt_of(request) for request in fake.chat_requests())


async def _answering(channel, agent: str) -> bool:
    return any(m.agent == agent and m.state == "answering" for m in (await channel.status()).agents)


async def test_an_agent_whose_conversation_was_ended_apart_is_left_out_not_waited_for(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon)
    conversations = Conversations(daemon.client, daemon.task_queue)
    developer = await wait_for(lambda: _found(conversations, member_conversation_id(channel.id, "developer")))
    await developer.end("removed by an operator")
    await wait_for(lambda: _closed(developer))
    result = await post(channel, CODING)
    [missing] = result.not_answered
    assert missing.agent == "developer" and "cannot be reached" in missing.reason
    assert outcomes(daemon, channel.id, "1")["developer"] == Outcome.FAILED
    status = await channel.status()
    assert next(m for m in status.agents if m.agent == "developer").state == "gone"
    later = await post(channel, DATA)
    assert later.spoke == ["analyst"] and "developer" not in decisions(later)
