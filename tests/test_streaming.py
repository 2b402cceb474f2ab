"""Live tokens over the API (issue 16): a real API process, a real worker and Temporal dev server,
the fake Ollama streaming its reply a chunk at a time with a delay.

What a client shows is rebuilt from the frames exactly as a client would (``tests/streaming_support.py``):
token batches placed at their offset, a ``token_reset`` dropping a failed attempt's text, and the
stored ``message`` being the truth the streamed text must equal.
"""

from __future__ import annotations

import asyncio
import re

import httpx

from models.conversation import conversation_workflow_id
from tests.fakes.ollama import Reply
from tests.fixtures.api import ApiStack
from tests.streaming_support import Frame, read_frames, replies, reply_stored
from tests.test_api import new_id, until

LONG = " ".join(f"word{i}" for i in range(40))
"""40 chunks: at 0.05 s each the reply takes 2 s to write, several token batches."""


PUBLISH = "__temporal_workflow_stream_publish"


def tokens(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.event == "token"]


async def metric(api: ApiStack, name: str) -> float:
    text = (await httpx.AsyncClient(base_url=api.url).get("/metrics")).text
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


async def start_quiet(api: ApiStack, prefix: str, **options) -> str:
    """A conversation without a first message, so viewers can join before anything streams."""
    cid = new_id(prefix)
    created = await api.http("operator").post("/conversations", json={"conversation_id": cid, **options})
    assert created.status_code == 201, created.text
    return cid


async def test_tokens_arrive_before_the_turn_ends_and_build_the_stored_reply(api: ApiStack) -> None:
    api.ollama.chunk_delay_s = 0.05
    api.ollama.script(Reply(content=LONG))
    http = api.http("viewer")
    cid = await start_quiet(api, "tokens")
    watching = asyncio.create_task(read_frames(http, cid, reply_stored()))
    await until(lambda: _streams_open(api, 1))
    sent = await api.http("operator").post(f"/conversations/{cid}/messages", params={"wait": "false"},
                                           json={"content": "talk"})  # fmt: skip
    assert sent.status_code == 202, sent.text
    frames = await asyncio.wait_for(watching, 60)

    streamed = tokens(frames)
    assert len(streamed) >= 2, "the reply came as one batch: nothing streamed while the model wrote"
    assert [f.id for f in frames] == list(range(frames[0].id, frames[0].id + len(frames)))  # one id space
    stored_at = next(i for i, f in enumerate(frames) if f.event == "message" and f.data["data"]["role"] == "assistant")
    assert frames.index(streamed[-1]) < stored_at  # every token before the turn's reply is stored
    shown = replies(frames)
    seq = streamed[0].data["seq"]
    assert shown.misplaced == [] and shown.text[seq] == shown.stored[seq] == LONG


async def test_a_dropped_connection_resumes_with_last_event_id_without_loss_or_repeat(api: ApiStack) -> None:
    api.ollama.chunk_delay_s = 0.05
    api.ollama.script(Reply(content=LONG))
    http = api.http("viewer")
    cid = await start_quiet(api, "resume")
    first_part = asyncio.create_task(read_frames(http, cid, lambda frames: len(tokens(frames)) >= 2))
    await until(lambda: _streams_open(api, 1))
    await api.http("operator").post(f"/conversations/{cid}/messages", params={"wait": "false"}, json={"content": "go"})
    before = await asyncio.wait_for(first_part, 60)  # the connection drops after two token batches
    after = await asyncio.wait_for(read_frames(http, cid, reply_stored(), last_event_id=before[-1].id), 60)

    assert after[0].id == before[-1].id + 1
    frames = before + after
    assert [f.id for f in frames] == list(range(frames[0].id, frames[0].id + len(frames)))
    shown = replies(frames)
    seq = tokens(frames)[0].data["seq"]
    assert shown.misplaced == [] and shown.text[seq] == shown.stored[seq] == LONG


async def test_a_retried_model_call_resets_the_streamed_text(api: ApiStack) -> None:
    api.ollama.chunk_delay_s = 0.05
    api.ollama.script(Reply(content="a first attempt that breaks " + LONG, hang_up_after=8), Reply(content=LONG))
    http = api.http("viewer")
    cid = await start_quiet(api, "rewind")
    watching = asyncio.create_task(read_frames(http, cid, reply_stored()))
    await until(lambda: _streams_open(api, 1))
    await api.http("operator").post(f"/conversations/{cid}/messages", params={"wait": "false"}, json={"content": "go"})
    frames = await asyncio.wait_for(watching, 90)

    resets = [f for f in frames if f.event == "token_reset"]
    assert len(resets) == 1 and resets[0].data["attempt"] == 2
    first_attempt = [f for f in tokens(frames) if f.data["attempt"] == 1]
    assert first_attempt and frames.index(first_attempt[-1]) < frames.index(resets[0])
    assert "".join(f.data["text"] for f in first_attempt).startswith("a first attempt")
    shown = replies(frames)
    seq = resets[0].data["seq"]
    assert shown.text[seq] == shown.stored[seq] == LONG  # the broken text is gone, not concatenated


async def test_many_viewers_share_one_subscription_and_each_get_every_token_once_in_order(api: ApiStack) -> None:
    api.ollama.chunk_delay_s = 0.03
    http = api.http("viewer")
    for count in (1, 10, 50):
        api.ollama.script(Reply(content=LONG))
        cid = await start_quiet(api, f"viewers{count}")
        baseline = await _streams(api)
        watchers = [asyncio.create_task(read_frames(http, cid, reply_stored())) for _ in range(count)]
        await until(lambda: _streams_open(api, baseline + count))
        assert await metric(api, "daemonflow_api_stream_subscriptions") == 1
        await api.http("operator").post(f"/conversations/{cid}/messages", params={"wait": "false"},
                                        json={"content": "all of you"})  # fmt: skip
        seen = await asyncio.wait_for(asyncio.gather(*watchers), 120)
        reference = [(f.id, f.data) for f in tokens(seen[0])]
        assert len(reference) >= 2
        for frames in seen:
            assert [(f.id, f.data) for f in tokens(frames)] == reference  # every batch, once, in order
            shown = replies(frames)
            assert shown.misplaced == [] and list(shown.stored.values()) == [LONG]
        await until(lambda: _subscriptions(api, 0))  # the last viewer gone, the subscription stops


async def _streams(api: ApiStack) -> float:
    return await metric(api, "daemonflow_api_event_streams")


async def _streams_open(api: ApiStack, count: float) -> bool:
    return await _streams(api) >= count


async def _subscriptions(api: ApiStack, count: float) -> bool:
    return await metric(api, "daemonflow_api_stream_subscriptions") == count


async def test_a_runaway_reply_streams_its_first_16000_characters_then_only_the_stored_message(api: ApiStack) -> None:
    """``MAX_STREAMED_CHARS``: what a step streams is bounded (history grows by one signal per batch),
    whatever the model writes; the transcript keeps the whole reply."""
    runaway = " ".join(f"w{i:05d}" for i in range(2_600))  # 18,199 characters
    api.ollama.chunk_delay_s = 0.0
    api.ollama.script(Reply(content=runaway))
    http = api.http("viewer")
    cid = await start_quiet(api, "runaway")
    watching = asyncio.create_task(read_frames(http, cid, reply_stored()))
    await until(lambda: _streams_open(api, 1))
    sent = await api.http("operator").post(f"/conversations/{cid}/messages", params={"wait": "false"},
                                           json={"content": "talk"})  # fmt: skip
    assert sent.status_code == 202, sent.text
    frames = await asyncio.wait_for(watching, 60)
    seq = tokens(frames)[0].data["seq"]
    assert replies(frames).text[seq] == runaway[:16_000]
    messages = (await http.get(f"/conversations/{cid}/messages")).json()
    assert any(m["role"] == "assistant" and m["content"] == runaway for m in messages["messages"])


async def _published_batches(api: ApiStack, cid: str) -> int:
    history = await api.client.get_workflow_handle(conversation_workflow_id(cid)).fetch_history()
    return sum(e.workflow_execution_signaled_event_attributes.signal_name == PUBLISH for e in history.events)


async def test_a_reply_nobody_watches_publishes_no_tokens_and_is_stored_whole(api: ApiStack) -> None:
    """Why: a token batch is a signal and a workflow task; a reply no one sees costs neither. Both an
    instant reply and one written over 2 s (the activity asks the workflow while it writes)."""
    api.ollama.chunk_delay_s = 0.05
    api.ollama.script(Reply(content="at once"), Reply(content=LONG))
    operator = api.http("operator")
    cid = await start_quiet(api, "unwatched")
    for text in ("at once", LONG):
        sent = await operator.post(f"/conversations/{cid}/messages", json={"content": "go"})
        assert sent.status_code == 200 and sent.json()["reply"] == text, sent.text
    assert await _published_batches(api, cid) == 0
    frames = await read_frames(api.http("viewer"), cid, lambda fs: len(replies(fs).stored) == 2)  # the backlog
    assert tokens(frames) == [] and list(replies(frames).stored.values())[-1] == LONG


async def test_a_viewer_who_comes_while_the_model_writes_gets_the_reply_from_its_first_character(api: ApiStack) -> None:
    """A step scheduled unwatched asks the workflow while the model writes: once a viewer came,
    everything written so far goes out as one batch at offset 0, then batches follow."""
    words = " ".join(f"w{i}" for i in range(80))  # 80 chunks at 0.05 s: 4 s of writing
    api.ollama.chunk_delay_s = 0.05
    api.ollama.script(Reply(content=words))
    cid = await start_quiet(api, "latecomer")
    asked = len(api.ollama.chat_requests())
    sent = await api.http("operator").post(f"/conversations/{cid}/messages", params={"wait": "false"},
                                           json={"content": "talk"})  # fmt: skip
    assert sent.status_code == 202, sent.text
    await until(lambda: _asked_more(api, asked), interval=0.02)  # the model is writing, nobody watches
    frames = await asyncio.wait_for(read_frames(api.http("viewer"), cid, reply_stored()), 60)

    streamed = tokens(frames)
    assert streamed and streamed[0].data["offset"] == 0
    assert frames.index(streamed[-1]) < next(i for i, f in enumerate(frames) if f.event == "message"
                                             and f.data["data"]["role"] == "assistant")  # fmt: skip
    shown = replies(frames)
    seq = streamed[0].data["seq"]
    assert shown.misplaced == [] and shown.text[seq] == shown.stored[seq] == words


async def _asked_more(api: ApiStack, before: int) -> bool:
    return len(api.ollama.chat_requests()) > before


async def test_a_resume_id_past_the_streams_end_follows_from_its_end_and_holds_up_no_other_viewer(api: ApiStack) -> None:
    """A ``Last-Event-ID`` from nowhere (hostile, or another conversation's) once started the shared
    feed past the stream's end: neither that viewer nor any later one of the conversation saw anything
    new. It now counts as "from the end"."""
    api.ollama.script(Reply(content="after the far id"))
    http = api.http("viewer")
    cid = await start_quiet(api, "farid")
    far = asyncio.create_task(read_frames(http, cid, reply_stored(), last_event_id=10**12))
    await until(lambda: _streams_open(api, 1))
    near = asyncio.create_task(read_frames(http, cid, reply_stored()))
    await until(lambda: _streams_open(api, 2))
    await api.http("operator").post(f"/conversations/{cid}/messages", params={"wait": "false"}, json={"content": "go"})
    for frames in await asyncio.wait_for(asyncio.gather(far, near), 60):
        assert list(replies(frames).stored.values()) == ["after the far id"]
