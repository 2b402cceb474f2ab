"""Channels over HTTP: create, list, read, post, steer, end — through the ``control`` channel client.

A post is answered like a conversation's message: ``200`` with the ``PostResult`` (who spoke, their
replies, every agent's score and decision, why), or ``202`` at once when an agent's turn waits for
a person (its tool call; decide it at ``/approvals``) or a resume, or after
``DAEMONFLOW_API_TURN_WAIT_S``, or with ``wait=false`` — with who waits and for what; the result is
at ``GET /channels/{id}/posts/{post_id}`` later. Messages are read whole from the store; events
stream like a conversation's.
"""

from __future__ import annotations

import base64
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from api.auth import Permission, Principal, require
from api.channel_schemas import (
    ChannelCreated,
    ChannelDetail,
    ChannelMessageItem,
    ChannelMessagePage,
    ChannelPage,
    ChannelSignalSent,
    CreateChannel,
    NoteBody,
    PostAccepted,
    PostBody,
    PostStatus,
)
from api.context import ApiContext
from api.conversations import MAX_INT64, Ctx, Operator, Reader, WaitParam, _check_model, _page_token, _wait_s
from api.errors import ApiError
from api.events import AfterParam, LastEventId
from api.openapi import problems
from config.policy import PolicyError, parse_rules
from config.relevance import RelevanceConfigError, relevance_for_channel
from config.templates import template_names
from control.visibility import ChannelFilter
from models.channel import (
    NAME_PATTERN,
    ChannelInput,
    ChannelNote,
    ChannelState,
    Post,
    PostResult,
    check_name,
    member_conversation_id,
)
from models.conversation import End, Pause

router = APIRouter(tags=["channels"])

ChannelId = Annotated[str, Path(pattern=NAME_PATTERN, description="channel id (workflow `channel-<id>`)")]
PostId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")]


# --- create and list --------------------------------------------------------------------------------


@router.post("/channels", status_code=201, response_model=ChannelCreated,
             responses=problems(400, 401, 403, 409, 413, 422, 503),
             summary="Create a channel: its agents' conversations start with it")  # fmt: skip
async def create_channel(body: CreateChannel, ctx: Ctx, principal: Operator, response: Response) -> ChannelCreated:
    request = await _checked(body, ctx, principal)
    channel = await ctx.channels.start(request, f"#{request.channel_id} · created over HTTP by {principal.name}")
    response.headers["Location"] = f"/channels/{request.channel_id}"
    agents = [member.agent for member in request.agents]
    return ChannelCreated(channel_id=channel.id, workflow_id=channel.workflow_id, agents=agents, people=request.people,
                          conversations=[member_conversation_id(channel.id, agent) for agent in agents])  # fmt: skip


@router.get("/channels", response_model=ChannelPage, responses=problems(401, 403, 422, 503),
            summary="List channels (Temporal visibility), newest first")  # fmt: skip
async def list_channels(
    ctx: Ctx,
    _: Reader,
    state: Annotated[ChannelState | None, Query()] = None,
    member: Annotated[str | None, Query(pattern=NAME_PATTERN, description="an agent or a person in it")] = None,
    awaiting_approval: Annotated[bool | None, Query()] = None,
    running: Annotated[bool | None, Query(description="true: running only; false: finished only")] = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> ChannelPage:
    matching = ChannelFilter(running=running, state=state, member=member, awaiting_approval=awaiting_approval)
    items, next_token = await ctx.channels.list(matching, page_size, _page_token(page_token))
    token = base64.urlsafe_b64encode(next_token).decode().rstrip("=") if next_token else None
    return ChannelPage(channels=items, next_page_token=token)


@router.get("/channels/{channel_id}", response_model=ChannelDetail, responses=problems(401, 403, 404, 422, 503),
            summary="A channel's status: its agents, what each does, budgets, posts")  # fmt: skip
async def get_channel(channel_id: ChannelId, ctx: Ctx, _: Reader) -> ChannelDetail:
    channel = await ctx.channels.find(channel_id)
    status = await channel.status()
    assert channel.execution is not None
    return ChannelDetail(workflow_id=channel.workflow_id, execution=channel.execution.name, status=status)


# --- post -------------------------------------------------------------------------------------------


@router.post(
    "/channels/{channel_id}/posts",
    response_model=PostResult,
    responses={
        202: {"model": PostAccepted, "description": "accepted, not over yet: an agent waits for a person, the "
              "channel is paused, slower than DAEMONFLOW_API_TURN_WAIT_S, or wait=false — `reason`, `waiting`"},
        **problems(400, 401, 403, 404, 409, 413, 422, 502, 503),
    },
    summary="Post a message (update post): who spoke, their replies, every agent's score; or 202 with who waits",
)
async def post_message(channel_id: ChannelId, body: PostBody, ctx: Ctx, principal: Operator,
                       wait: WaitParam = True) -> Any:  # fmt: skip
    author = body.author or _author(principal)
    channel = await ctx.channels.find(channel_id)
    outcome = await channel.post(Post(author=author, content=body.content, mentions=body.mentions,
                                      reply_to=body.reply_to), _wait_s(ctx, wait))  # fmt: skip
    if isinstance(outcome, PostResult):
        return outcome
    accepted = PostAccepted(channel_id=channel_id, **outcome.model_dump(exclude={"detail"}))
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)


@router.get("/channels/{channel_id}/posts/{post_id}", response_model=PostStatus,
            responses=problems(401, 403, 404, 409, 422, 502, 503),
            summary="A post answered with 202: done or not, and its result")  # fmt: skip
async def get_post(channel_id: ChannelId, post_id: PostId, ctx: Ctx, _: Reader) -> PostStatus:
    channel = await ctx.channels.find(channel_id)
    result = await channel.result(post_id)
    return PostStatus(post_id=post_id, done=result is not None, result=result)


def _author_or(principal: Principal, fallback: str) -> str:
    """The key's name when it can be a member's name, else ``fallback``."""
    try:
        return check_name(principal.name, "author")
    except ValueError:
        return fallback


def _author(principal: Principal) -> str:
    try:
        return check_name(principal.name, "author")
    except ValueError as err:
        raise ApiError(422, "invalid-request", "Invalid request",
                       f"{err}; the key's name cannot be an author here: give `author`") from None  # fmt: skip


# --- read -------------------------------------------------------------------------------------------


@router.get("/channels/{channel_id}/messages", response_model=ChannelMessagePage,
            responses=problems(401, 403, 404, 422, 503),
            summary="The channel's messages, oldest first, a page at a time (from the store: whole bodies)")  # fmt: skip
async def list_messages(
    channel_id: ChannelId,
    ctx: Ctx,
    _: Reader,
    after: Annotated[int, Query(ge=0, le=MAX_INT64, description="return messages whose seq is greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ChannelMessagePage:
    if await ctx.in_thread(ctx.channel_store.get_channel, channel_id) is None:
        await ctx.channels.find(channel_id)  # 404 unless Temporal knows it (not opened yet)
    rows = await ctx.in_thread(ctx.channel_store.between, channel_id, after, None, limit + 1)
    messages = [ChannelMessageItem(seq=m.seq, author=m.author, kind=m.kind, content=m.content, reply_to=m.reply_to,
                                   answers=m.answers, mentions=m.mentions, conversation_id=m.source_conversation,
                                   created_at=m.created_at) for m in rows[:limit]]  # fmt: skip
    return ChannelMessagePage(messages=messages, next_after=messages[-1].seq if len(rows) > limit else None)


@router.get(
    "/channels/{channel_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"description": "`text/event-stream`: `id:` event id, `event:` type, `data:` the event as JSON",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}},
        **problems(401, 403, 404, 422, 503),
    },
    summary="Live events (SSE): messages, scores, turns, waits, budgets; resumable with Last-Event-ID",
)
async def stream_events(channel_id: ChannelId, request: Request, ctx: Ctx, _: Reader,
                        after: AfterParam = None, last_event_id: LastEventId = None) -> StreamingResponse:  # fmt: skip
    from api.channel_tokens import channel_live_response  # noqa: PLC0415 - issue 16: the agents' tokens too

    return await channel_live_response(ctx, request, await ctx.channels.find(channel_id), after, last_event_id)


# --- steer ------------------------------------------------------------------------------------------


def _steer(action: str, summary: str, *, with_body: bool = True) -> Any:
    statuses = (400, 401, 403, 404, 409, 413, 422, 503) if with_body else (401, 403, 404, 409, 422, 503)
    return router.post(f"/channels/{{channel_id}}/{action}", status_code=202, response_model=ChannelSignalSent,
                       responses=problems(*statuses), summary=summary)  # fmt: skip


@_steer("pause", "Pause: no agent starts a turn, the agents' turns stop at their next step")
async def pause(channel_id: ChannelId, ctx: Ctx, _: Operator,
                body: Annotated[Pause | None, Body()] = None) -> ChannelSignalSent:  # fmt: skip
    await (await ctx.channels.find(channel_id)).pause((body or Pause()).reason)
    return ChannelSignalSent(channel_id=channel_id, signal="pause")


@_steer("resume", "Resume a paused channel and its agents", with_body=False)
async def resume(channel_id: ChannelId, ctx: Ctx, _: Operator) -> ChannelSignalSent:
    await (await ctx.channels.find(channel_id)).resume()
    return ChannelSignalSent(channel_id=channel_id, signal="resume")


@_steer("inject", "Write a note into the channel: agents read it with their next turn, nobody answers it")
async def inject(channel_id: ChannelId, body: NoteBody, ctx: Ctx, principal: Operator) -> ChannelSignalSent:
    author = body.author if "author" in body.model_fields_set else _author_or(principal, body.author)
    await (await ctx.channels.find(channel_id)).inject(ChannelNote(content=body.content, author=author))
    return ChannelSignalSent(channel_id=channel_id, signal="inject")


@_steer("end", "End the channel and its agents' conversations")
async def end(channel_id: ChannelId, ctx: Ctx, _: Operator,
              body: Annotated[End | None, Body()] = None) -> ChannelSignalSent:  # fmt: skip
    await (await ctx.channels.find(channel_id)).end((body or End()).reason)
    return ChannelSignalSent(channel_id=channel_id, signal="end")


# --- checks only the server can make ----------------------------------------------------------------


async def _checked(body: CreateChannel, ctx: ApiContext, principal: Principal) -> ChannelInput:
    if body.policy and not principal.can(Permission.CONFIGURE):
        raise ApiError(403, "forbidden", "Role not allowed",
                       f"policy overrides need the admin role (key {principal.name!r} is {principal.role.value}): "
                       "an allow rule would let calls skip the approver")  # fmt: skip
    try:
        request = ChannelInput(channel_id=body.channel_id or f"ch{uuid.uuid4().hex[:10]}",
                               max_message_chars=ctx.settings.max_message_chars,
                               **body.model_dump(exclude={"channel_id"}, exclude_unset=True))  # fmt: skip
    except ValidationError as err:
        raise ApiError(422, "invalid-request", "Invalid request", str(err).replace("\n", "; ")) from None
    known = template_names(ctx.settings.agents_dir)
    unknown = [m.agent for m in request.agents if m.agent not in known]
    if unknown:
        raise ApiError(422, "unknown-agent", "Unknown agent template",
                       f"unknown agent templates {', '.join(unknown)}; known templates: {', '.join(known) or 'none'}")  # fmt: skip
    try:
        parse_rules(request.policy, f"policy overrides of channel {request.channel_id}")
        await ctx.in_thread(relevance_for_channel, request.channel_id, request.relevance, ctx.settings.relevance_file)
    except PolicyError as err:
        raise ApiError(422, "invalid-policy", "Invalid policy overrides", str(err)) from err
    except RelevanceConfigError as err:
        raise ApiError(422, "invalid-relevance", "Invalid relevance overrides", str(err)) from err
    for model in {m.model for m in request.agents if m.model}:
        await _check_model(ctx, model)
    return request
