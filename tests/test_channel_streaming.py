"""A channel's live stream carries its agents' tokens while they write (issue 16): over real HTTP,
with the fake Ollama answering as each agent a chunk at a time."""

from __future__ import annotations

import asyncio
import json

import httpx

from tests.channel_support import ANSWERS, CODING
from tests.fixtures.api import ApiStack
from tests.test_api_channels import create, team  # noqa: F401 - the fixture

__all__ = ["team"]


async def frames_until_agent_message(http: httpx.AsyncClient, cid: str, agent: str,
                                     opened: asyncio.Event | None = None) -> list[dict]:  # fmt: skip
    frames, current = [], {}
    async with http.stream("GET", f"/channels/{cid}/events") as stream:
        assert stream.status_code == 200
        if opened is not None:
            opened.set()
        async for line in stream.aiter_lines():
            if line == "":
                if "event" in current:
                    frames.append(current)
                    data = current["data"].get("data", {})
                    if current["event"] == "message" and data.get("author") == agent:
                        return frames
                current = {}
            elif not line.startswith(":"):
                field, _, value = line.partition(": ")
                current[field] = json.loads(value) if field == "data" else value
    return frames


async def test_the_channel_stream_shows_an_agent_writing_before_its_message(team: ApiStack) -> None:  # noqa: F811
    operator, viewer = team.http("operator"), team.http("viewer")
    cid = (await create(operator))["channel_id"]
    team.ollama.chunk_delay_s = 0.1  # 8 chunks: under a second of writing, a few batches
    opened = asyncio.Event()
    watching = asyncio.create_task(frames_until_agent_message(viewer, cid, "developer", opened))
    await asyncio.wait_for(opened.wait(), 30)  # what the agents write from now on reaches the viewer
    posted = await operator.post(f"/channels/{cid}/posts", json={"content": CODING, "author": "alice"})
    assert posted.status_code == 200 and posted.json()["spoke"] == ["developer"], posted.text
    frames = await asyncio.wait_for(watching, 60)

    tokens = [f for f in frames if f["event"] == "token"]
    assert tokens and {t["data"]["agent"] for t in tokens} == {"developer"}
    assert all("id" not in t for t in tokens)  # tokens never move the channel's Last-Event-ID
    assert all(t["data"]["conversation_id"] == f"{cid}--developer" for t in tokens)
    assert "".join(t["data"]["text"] for t in tokens) == ANSWERS["developer"]
    assert frames[-1]["event"] == "message" and frames.index(tokens[-1]) < len(frames) - 1
