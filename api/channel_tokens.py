"""A channel's live SSE stream with its agents' tokens: what each agent writes, while it writes.

The channel's own events keep their ids (``api/events.py``, ``Last-Event-ID`` resumes them as
before). Tokens come from the agents' conversations, each followed through the API's
``StreamHub`` (one subscription per conversation, shared with its other viewers), and are written
as ``event: token`` / ``token_reset`` frames **without an ``id:``**: they never move the client's
``Last-Event-ID`` (a compound id across N conversations would not fit one cursor). After a
reconnect, an agent's reply in progress resumes with its next batch (its ``offset`` shows what was
missed) and the reply itself arrives as the channel's ``message`` event, as always. Token data:
``{agent, conversation_id, kind, seq, attempt, offset, text}``.

Tokens are followed from where each member's stream was when the request came (read before the
``200``): whatever an agent writes after a client's stream opened reaches it, however late the
feeds get going on a loaded machine.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

from api.context import ApiContext
from api.events import event_stream_response
from api.live_events import TOKEN_FRAMES
from api.stream_hub import Viewer
from control.channel import Channel
from control.errors import ControlError, ConversationEnded
from control.conversation_stream import StreamItem
from models.streaming import TOKENS_TOPIC

END = object()
LAG_CHECK_S = 1.0


async def channel_live_response(ctx: ApiContext, request: Request, channel: Channel, after: int | None,
                                last_event_id: str | None) -> StreamingResponse:  # fmt: skip
    events = await event_stream_response(ctx, request, channel, after, last_event_id)
    try:
        members = [(m.agent, m.conversation_id) for m in (await channel.status()).agents]
    except ControlError:
        members = []  # the events still flow; tokens need the members' names
    if not members:
        return events
    starts = await asyncio.gather(*(_offset(ctx, cid) for _, cid in members))
    events.body_iterator = _merged(ctx, events.body_iterator, [(*m, start) for m, start in zip(members, starts)])
    return events


async def _offset(ctx: ApiContext, conversation_id: str) -> int | None:
    """Where a member's stream is now: 0 for a member whose conversation does not exist yet (the
    channel starts it at its first turn: all of it is new), None if it cannot say (its feed then
    starts from where the stream is when it can)."""
    try:
        return await ctx.conversations.get(conversation_id).stream().offset()
    except ConversationEnded:  # not found: never started
        return 0
    except ControlError:
        return None


async def _merged(ctx: ApiContext, events: AsyncIterator[bytes], members: list[tuple[str, str, int | None]]) -> AsyncIterator[bytes]:
    """The channel's frames, with its agents' token frames in between; ends with the channel's."""
    out: asyncio.Queue[bytes | object] = asyncio.Queue()
    tasks = [asyncio.create_task(_tokens(ctx, agent, cid, start, out)) for agent, cid, start in members]
    tasks.append(asyncio.create_task(_events(events, out)))
    try:
        while (frame := await out.get()) is not END:
            yield frame  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _events(events: AsyncIterator[bytes], out: asyncio.Queue) -> None:
    try:
        async for frame in events:
            await out.put(frame)
    finally:
        await out.put(END)


async def _tokens(ctx: ApiContext, agent: str, conversation_id: str, start: int | None, out: asyncio.Queue) -> None:
    stream = ctx.conversations.get(conversation_id).stream()
    async with ctx.hub.watching(stream) as viewer:
        viewer.began(start)  # a feed already following goes on where it is
        while True:
            item = await _next_token(viewer)
            data = {"agent": agent, "conversation_id": conversation_id, **item.data}
            await out.put(f"event: {TOKEN_FRAMES.get(item.data.get('kind', ''), 'token')}\ndata: {json.dumps(data)}\n\n".encode())


async def _next_token(viewer: Viewer) -> StreamItem:
    """The next token item the feed brings; a viewer that fell behind goes on from the live point
    (its queue was dropped: the replies come whole as channel messages anyway)."""
    while True:
        if viewer.lagged.is_set():
            viewer.caught_up()
        try:
            delivery = await asyncio.wait_for(viewer.queue.get(), LAG_CHECK_S)
        except TimeoutError:
            continue
        if isinstance(delivery, StreamItem) and delivery.topic == TOKENS_TOPIC:
            return delivery
