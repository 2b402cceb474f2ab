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
        await asyncio.sleep(1.0)  # the feed is subscribed
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
