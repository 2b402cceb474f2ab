"""Live events as Server-Sent Events, resumable with ``Last-Event-ID``.

A conversation's stream (with its tokens) is served from its Workflow Stream by
``api/live_events.py`` (issue 16); what follows is the channel's, and the framing both share.

The stream polls the workflow's ``events`` query (every ``api_events_poll_s``) and writes each new
event as ``id: <event id>`` / ``event: <type>`` / ``data: <json>``. Event ids grow by one for the
whole life of a conversation, so a client that reconnects with ``Last-Event-ID: 41`` (or
``?after=41``) gets event 42 onwards, as long as the workflow still keeps it (the latest 200); if
some were dropped meanwhile, a ``gap`` event says which ids are missing (read the transcript for
them). The stream ends after the conversation's ``state: ended`` event, when the workflow is no
longer running and has nothing new, when the client goes away, or when the server stops.

Browsers' ``EventSource`` cannot send an ``Authorization`` header; the admin page reads the stream
with ``fetch()`` instead, so keys never travel in URLs (where logs and proxies would keep them).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from enum import StrEnum
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.context import ApiContext
from api.conversations import MAX_INT64, ConversationId, Ctx, Reader
from api.errors import ApiError, control_problem
from api.metrics import EVENT_STREAMS
from api.openapi import problems
from control.execution import Execution
from control.errors import ControlError
from models.events import EventType

router = APIRouter(tags=["events"])

AfterParam = Annotated[int | None, Query(ge=0, le=MAX_INT64, description="start after this event id (like Last-Event-ID)")]
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)]
KEEPALIVE_S = 15.0
RETRY_MS = 2000
LIVENESS_EVERY = 10
"""Polls between two checks that the workflow still runs (a stream on a finished one ends)."""


@router.get(
    "/conversations/{conversation_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "`text/event-stream`: `id:` event id, `event:` type, `data:` the event as JSON",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problems(401, 403, 404, 422, 503),
    },
    summary="Live events (SSE), resumable with Last-Event-ID",
)
async def stream_events(
    conversation_id: ConversationId, request: Request, ctx: Ctx, _: Reader,
    after: AfterParam = None, last_event_id: LastEventId = None,
) -> StreamingResponse:
    from api.live_events import live_response  # noqa: PLC0415 - it imports this module's framing

    return await live_response(ctx, request, await ctx.conversations.find(conversation_id), after, last_event_id)


async def event_stream_response(ctx: ApiContext, request: Request, source: EventSource, after: int | None,
                                last_event_id: str | None) -> StreamingResponse:  # fmt: skip
    """The live stream of a conversation's or a channel's events (``source``, found and described)."""
    start = _resume_point(after, last_event_id)
    first = await source.events(after=start)  # fails here (503) rather than inside a 200 stream
    running = source.execution is not None and source.execution.running
    return StreamingResponse(
        _stream(ctx, request, source, start, first, running),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _resume_point(after: int | None, last_event_id: str | None) -> int:
    if after is not None:
        return after
    if last_event_id is None or last_event_id.strip() == "":
        return 0
    try:
        value = int(last_event_id.strip())
    except ValueError:
        raise ApiError(422, "invalid-request", "Invalid request", "Last-Event-ID must be an event id (a number)") from None
    if not 0 <= value <= MAX_INT64:
        raise ApiError(422, "invalid-request", "Invalid request", "Last-Event-ID must be an event id from 0 to 2^63-1")
    return value


class Event(Protocol):
    id: int
    type: StrEnum
    data: dict[str, Any]

    def model_dump_json(self) -> str: ...


class EventSource(Protocol):
    """A conversation or a channel (``control``): both serve numbered events and can be described."""

    execution: Execution | None

    async def events(self, after: int, limit: int | None = None) -> Sequence[Event]: ...

    async def describe(self) -> Execution: ...


def frame(event: Event) -> bytes:
    return f"id: {event.id}\nevent: {event.type.value}\ndata: {event.model_dump_json()}\n\n".encode()


def named(kind: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def is_end(event: Event) -> bool:
    """A conversation's and a channel's ``state: ended`` event alike (both types are ``"state"``)."""
    return event.type == EventType.STATE and event.data.get("state") == "ended"


async def _stream(
    ctx: ApiContext, request: Request, conversation: EventSource, after: int, first: Sequence[Event], running: bool
) -> AsyncIterator[bytes]:
    EVENT_STREAMS.inc()
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        last = after
        batch = first
        polls = 0
        quiet_s = 0.0
        failing = False
        while True:
            if batch and batch[0].id > last + 1 and last > 0:
                yield named("gap", {"missing_from": last + 1, "missing_to": batch[0].id - 1,
                                    "detail": "these events are no longer kept; read /messages for the transcript"})  # fmt: skip
            for event in batch:
                yield frame(event)
                last = event.id
                if is_end(event):
                    return
            if batch:
                quiet_s = 0.0
            if not running and not batch:
                return  # finished conversation, everything sent
            if await _wait(ctx, request):
                return
            quiet_s += ctx.settings.api_events_poll_s
            if quiet_s >= KEEPALIVE_S:
                quiet_s = 0.0
                yield b": keep-alive\n\n"
            polls += 1
            if polls % LIVENESS_EVERY == 0:
                try:
                    running = (await conversation.describe()).running
                except ControlError:
                    running = False
            try:
                batch = await conversation.events(after=last)
                if failing:
                    failing = False
                    yield named("recovered", {"detail": "events flow again"})
            except ControlError as err:
                batch = []
                if not failing:  # say it once, keep trying: a worker restart is not the end of the stream
                    failing = True
                    problem = control_problem(err)
                    yield named("error", {"status": problem.status, "detail": problem.detail})
    finally:
        EVENT_STREAMS.dec()


async def _wait(ctx: ApiContext, request: Request) -> bool:
    """Sleep one poll interval; True if the client left or the server is stopping."""
    try:
        await asyncio.wait_for(ctx.stopping.wait(), ctx.settings.api_events_poll_s)
        return True
    except TimeoutError:
        pass
    return await request.is_disconnected()
