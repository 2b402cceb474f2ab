"""What the channel tests share: a team of agents whose fake model answers as each of them
(``by_system_prompt``, keyed on the channel's note "You are "<agent>""), the embeddings that route
(``content_word_embedding``), and the messages of the scenarios."""

from __future__ import annotations

import uuid

from control.channel import Channel
from control.channels import Channels
from models.channel import ChannelInput
from tests.fakes.ollama import FakeOllama, Reply, by_system_prompt, content_word_embedding

TEAM = ["developer", "analyst", "moderator"]
CODING = "My FastAPI endpoint raises an exception when I run the pytest tests. How do I debug it?"
DATA = "What is the average of the sales column in this CSV, and can you chart the monthly trend?"
DISPUTE = "You are both wrong, and this is rude."
WEATHER = "Lovely weather for a picnic by the lake today."

ANSWERS = {
    "developer": "Run pytest with -x and read the traceback.",
    "analyst": "The mean is 42 and it rises every month.",
    "moderator": "Let us keep this respectful and compare both answers calmly.",
}


FILE_THRESHOLDS = {"observe": 0.2, "intervene": 0.5, "high_priority": 0.8, "reflect": None}
"""``config/relevance.yaml``'s: what a test sets back on a shared API stack, whose thresholds other
tests (schemathesis among them) may have changed at run time."""


def agent_of(agent: str) -> str:
    """The key ``by_system_prompt`` finds in the system prompt of ``agent``'s conversation."""
    return f'You are "{agent}"'


def team_answers(fake: FakeOllama, **answers: Reply | str) -> None:
    """Each agent answers with ``ANSWERS[agent]`` (or what ``answers`` gives it), whatever the order."""
    fake.embedder = content_word_embedding
    fake.responder = by_system_prompt({agent_of(agent): answer for agent, answer in {**ANSWERS, **answers}.items()})


def channel_id() -> str:
    return f"ch{uuid.uuid4().hex[:8]}"


async def team_on(api) -> None:
    """A shared API stack's fake answering as each agent, and the file's thresholds in force."""
    team_answers(api.ollama)
    response = await api.http("admin").put("/relevance/thresholds", json=FILE_THRESHOLDS)
    assert response.status_code == 200, response.text


async def open_channel(daemon, agents: list[str] | None = None, **fields) -> Channel:
    channels = Channels(daemon.client, daemon.task_queue)
    request = ChannelInput(channel_id=fields.pop("channel_id", None) or channel_id(), agents=agents or TEAM,
                           people=fields.pop("people", ["alice"]), user_id=fields.pop("user_id", "u1"), **fields)
    return await channels.start(request, f"test channel {request.channel_id}")
