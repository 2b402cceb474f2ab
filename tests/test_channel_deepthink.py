"""A channel whose agent reflects (``thresholds.reflect``): it thinks in a deepthink conversation of
its own, posts the summary, and nobody else — channel, other members — ever sees the steps; an
operator reads them."""

from __future__ import annotations

from sqlmodel import Session, col, select

from control.conversations import Conversations
from models.channel import Post, PostResult
from models.conversation import ConversationState
from models.relevance_scoring import Decision
from store.channels import ChannelStore
from store.tables import Message
from tests.channel_support import CODING, agent_of, open_channel, team_answers
from tests.message_support import last_user_text
from tests.test_conversation import wait_for
from workflows.deepthink import channel_deepthink_id

SUMMARY = "Summary: run pytest with -x and read the first traceback."


def _thinking(body: dict) -> str:
    asked = last_user_text(body)
    if "Deepthink, step" in asked:
        return f"PRIVATE-REASONING step {asked.split('Deepthink, step ')[1][:1]}: the traceback points at the fixture."
    return SUMMARY if "Now write the answer" in asked else "unexpected"


async def test_an_agent_that_reflects_posts_only_its_summary(daemon, fake_ollama):
    team_answers(fake_ollama, developer=_thinking)
    channel = await open_channel(daemon, relevance={"thresholds": {"reflect": 0.6}}, budgets={"deepthink_steps": 2})
    result = await channel.post(Post(author="alice", content=CODING), wait_s=None)
    assert isinstance(result, PostResult) and result.spoke == ["developer"]
    [developer] = [s for s in result.scores if s.agent == "developer"]
    assert developer.decision == Decision.REFLECT and developer.explanation.startswith("reflect")
    assert result.replies[0].preview == SUMMARY

    stored = ChannelStore(daemon.store.engine).between(channel.id, 0)
    assert [(m.author, m.content) for m in stored][1] == ("developer", SUMMARY)
    thinking = channel_deepthink_id(channel.id, "developer", 1)
    with Session(daemon.store.engine) as session:
        holders = set(session.exec(select(Message.conversation_id).where(col(Message.content).contains("PRIVATE-REASONING"))))
    assert holders == {thinking}, "the steps are in the deepthink transcript only"
    assert not any("PRIVATE-REASONING" in m.content for m in stored)

    conversation = await Conversations(daemon.client, daemon.task_queue, 30).find(thinking)
    history = await conversation.history(50)
    assert [m.role for m in history] == ["user", "assistant"] * 3 and history[-1].content == SUMMARY
    assert agent_of("developer") in str(fake_ollama.chat_requests()[0]["messages"][0])
    await wait_for(lambda: _ended(conversation), timeout=30)
    await channel.end("test over")


async def _ended(conversation) -> bool:
    return (await conversation.status()).state == ConversationState.ENDED
