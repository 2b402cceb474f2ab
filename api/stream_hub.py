"""One subscription per conversation in each API process, fanned out to all its viewers.

Why: a subscription long-polls the workflow with the stream's poll update, and every poll that
returns items adds two events to the conversation's history; N viewers each polling would cost
the worker and the history N times. Here the first viewer of a conversation starts its ``Feed``
(one ``ConversationStream.follow``), later viewers join it, and the last one to leave stops it.

A viewer joins *before* it reads its backlog (the stream's poll query, which adds nothing to
history), so nothing published between the two is missed; what it receives twice (offsets it
already has) it skips. A new feed starts following where its first viewer's backlog ended
(``Viewer.began``), never from "now" as asked separately: under load the two reads can be seconds
apart, and what was published between them would reach no one (a CI run lost an
``approval_decided`` that way). Each viewer has a bounded queue: a viewer that does not keep up is cut off
from the feed (its queue dropped, ``lagged`` set) instead of holding the others up, and catches up
by reading the backlog again — if the workflow no longer keeps what it missed, it gets a ``gap``.

``Viewer.following`` is set once the feed's first poll is accepted by the workflow: from then on
the conversation knows it is watched and publishes its model's tokens (``models/streaming.py``);
the SSE endpoint answers ``200`` only then, so a message sent after it streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from api.metrics import STREAM_SUBSCRIPTIONS
from control.conversation_stream import ConversationStream, StreamItem
from control.errors import ControlError

log = logging.getLogger(__name__)

VIEWER_QUEUE_ITEMS = 256
"""Items a viewer may have waiting; a token batch is one item, so a quarter of a minute of a fast
model at 4 batches a second is 60."""
RESUBSCRIBE_S = 1.0
RESUBSCRIBE_FIRST_S = 0.1
"""A failed feed subscribes again after 0.1 s, doubling up to ``RESUBSCRIBE_S``: a channel member
whose conversation starts with a post is followed (and so streams) within a fraction of a second."""


@dataclass(frozen=True)
class FeedEnded:
    """The conversation's run is over and its last items were delivered."""


@dataclass(frozen=True)
class FeedFailing:
    detail: str


Delivery = StreamItem | FeedEnded | FeedFailing


@dataclass(eq=False)
class Viewer:
    queue: asyncio.Queue[Delivery] = field(default_factory=lambda: asyncio.Queue(VIEWER_QUEUE_ITEMS))
    """Bounded: ``VIEWER_QUEUE_ITEMS`` (the hub may choose another bound)."""
    lagged: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when its queue overflowed: what it holds is dropped; it reads the backlog again."""
    begins_at: asyncio.Future[int | None] | None = None
    """Its feed's start: set by the first viewer's ``began`` (later ones find it set)."""
    following: asyncio.Event = field(default_factory=asyncio.Event)
    """Its feed's, set once the workflow accepted the feed's first poll."""

    def began(self, offset: int | None) -> None:
        """Its backlog ends before ``offset``: a feed not yet following starts there. ``None``: a
        viewer with no backlog (live tokens only): the feed starts from where the stream is then."""
        if self.begins_at is not None and not self.begins_at.done():
            self.begins_at.set_result(offset)

    def offer(self, delivery: Delivery) -> None:
        if self.lagged.is_set():
            return
        try:
            self.queue.put_nowait(delivery)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.lagged.set()

    def caught_up(self) -> None:
        self.lagged.clear()


class Feed:
    """The one subscription of one conversation in this process."""

    def __init__(self, stream: ConversationStream) -> None:
        self.stream = stream
        self.viewers: set[Viewer] = set()
        self.begins_at: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.following = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def over(self) -> bool:
        return self._task is not None and self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stream-feed {self.stream.workflow_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        STREAM_SUBSCRIPTIONS.inc()
        try:
            offset = await self.begins_at
            failures = 0
            while True:
                try:
                    offset = await self.stream.offset() if offset is None else offset
                    async for item in self.stream.follow(offset, self.following.set):
                        offset, failures = item.offset + 1, 0
                        self._deliver(item)
                    self._deliver(FeedEnded())
                    return
                except (ControlError, Exception) as err:  # noqa: BLE001 - any failure: say so, try again
                    log.warning("stream of %s: %s; subscribing again", self.stream.workflow_id, err)
                    self._deliver(FeedFailing(str(err) or type(err).__name__))
                    await asyncio.sleep(min(RESUBSCRIBE_S, RESUBSCRIBE_FIRST_S * 2**failures))
                    failures += 1
        finally:
            STREAM_SUBSCRIPTIONS.dec()

    def _deliver(self, delivery: Delivery) -> None:
        for viewer in self.viewers:
            viewer.offer(delivery)


class StreamHub:
    def __init__(self, queue_items: int = VIEWER_QUEUE_ITEMS) -> None:
        self._feeds: dict[str, Feed] = {}
        self._queue_items = queue_items

    @property
    def subscriptions(self) -> int:
        return len(self._feeds)

    @contextlib.asynccontextmanager
    async def watching(self, stream: ConversationStream) -> AsyncIterator[Viewer]:
        """A viewer of ``stream``'s conversation, on its feed (started if it is the first)."""
        feed = self._feeds.get(stream.workflow_id)
        if feed is None or feed.over:  # a feed whose run ended serves no one new: a new run may follow
            feed = self._feeds[stream.workflow_id] = Feed(stream)
            feed.start()
        viewer = Viewer(asyncio.Queue(self._queue_items), begins_at=feed.begins_at, following=feed.following)
        feed.viewers.add(viewer)
        try:
            yield viewer
        finally:
            feed.viewers.discard(viewer)
            if not feed.viewers and self._feeds.get(stream.workflow_id) is feed:
                del self._feeds[stream.workflow_id]
                await feed.stop()

    async def close(self) -> None:
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.stop()
