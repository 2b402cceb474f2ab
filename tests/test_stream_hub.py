"""The API's stream hub against a real conversation on the dev server: one subscription for all
viewers of a conversation, and a viewer that does not keep up never holds the others back — it is
cut off from the feed (its queue dropped) and catches up by reading what the workflow keeps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from api.stream_hub import StreamHub, Viewer
from control.conversation_stream import ConversationStream, StreamItem
from tests.fakes.ollama import Reply
from tests.fixtures.temporal import Daemon
from tests.test_conversation import wait_for
from tests.test_streaming import LONG

SMALL_QUEUE = 10
"""More than one poll brings at once (a handful of events), fewer than a turn brings (~20 items)."""


async def _collect(viewer: Viewer, into: list[StreamItem], until_offset: asyncio.Event, end: list[int]) -> None:
    while True:
        item = await viewer.queue.get()
        if isinstance(item, StreamItem):
            into.append(item)
            if end and item.offset >= end[0]:
                until_offset.set()


async def test_a_slow_viewer_is_cut_off_and_catches_up_without_holding_the_fast_one(daemon: Daemon, fake_ollama) -> None:
    fake_ollama.chunk_delay_s = 0.1  # 40 chunks in 4 s: about 16 token batches, more than SMALL_QUEUE
    fake_ollama.script(Reply(content=LONG))
    handle = await daemon.start()
    stream = ConversationStream(daemon.client, handle.id, timedelta(seconds=30))
    hub = StreamHub(queue_items=SMALL_QUEUE)
    fast_items: list[StreamItem] = []
    async with hub.watching(stream) as fast, hub.watching(stream) as slow:
        assert hub.subscriptions == 1
        fast.began((await stream.read(0)).next_offset)  # its backlog read: the feed follows from there
        done, end = asyncio.Event(), []
        reading = asyncio.create_task(_collect(fast, fast_items, done, end))
        result = await daemon.send(handle, "talk")
        end.append(await stream.offset() - 1)
        await asyncio.wait_for(done.wait(), 30)
        reading.cancel()

        assert not fast.lagged.is_set()
        assert slow.lagged.is_set() and slow.queue.qsize() <= SMALL_QUEUE  # cut off, never blocking
        first = fast_items[0].offset
        assert [i.offset for i in fast_items] == list(range(first, end[0] + 1))  # the fast one got everything
        caught_up = await stream.read(first)  # what the slow one reads to catch up
        slow.caught_up()
        assert [(i.offset, i.data) for i in caught_up.items] == [(i.offset, i.data) for i in fast_items]
    assert hub.subscriptions == 0
    deltas = "".join(i.data["text"] for i in fast_items if i.topic == "tokens")
    assert deltas == result.reply == LONG


async def test_a_new_feed_follows_from_where_its_first_viewer_read_not_from_now(daemon: Daemon, fake_ollama) -> None:
    """Items published between the first viewer's backlog read and the feed's start reach it: the
    feed starts at the end of that backlog, however late it gets going."""
    handle = await daemon.start()
    stream = ConversationStream(daemon.client, handle.id, timedelta(seconds=30))
    backlog_end = (await stream.read(0)).next_offset
    await daemon.send(handle, "published after the viewer's backlog, before its feed follows")
    published = await stream.offset()
    assert published > backlog_end
    hub, got = StreamHub(), []
    async with hub.watching(stream) as viewer:
        viewer.began(backlog_end)
        viewer.began(published)  # a later viewer's backlog changes nothing: the feed has its start
        while not got or got[-1].offset < published - 1:
            got.append(await asyncio.wait_for(viewer.queue.get(), 30))
    assert [i.offset for i in got] == list(range(backlog_end, published))


async def test_the_stream_goes_on_across_continue_as_new(daemon: Daemon, fake_ollama) -> None:
    """One turn per run: each turn continues-as-new; a subscriber follows the chain, offsets go on
    without a hole, and the new run still serves what the old one kept."""
    handle = await daemon.start(turns_per_run=1)
    stream = ConversationStream(daemon.client, handle.id, timedelta(seconds=30))
    seen: list[StreamItem] = []

    async def follow() -> None:
        async for item in stream.follow(0):
            seen.append(item)

    following = asyncio.create_task(follow())
    replies = [(await daemon.send(handle, f"turn {n}")).reply for n in range(3)]
    await wait_for(lambda: _continued(daemon, handle))  # between turns, once no caller waits
    await asyncio.sleep(1.0)
    end = await stream.offset()
    while not seen or seen[-1].offset < end - 1:
        await asyncio.sleep(0.2)
    following.cancel()
    assert [i.offset for i in seen] == list(range(end))  # no hole, no repeat across runs
    streamed = [i.data for i in seen if i.topic == "tokens"]
    assert ["".join(d["text"] for d in streamed if d["seq"] == seq) for seq in (2, 4, 6)] == replies
    kept = await stream.read(0)  # the latest run serves the items of the earlier ones
    assert [i.offset for i in kept.items] == list(range(end))



async def _continued(daemon: Daemon, handle) -> bool:
    return (await daemon.client.get_workflow_handle(handle.id).describe()).run_id != handle.first_execution_run_id
