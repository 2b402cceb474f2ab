"""Conversations over HTTP: start, list, read, talk, steer, end.

Every body is validated twice before a workflow sees it: by the pydantic contract (422 with the
field and the reason), then by what only the server knows (the agent template exists, the model is
on the template's model server, the message fits the limit). ``send_message`` then runs the workflow's own validator;
its rejection is a 422 (or 409 once the conversation ended) carrying the validator's words.

A message whose turn waits — for a person, for ``resume``, or longer than
``DAEMONFLOW_API_TURN_WAIT_S`` — is answered at once with 202, the state and the approvals that
wait (``control.turns``); its result is at ``GET /conversations/{id}/turns/{turn_id}`` later.
Everything reaches the workflow through the ``control`` client; its errors become problems in
``api/errors.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from activities.llm.probe import probe_template_server
from api.auth import Permission, Principal, require
from api.context import ApiContext
from api.errors import ApiError
from api.openapi import problems
from api.schemas import (
    AGENT_PATTERN,
    ID_PATTERN,
    AgentItem,
    ConversationCreated,
    ConversationDetail,
    ConversationPage,
    CreateConversation,
    InjectBody,
    MessageItem,
    MessagePage,
    SignalSent,
    TurnAccepted,
    TurnStatus,
)
from config.policy import PolicyError, parse_rules
from config.templates import InvalidAgentError, UnknownAgentError, load_all, load_template, template_names
from control.errors import ControlError, ConversationNotFound
from control.turns import TurnWaiting
from control.visibility import ConversationFilter
from models.conversation import ConversationInput, ConversationState, End, Pause, SendMessage, SetAutoAccept, TurnResult

router = APIRouter(tags=["conversations"])

ConversationId = Annotated[str, Path(pattern=ID_PATTERN, description="conversation id (workflow `conversation-<id>`)")]
TurnId = Annotated[str, Path(pattern=ID_PATTERN)]
MODEL_CHECK_TIMEOUT_S = 3.0
PENDING_QUERY_TIMEOUT = timedelta(seconds=2)
"""The messages page waits this long for the workflow to list what is pending (then lists without)."""
MAX_INT64 = 2**63 - 1
"""Sequence numbers and event ids are 64-bit in the store; a larger cursor is a 422, not a 500."""


def context(request: Request) -> ApiContext:
    return request.app.state.daemonflow


Ctx = Annotated[ApiContext, Depends(context)]
Reader = Annotated[Principal, Depends(require(Permission.READ))]
Operator = Annotated[Principal, Depends(require(Permission.OPERATE))]
WaitParam = Annotated[bool, Query(description="wait for the turn's result (true) or return 202 with its turn id at once")]


# --- start and list -------------------------------------------------------------------------------


@router.post(
    "/conversations",
    status_code=201,
    response_model=ConversationCreated,
    responses={
        202: {"model": ConversationCreated, "description": "with a message: started; its turn waits (a person, a "
              "pause, the wait budget, or wait=false) — `waiting` says why, `turn_id` finds its result"},
        **problems(400, 401, 403, 409, 413, 422, 502, 503),
    },
    summary="Start a conversation (optionally with its first message)",
)
async def create_conversation(
    body: CreateConversation, ctx: Ctx, principal: Operator, response: Response, wait: WaitParam = True
) -> ConversationCreated:
    await _check_start(body, ctx, principal)
    conversation_id = body.conversation_id or uuid.uuid4().hex[:12]
    request = ConversationInput(
        conversation_id=conversation_id,
        max_message_chars=ctx.settings.max_message_chars,
        turns_per_run=ctx.settings.turns_per_run,
        **body.model_dump(exclude={"message", "conversation_id"}),
    )
    started = await ctx.conversations.start(
        request, f"{body.agent} · started over HTTP by {principal.name}", body.message, _wait_s(ctx, wait)
    )
    response.headers["Location"] = f"/conversations/{conversation_id}"
    created = ConversationCreated(conversation_id=conversation_id, workflow_id=started.conversation.workflow_id,
                                  agent=body.agent, turn_id=started.turn_id)  # fmt: skip
    if isinstance(started.outcome, TurnResult):
        created.turn = started.outcome
    elif isinstance(started.outcome, TurnWaiting):
        created.waiting = started.outcome
        response.status_code = 202
    return created


@router.get(
    "/conversations",
    response_model=ConversationPage,
    responses=problems(401, 403, 422, 503),
    summary="List conversations (Temporal visibility), newest first",
)
async def list_conversations(
    ctx: Ctx,
    _: Reader,
    state: Annotated[ConversationState | None, Query()] = None,
    agent: Annotated[str | None, Query(pattern=AGENT_PATTERN)] = None,
    awaiting_approval: Annotated[bool | None, Query()] = None,
    running: Annotated[bool | None, Query(description="true: running only; false: finished only")] = None,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
    page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> ConversationPage:
    matching = ConversationFilter(running=running, state=state, agent=agent, awaiting_approval=awaiting_approval)
    items, next_token = await ctx.conversations.list(matching, page_size, _page_token(page_token))
    return ConversationPage(
        conversations=items,
        next_page_token=base64.urlsafe_b64encode(next_token).decode().rstrip("=") if next_token else None,
    )


def _page_token(text: str | None) -> bytes | None:
    if not text:
        return None
    try:
        token = base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
        json.loads(token)  # Temporal's visibility tokens are JSON; anything else it fails on as UNKNOWN
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid-request", "Invalid request", "page_token is not a token this API gave out") from None
    return token


# --- read -------------------------------------------------------------------------------------------


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationDetail,
    responses=problems(401, 403, 404, 422, 503),
    summary="A conversation's status (the workflow's status query)",
)
async def get_conversation(conversation_id: ConversationId, ctx: Ctx, _: Reader) -> ConversationDetail:
    conversation = await ctx.conversations.find(conversation_id)
    status = await conversation.status()
    assert conversation.execution is not None
    return ConversationDetail(workflow_id=conversation.workflow_id, execution=conversation.execution.name, status=status)


@router.get(
    "/conversations/{conversation_id}/messages",
    response_model=MessagePage,
    responses=problems(401, 403, 404, 422, 503),
    summary="The transcript, oldest first, a page at a time (from the store: whole bodies), then what waits",
)
async def list_messages(
    conversation_id: ConversationId,
    ctx: Ctx,
    _: Reader,
    after: Annotated[int, Query(ge=0, le=MAX_INT64, description="return messages whose seq is greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    rows = await ctx.in_thread(ctx.transcripts.list_messages, conversation_id, after, limit + 1)
    more = len(rows) > limit
    messages = [
        MessageItem(seq=r.seq, role=r.role, content=r.content, tool_calls=r.tool_calls,
                    tool_call_id=r.tool_call_id, created_at=r.created_at)  # fmt: skip
        for r in rows[:limit]
    ]
    if not more:
        messages += await _not_yet_written(ctx, conversation_id, known=bool(rows))
    return MessagePage(messages=messages, next_after=messages[-1].seq if more else None)


async def _not_yet_written(ctx: ApiContext, conversation_id: str, known: bool) -> list[MessageItem]:
    """The last page ends with what the model has not seen yet (``pending``), from the workflow.

    404 only when neither the store nor Temporal knows the conversation; a conversation whose worker
    does not answer still lists its stored messages, without the pending ones.
    """
    known = known or await ctx.in_thread(ctx.transcripts.get_conversation, conversation_id) is not None
    try:
        conversation = await ctx.conversations.find(conversation_id)
        if not conversation.execution or not conversation.execution.running:
            return []
        pending = await conversation.pending_messages(PENDING_QUERY_TIMEOUT)
    except ConversationNotFound:
        if known:
            return []
        raise
    except ControlError:
        return []
    return [MessageItem(seq=None, role=m.role, content=m.content, created_at=None, pending=True) for m in pending]


# --- talk -------------------------------------------------------------------------------------------


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=TurnResult,
    responses={
        202: {"model": TurnAccepted, "description": "accepted, not answered yet: waiting for a person, paused, "
              "slower than DAEMONFLOW_API_TURN_WAIT_S, or wait=false — `reason`, `state`, `pending_approvals`"},
        **problems(400, 401, 403, 404, 409, 413, 422, 502, 503),
    },
    summary="Send a message (update send_message); the turn's result, or 202 with its turn id and why it waits",
)
async def send_message(conversation_id: ConversationId, body: SendMessage, ctx: Ctx, _: Operator,
                       wait: WaitParam = True) -> Any:  # fmt: skip
    conversation = await ctx.conversations.find(conversation_id)
    outcome = await conversation.send(body.content, _wait_s(ctx, wait))
    if isinstance(outcome, TurnResult):
        return outcome
    accepted = TurnAccepted(conversation_id=conversation_id, **outcome.model_dump(exclude={"detail"}))
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)


@router.get(
    "/conversations/{conversation_id}/turns/{turn_id}",
    response_model=TurnStatus,
    responses=problems(401, 403, 404, 409, 422, 502, 503),
    summary="A turn answered with 202 (wait=false, paused, waiting for a person, or slow): done or not, and its result",
)
async def get_turn(conversation_id: ConversationId, turn_id: TurnId, ctx: Ctx, _: Reader) -> TurnStatus:
    conversation = await ctx.conversations.find(conversation_id)
    result = await conversation.turn(turn_id)
    return TurnStatus(turn_id=turn_id, done=result is not None, result=result)


def _wait_s(ctx: ApiContext, wait: bool) -> float:
    return ctx.settings.api_turn_wait_s if wait else 0


# --- steer ------------------------------------------------------------------------------------------


def _steer(route: Any, action: str, summary: str, *, with_body: bool = True) -> Any:
    """The steering endpoints only deliver a signal, so they answer alike: 202 and ``SignalSent``."""
    statuses = (400, 401, 403, 404, 409, 413, 422, 503) if with_body else (401, 403, 404, 409, 422, 503)
    return route(f"/conversations/{{conversation_id}}/{action}", status_code=202, response_model=SignalSent,
                 responses=problems(*statuses), summary=summary)  # fmt: skip


@_steer(router.post, "pause", "Pause between steps")
async def pause(conversation_id: ConversationId, ctx: Ctx, _: Operator,
                body: Annotated[Pause | None, Body()] = None) -> SignalSent:  # fmt: skip
    await (await ctx.conversations.find(conversation_id)).pause((body or Pause()).reason)
    return SignalSent(conversation_id=conversation_id, signal="pause")


@_steer(router.post, "resume", "Resume a paused conversation", with_body=False)
async def resume(conversation_id: ConversationId, ctx: Ctx, _: Operator) -> SignalSent:
    await (await ctx.conversations.find(conversation_id)).resume()
    return SignalSent(conversation_id=conversation_id, signal="resume")


@_steer(router.post, "inject", "Add a message without waiting for a turn")
async def inject(conversation_id: ConversationId, body: InjectBody, ctx: Ctx, _: Operator) -> SignalSent:
    _check_length("content", body.content, ctx.settings.max_message_chars)
    await (await ctx.conversations.find(conversation_id)).inject(body)
    return SignalSent(conversation_id=conversation_id, signal="inject")


@_steer(router.post, "end", "End the conversation for good")
async def end(conversation_id: ConversationId, ctx: Ctx, _: Operator,
              body: Annotated[End | None, Body()] = None) -> SignalSent:  # fmt: skip
    await (await ctx.conversations.find(conversation_id)).end((body or End()).reason)
    return SignalSent(conversation_id=conversation_id, signal="end")


@_steer(router.put, "auto-accept", "Turn auto-accept on or off")
async def auto_accept(conversation_id: ConversationId, body: SetAutoAccept, ctx: Ctx, _: Operator) -> SignalSent:
    await (await ctx.conversations.find(conversation_id)).set_auto_accept(body.enabled)
    return SignalSent(conversation_id=conversation_id, signal="set_auto_accept")


# --- agents -----------------------------------------------------------------------------------------


@router.get("/agents", response_model=list[AgentItem], tags=["agents"],
            responses=problems(401, 403, 500), summary="The agent templates a conversation can use")  # fmt: skip
async def list_agents(ctx: Ctx, _: Reader) -> list[AgentItem]:
    templates = await ctx.in_thread(load_all, ctx.settings.agents_dir)
    return [AgentItem.model_validate(t.model_dump()) for t in templates]


# --- checks only the server can make ----------------------------------------------------------------


async def _check_start(body: CreateConversation, ctx: ApiContext, principal: Principal) -> None:
    if body.policy and not principal.can(Permission.CONFIGURE):
        raise ApiError(403, "forbidden", "Role not allowed",
                       f"policy overrides need the admin role (key {principal.name!r} is {principal.role.value}): "
                       "an allow rule would let calls skip the approver")  # fmt: skip
    if body.policy:
        try:
            parse_rules(body.policy)
        except PolicyError as err:
            raise ApiError(422, "invalid-policy", "Invalid policy overrides", str(err)) from err
    known = template_names(ctx.settings.agents_dir)
    if body.agent not in known:
        raise ApiError(422, "unknown-agent", "Unknown agent template",
                       f"unknown agent template {body.agent!r}; known templates: {', '.join(known) or 'none'}")  # fmt: skip
    if body.model:
        await _check_model(ctx, body.agent, body.model)
    if body.message is not None:
        if not body.message.strip():
            raise ApiError(422, "invalid-request", "Invalid request", "message is empty")
        _check_length("message", body.message, ctx.settings.max_message_chars)


def _check_length(field: str, content: str, limit: int) -> None:
    """The limit is a setting (``max_message_chars``), so the schema's fixed ``max_length`` cannot carry it."""
    if len(content) > limit:
        raise ApiError(422, "invalid-request", "Invalid request", f"{field} is {len(content)} characters; the limit is {limit}")


async def _check_model(ctx: ApiContext, agent: str, model: str) -> None:
    """Refuse a model the agent template's own server surely lacks (Ollama, vLLM: they serve only
    what they list; a llama-server answers any name); accept it when the server is away (turns
    wait for it) or cannot tell."""
    try:
        template = await ctx.in_thread(load_template, agent, ctx.settings.agents_dir)
    except (UnknownAgentError, InvalidAgentError):  # checked just before; a broken one fails its start
        return
    probe = await probe_template_server(ctx.settings, template, MODEL_CHECK_TIMEOUT_S)
    if not probe.lacks(model):
        return
    server = probe.server or "the model server"
    fix = f"run `ollama pull {model}`" if probe.provider == "ollama" else f"it serves {', '.join(probe.models) or 'none'}"
    raise ApiError(422, "unknown-model", f"Model not on {server}",
                   f"{server} at {probe.base_url} (agent {agent!r}) has no model {model!r}; {fix}")  # fmt: skip
