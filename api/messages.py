"""Private messages and the collaboration tracker over HTTP, through ``control.messages``.

``POST /messages`` sends a person's message to an agent (the key's name is the sender) and answers
``202`` at once with the message as submitted; ``GET /messages/{id}`` follows it (submitted →
refused | accepted → working → completed | failed, or input_required with the agent's question,
answered with ``POST /messages/{id}/input``); ``GET /messages?agent=`` lists what an agent sent or
received, newest first. ``GET /analytics/collaboration`` counts who messaged whom and how it went.
A deepthink's reasoning is the transcript of its conversation (``deepthink_conversation_id``):
``GET /conversations/{id}/messages`` reads it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from api.conversations import MAX_INT64, Ctx, Operator, Reader
from api.errors import ApiError
from api.openapi import problems
from api.schemas import AGENT_PATTERN
from config.templates import template_names
from models.collaboration import CollaborationReport, MessagePage
from models.private_messages import MAX_CONTENT_CHARS, MESSAGE_ID_PATTERN, MessageStatus, ProvideInput

router = APIRouter(tags=["messages"])

MessageId = Annotated[str, Path(pattern=MESSAGE_ID_PATTERN, description="private message id (workflow `message-<id>`)")]


class SendBody(BaseModel):
    model_config = {"extra": "forbid"}

    to: str = Field(pattern=AGENT_PATTERN, description="the recipient agent, e.g. `developer`")
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    message_id: str | None = Field(default=None, pattern=MESSAGE_ID_PATTERN,
                                   description="your id for it: sending the same id again is refused (409)")
    deepthink: bool = Field(default=False, description="the agent reasons in several private steps first")
    conversation_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$",
                                        description="the agent's conversation to answer in (default `dm-<agent>`)")


class InputBody(BaseModel):
    model_config = {"extra": "forbid"}

    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)


@router.post("/messages", status_code=202, response_model=MessageStatus,
             responses=problems(400, 401, 403, 409, 413, 422, 503),
             summary="Send a private message to an agent; follow it at GET /messages/{id}")  # fmt: skip
async def send_message(body: SendBody, ctx: Ctx, principal: Operator, response: Response) -> MessageStatus:
    known = template_names(ctx.settings.agents_dir)
    if body.to not in known:
        raise ApiError(422, "unknown-agent", "Unknown agent template",
                       f"unknown agent template {body.to!r}; known templates: {', '.join(known) or 'none'}")  # fmt: skip
    request = ctx.messages.request(principal.name, body.to, body.content, message_id=body.message_id,
                                   deepthink=body.deepthink, conversation_id=body.conversation_id)  # fmt: skip
    status = await ctx.messages.send(request)
    response.headers["Location"] = f"/messages/{status.message_id}"
    return status


@router.get("/messages", response_model=MessagePage, responses=problems(401, 403, 422),
            summary="Private messages, newest first; with agent, those it sent or received")  # fmt: skip
async def list_messages(
    ctx: Ctx,
    _: Reader,
    agent: Annotated[str | None, Query(pattern=AGENT_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before: Annotated[int | None, Query(ge=1, le=MAX_INT64, description="`next_before` of the previous page")] = None,
) -> MessagePage:
    return await ctx.messages.page(agent, limit, before)


@router.get("/messages/{message_id}", response_model=MessageStatus, responses=problems(401, 403, 404, 422, 503),
            summary="One private message: its state, the reason, the question or the reply")  # fmt: skip
async def get_message(message_id: MessageId, ctx: Ctx, _: Reader) -> MessageStatus:
    return await ctx.messages.status(message_id)


@router.post("/messages/{message_id}/input", response_model=MessageStatus,
             responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
             summary="Answer the agent's question on a message that is input_required")  # fmt: skip
async def provide_input(message_id: MessageId, body: InputBody, ctx: Ctx, principal: Operator) -> MessageStatus:
    return await ctx.messages.provide_input(message_id, ProvideInput(content=body.content, author=principal.name))


@router.get("/analytics/collaboration", response_model=CollaborationReport, responses=problems(401, 403, 422),
            summary="Who messages whom: sent, accepted, refused, completed, failed, durations, trust")  # fmt: skip
async def collaboration(
    ctx: Ctx,
    _: Reader,
    since: Annotated[datetime | None, Query(description="ISO 8601; default: from the first message")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601; default: now")] = None,
) -> CollaborationReport:
    if since is not None and until is not None and since >= until:
        raise ApiError(422, "invalid-frame", "Invalid time frame", "since must be before until")
    return await ctx.messages.collaboration(since, until)
