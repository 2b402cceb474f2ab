"""A conversation's live SSE stream: its events and the model's tokens, from its Workflow Stream.

Every frame's ``id:`` is the stream offset + 1, one id space for events and tokens, so
``Last-Event-ID`` (or ``?after=``) resumes either. Frames:

- ``event: <event type>`` (``state``, ``message``, ``tool_call``…), ``data:`` the
  ``ConversationEvent`` as before (its own ``id`` still counts events only);
- ``event: token``, ``data: {seq, attempt, offset, text}``: text the model wrote for the reply at
  transcript ``seq``; ``offset`` places it in that attempt's reply;
- ``event: token_reset``, ``data: {seq, attempt}``: a retried attempt starts over; drop the text of
  ``seq`` shown so far. The stored reply comes as the ``message`` event of ``seq``: show that one;
- ``event: gap``: items older than the stream keeps were skipped (read ``/messages``);
- ``event: error`` / ``recovered``: following the workflow failed (a worker restart, say) / works again.

The stream ends after the ``state: ended`` event, when the conversation's run is over and
everything was sent, when the client leaves, or when the server stops. Viewers of one
conversation share one subscription (``api/stream_hub.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from api.context import ApiContext
from api.events import KEEPALIVE_S, RETRY_MS, _resume_point, named
from api.metrics import EVENT_STREAMS
from api.stream_hub import FeedEnded, FeedFailing, Viewer
from control.conversation import Conversation
from control.conversation_stream import ConversationStream, StreamItem, StreamPage, until_following
from control.errors import ControlError
from models.streaming import TOKENS_TOPIC

TOKEN_FRAMES = {"delta": "token", "reset": "token_reset"}


async def live_response(ctx: ApiContext, request: Request, conversation: Conversation, after: int | None,
                        last_event_id: str | None) -> StreamingResponse:  # fmt: skip
    start = _resume_point(after, last_event_id)
    stream = conversation.stream()
    watching = ctx.hub.watching(stream)
    viewer = await watching.__aenter__()  # joined before the backlog is read: nothing falls between
    running = conversation.execution is not None and conversation.execution.running
    try:
        first = await stream.read(start)  # fails here (503) rather than inside a 200 stream
        start = min(start, first.next_offset)  # an id past the stream's end resumes from its end
        viewer.began(first.next_offset)
        if running:  # the 200 once the workflow counts this viewer: a message sent after it streams
            await until_following(viewer.following)
    except BaseException:
        await watching.__aexit__(None, None, None)
        raise
    frames = _frames(ctx, request, _Cursor(stream, start), viewer, first, running)
    return StreamingResponse(
        _closing(frames, watching), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )  # fmt: skip


async def _closing(frames: AsyncIterator[bytes], watching: contextlib.AbstractAsyncContextManager) -> AsyncIterator[bytes]:
    EVENT_STREAMS.inc()
    try:
        async for frame in frames:
            yield frame
    finally:
        EVENT_STREAMS.dec()
        await watching.__aexit__(None, None, None)


class _Cursor:
    """Where a viewer is: the next offset it needs."""

    def __init__(self, stream: ConversationStream, offset: int) -> None:
        self.stream = stream
        self.next = offset
        self.ended = False

    def frames(self, page: StreamPage) -> list[bytes]:
        out: list[bytes] = []
        if page.items and page.items[0].offset > self.next:
            out.append(named("gap", {"missing_from": self.next + 1, "missing_to": page.items[0].offset,
                                     "detail": "these items are no longer kept; read /messages for the transcript"}))  # fmt: skip
        for item in page.items:
            if item.offset >= self.next and not self.ended:
                out.append(frame(item))
                self.next = item.offset + 1
                self.ended = _is_end(item)
        self.next = max(self.next, page.next_offset) if not self.ended else self.next
        return out


async def _frames(ctx: ApiContext, request: Request, cursor: _Cursor, viewer: Viewer, first: StreamPage,
                  running: bool) -> AsyncIterator[bytes]:  # fmt: skip
    yield f"retry: {RETRY_MS}\n\n".encode()
    for out in cursor.frames(first):
        yield out
    failing = False
    while running and not cursor.ended:
        delivery = await _next(ctx, request, viewer)
        if delivery == "stop":
            return
        if delivery is None:
            yield b": keep-alive\n\n"
            continue
        if isinstance(delivery, FeedEnded):  # the run is over: what it kept and we lack is still readable
            for out in await _last_frames(cursor):
                yield out
            return
        if isinstance(delivery, FeedFailing):
            if not failing:
                failing = True
                yield named("error", {"status": 503, "detail": delivery.detail})
            continue
        if failing:
            failing = False
            yield named("recovered", {"detail": "events flow again"})
        if isinstance(delivery, StreamItem) and delivery.offset <= cursor.next and not viewer.lagged.is_set():
            for out in cursor.frames(StreamPage([delivery], delivery.offset + 1)):
                yield out
            continue
        try:  # behind (a slow viewer) or ahead (the feed began after our backlog): read what is kept
            page = await cursor.stream.read(cursor.next)
        except ControlError as err:
            yield named("error", {"status": 503, "detail": str(err)})
            continue
        viewer.caught_up()
        for out in cursor.frames(page):
            yield out


async def _last_frames(cursor: _Cursor) -> list[bytes]:
    """What the viewer lacks of a finished run (a feed another kind of viewer started late, say)."""
    if cursor.ended:
        return []
    try:
        return cursor.frames(await cursor.stream.read(cursor.next))
    except ControlError as err:
        return [named("error", {"status": 503, "detail": str(err)})]


async def _next(ctx: ApiContext, request: Request, viewer: Viewer) -> Any:
    """The next delivery; ``"lagged"`` when the viewer fell behind, None after a quiet
    ``KEEPALIVE_S``, ``"stop"`` if the client left or the server stops."""
    waits = {asyncio.ensure_future(viewer.queue.get()), asyncio.ensure_future(viewer.lagged.wait()),
             asyncio.ensure_future(ctx.stopping.wait())}  # fmt: skip
    try:
        done, _ = await asyncio.wait(waits, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    if ctx.stopping.is_set():
        return "stop"
    if viewer.lagged.is_set():
        return "lagged"
    for task in done:
        if not task.cancelled() and isinstance(task.result(), (StreamItem, FeedEnded, FeedFailing)):
            return task.result()
    return "stop" if await request.is_disconnected() else None


def frame(item: StreamItem) -> bytes:
    kind = TOKEN_FRAMES.get(item.data.get("kind", ""), "token") if item.topic == TOKENS_TOPIC else str(item.data.get("type"))
    return f"id: {item.event_id}\nevent: {kind}\ndata: {json.dumps(item.data)}\n\n".encode()


def _is_end(item: StreamItem) -> bool:
    return item.topic != TOKENS_TOPIC and item.data.get("type") == "state" and (item.data.get("data") or {}).get("state") == "ended"
