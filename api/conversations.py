"""Conversations over HTTP: start, list, read, talk, steer, end.

Every body is validated twice before a workflow sees it: by the pydantic contract (422 with the
field and the reason), then by what only the server knows (the agent template exists, the model is
on Ollama, the message fits the limit). ``send_message`` then runs the workflow's own validator;
its rejection is a 422 (or 409 once the conversation ended) carrying the validator's words.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from datetime import timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Permission, Principal, require
from api.errors import ApiError, temporal_problem
from api.gateway import ApiContext, ended, execution_name
from api.openapi import problems
from api.schemas import (
    ID_PATTERN,
    AGENT_PATTERN,
    AgentItem,
    ConversationCreated,
    ConversationDetail,
    ConversationItem,
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
from config.templates import load_all, template_names
from models.conversation import (
    WORKFLOW_ID_PREFIX,
    ConversationInput,
    ConversationState,
    End,
    Pause,
    SendMessage,
    SetAutoAccept,
    Status,
    TurnResult,
    conversation_workflow_id,
)
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow

router = APIRouter(tags=["conversations"])

ConversationId = Annotated[str, Path(pattern=ID_PATTERN, description="conversation id (workflow `conversation-<id>`)")]
TurnId = Annotated[str, Path(pattern=ID_PATTERN)]
OLLAMA_CHECK_TIMEOUT_S = 3.0
REJECTION_TYPES = {"ValueError", "TypeError"}
"""What the ``send_message`` validator raises; the SDK reports it as an ApplicationError of that type."""
TURN_POLL_S = 1.0
MAX_INT64 = 2**63 - 1
"""Sequence numbers and event ids are 64-bit in the store; a larger cursor is a 422, not a 500."""


def context(request: Request) -> ApiContext:
    return request.app.state.daemonflow


Ctx = Annotated[ApiContext, Depends(context)]
Reader = Annotated[Principal, Depends(require(Permission.READ))]
Operator = Annotated[Principal, Depends(require(Permission.OPERATE))]


# --- start and list -------------------------------------------------------------------------------


@router.post(
    "/conversations",
    status_code=201,
    response_model=ConversationCreated,
    responses={
        202: {"model": ConversationCreated, "description": "with a message and `wait=false`: started; the turn id"},
        **problems(400, 401, 403, 409, 413, 422, 502, 503),
    },
    summary="Start a conversation (optionally with its first message)",
)
async def create_conversation(
    body: CreateConversation,
    ctx: Ctx,
    principal: Operator,
    response: Response,
    wait: Annotated[bool, Query(description="with a message: wait for its turn (true) or return its turn id at once")] = True,
) -> ConversationCreated:
    settings = ctx.settings
    if body.policy and not principal.can(Permission.CONFIGURE):
        raise ApiError(403, "forbidden", "Role not allowed",
                       f"policy overrides need the admin role (key {principal.name!r} is {principal.role.value}): "
                       "an allow rule would let calls skip the approver")  # fmt: skip
    if body.policy:
        try:
            parse_rules(body.policy)
        except PolicyError as err:
            raise ApiError(422, "invalid-policy", "Invalid policy overrides", str(err)) from err
    known = template_names(settings.agents_dir)
    if body.agent not in known:
        raise ApiError(422, "unknown-agent", "Unknown agent template",
                       f"unknown agent template {body.agent!r}; known templates: {', '.join(known) or 'none'}")  # fmt: skip
    if body.model:
        await _check_model(ctx, body.model)
    if body.message is not None:
        _check_message(body.message, settings.max_message_chars)

    conversation_id = body.conversation_id or uuid.uuid4().hex[:12]
    workflow_id = conversation_workflow_id(conversation_id)
    options = body.model_dump(exclude={"message", "conversation_id"})
    workflow_input = ConversationInput(
        conversation_id=conversation_id,
        max_message_chars=settings.max_message_chars,
        turns_per_run=settings.turns_per_run,
        **options,
    )
    response.headers["Location"] = f"/conversations/{conversation_id}"
    created = ConversationCreated(conversation_id=conversation_id, workflow_id=workflow_id, agent=body.agent)
    start_options: dict[str, Any] = {
        "id": workflow_id,
        "task_queue": settings.task_queue,
        "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
        "id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
        "static_summary": f"{body.agent} · started over HTTP by {principal.name}",
    }
    try:
        if body.message is None:
            await ctx.client.start_workflow(ConversationWorkflow.run, workflow_input, **start_options)
            return created
        turn_id = new_turn_id()
        start = WithStartWorkflowOperation(ConversationWorkflow.run, workflow_input, **start_options)
        update = await _accepted(
            ctx,
            conversation_id,
            ctx.client.start_update_with_start_workflow(
                ConversationWorkflow.send_message,
                SendMessage(content=body.message),
                start_workflow_operation=start,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                id=turn_id,
            ),
        )
    except WorkflowAlreadyStartedError:
        raise _taken(conversation_id) from None
    except RPCError as err:
        if err.status == RPCStatusCode.ALREADY_EXISTS:
            raise _taken(conversation_id) from None
        raise temporal_problem(err, "starting the conversation") from err
    created.turn_id = turn_id
    if wait:
        created.turn = await _turn_result(conversation_id, update, settings.api_turn_wait_s)
    else:
        await _raise_if_rejected(conversation_id, update)
    if created.turn is None:
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
    clauses = ["WorkflowType = 'ConversationWorkflow'", f"TaskQueue = {_quoted(ctx.settings.task_queue)}"]
    if state is not None:
        clauses.append(f"{search_attributes.STATE.name} = '{state.value}'")
    if agent is not None:
        clauses.append(f"{search_attributes.AGENT.name} = '{agent}'")
    if awaiting_approval is not None:
        clauses.append(f"{search_attributes.AWAITING_APPROVAL.name} = {'true' if awaiting_approval else 'false'}")
    if running is not None:
        clauses.append("ExecutionStatus = 'Running'" if running else "ExecutionStatus != 'Running'")
    token = None
    if page_token:
        try:
            token = base64.urlsafe_b64decode(page_token.encode() + b"=" * (-len(page_token) % 4))
            json.loads(token)  # Temporal's visibility tokens are JSON; anything else it fails on as UNKNOWN
        except (binascii.Error, ValueError):
            raise ApiError(422, "invalid-request", "Invalid request", "page_token is not a token this API gave out") from None
    iterator = ctx.client.list_workflows(
        " AND ".join(clauses), page_size=page_size, next_page_token=token, rpc_timeout=ctx.query_timeout
    )
    try:
        await iterator.fetch_next_page()
    except RPCError as err:
        raise temporal_problem(err, "listing conversations") from err
    items = []
    for execution in iterator.current_page or []:
        attributes = execution.typed_search_attributes
        items.append(
            ConversationItem(
                conversation_id=execution.id.removeprefix(WORKFLOW_ID_PREFIX),
                workflow_id=execution.id,
                execution=execution_name(execution.status),
                state=attributes.get(search_attributes.STATE),
                agent=attributes.get(search_attributes.AGENT),
                awaiting_approval=bool(attributes.get(search_attributes.AWAITING_APPROVAL)),
                started_at=execution.start_time,
                closed_at=execution.close_time,
            )
        )
    next_token = iterator.next_page_token
    return ConversationPage(
        conversations=items,
        next_page_token=base64.urlsafe_b64encode(next_token).decode().rstrip("=") if next_token else None,
    )


# --- read -------------------------------------------------------------------------------------------


@router.get(
    "/conversations/{conversation_id}",
    response_model=ConversationDetail,
    responses=problems(401, 403, 404, 422, 503),
    summary="A conversation's status (the workflow's status query)",
)
async def get_conversation(conversation_id: ConversationId, ctx: Ctx, _: Reader) -> ConversationDetail:
    description = await ctx.describe(conversation_id)
    status: Status = await ctx.query(ctx.handle(conversation_id), ConversationWorkflow.status)
    return ConversationDetail(
        workflow_id=description.id, execution=execution_name(description.status), status=status
    )


@router.get(
    "/conversations/{conversation_id}/messages",
    response_model=MessagePage,
    responses=problems(401, 403, 404, 422, 503),
    summary="The transcript, oldest first, a page at a time (from the store: whole bodies)",
)
async def list_messages(
    conversation_id: ConversationId,
    ctx: Ctx,
    _: Reader,
    after: Annotated[int, Query(ge=0, le=MAX_INT64, description="return messages whose seq is greater than this")] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> MessagePage:
    rows = await ctx.in_thread(ctx.transcripts.list_messages, conversation_id, after, limit + 1)
    if not rows and await ctx.in_thread(ctx.transcripts.get_conversation, conversation_id) is None:
        await ctx.describe(conversation_id)  # 404 unless the workflow exists (its row may be moments away)
    more = len(rows) > limit
    rows = rows[:limit]
    return MessagePage(
        messages=[
            MessageItem(seq=r.seq, role=r.role, content=r.content, tool_calls=r.tool_calls,
                        tool_call_id=r.tool_call_id, created_at=r.created_at)  # fmt: skip
            for r in rows
        ],
        next_after=rows[-1].seq if more else None,
    )


# --- talk -------------------------------------------------------------------------------------------


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=TurnResult,
    responses={
        202: {"model": TurnAccepted, "description": "accepted, not answered yet (wait=false, paused, or slower "
              "than DAEMONFLOW_API_TURN_WAIT_S): its turn id"},
        **problems(400, 401, 403, 404, 409, 413, 422, 502, 503),
    },
    summary="Send a message (update send_message); the turn's result, or 202 with its turn id",
)
async def send_message(
    conversation_id: ConversationId,
    body: SendMessage,
    ctx: Ctx,
    _: Operator,
    wait: Annotated[bool, Query(description="wait for the turn's result (true) or return 202 with its turn id")] = True,
) -> Any:
    handle = await ctx.running(conversation_id)
    if wait:
        status: Status = await ctx.query(handle, ConversationWorkflow.status)
        wait = not status.paused  # answered only after resume: do not hold the request open until then
    turn_id = new_turn_id()
    try:
        update = await _accepted(
            ctx,
            conversation_id,
            handle.start_update(
                ConversationWorkflow.send_message, body, id=turn_id, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            ),
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ended(conversation_id, None) from None
        raise temporal_problem(err, "sending the message") from err
    if wait:
        result = await _turn_result(conversation_id, update, ctx.settings.api_turn_wait_s)
        if result is not None:
            return result
    else:
        await _raise_if_rejected(conversation_id, update)
    return JSONResponse(TurnAccepted(conversation_id=conversation_id, turn_id=turn_id).model_dump(mode="json"), status_code=202)


@router.get(
    "/conversations/{conversation_id}/turns/{turn_id}",
    response_model=TurnStatus,
    responses=problems(401, 403, 404, 409, 422, 502, 503),
    summary="A turn answered with 202 (wait=false, paused, or slow): done or not, and its result",
)
async def get_turn(conversation_id: ConversationId, turn_id: TurnId, ctx: Ctx, _: Reader) -> TurnStatus:
    await ctx.describe(conversation_id)
    update = ctx.handle(conversation_id).get_update_handle(turn_id, result_type=TurnResult)
    try:
        result = await update.result(rpc_timeout=timedelta(seconds=TURN_POLL_S))
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        return TurnStatus(turn_id=turn_id, done=False)
    except WorkflowUpdateFailedError as err:
        raise _failure(conversation_id, err) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, "turn-not-found", "Unknown turn",
                           f"conversation {conversation_id!r} has no turn {turn_id!r} (turn ids come from wait=false)") from None  # fmt: skip
        raise temporal_problem(err, "reading the turn") from err
    return TurnStatus(turn_id=turn_id, done=True, result=result)


# --- steer ------------------------------------------------------------------------------------------


def _steer(route: Any, action: str, summary: str, *, with_body: bool = True) -> Any:
    """The steering endpoints only deliver a signal, so they answer alike: 202 and ``SignalSent``."""
    statuses = (400, 401, 403, 404, 409, 413, 422, 503) if with_body else (401, 403, 404, 409, 422, 503)
    return route(f"/conversations/{{conversation_id}}/{action}", status_code=202, response_model=SignalSent,
                 responses=problems(*statuses), summary=summary)  # fmt: skip


@_steer(router.post, "pause", "Pause between steps")
async def pause(conversation_id: ConversationId, ctx: Ctx, _: Operator,
                body: Annotated[Pause | None, Body()] = None) -> SignalSent:  # fmt: skip
    return await _signal(ctx, conversation_id, "pause", ConversationWorkflow.pause, body or Pause())


@_steer(router.post, "resume", "Resume a paused conversation", with_body=False)
async def resume(conversation_id: ConversationId, ctx: Ctx, _: Operator) -> SignalSent:
    return await _signal(ctx, conversation_id, "resume", ConversationWorkflow.resume)


@_steer(router.post, "inject", "Add a message without waiting for a turn")
async def inject(conversation_id: ConversationId, body: InjectBody, ctx: Ctx, _: Operator) -> SignalSent:
    _check_length("content", body.content, ctx.settings.max_message_chars)
    return await _signal(ctx, conversation_id, "inject", ConversationWorkflow.inject, body)


@_steer(router.post, "end", "End the conversation for good")
async def end(conversation_id: ConversationId, ctx: Ctx, _: Operator,
              body: Annotated[End | None, Body()] = None) -> SignalSent:  # fmt: skip
    return await _signal(ctx, conversation_id, "end", ConversationWorkflow.end, body or End())


@_steer(router.put, "auto-accept", "Turn auto-accept on or off")
async def auto_accept(conversation_id: ConversationId, body: SetAutoAccept, ctx: Ctx, _: Operator) -> SignalSent:
    return await _signal(ctx, conversation_id, "set_auto_accept", ConversationWorkflow.set_auto_accept, body)


# --- agents -----------------------------------------------------------------------------------------


@router.get("/agents", response_model=list[AgentItem], tags=["agents"],
            responses=problems(401, 403, 500), summary="The agent templates a conversation can use")  # fmt: skip
async def list_agents(ctx: Ctx, _: Reader) -> list[AgentItem]:
    templates = await ctx.in_thread(load_all, ctx.settings.agents_dir)
    return [AgentItem.model_validate(t.model_dump()) for t in templates]


# --- helpers ----------------------------------------------------------------------------------------


def new_turn_id() -> str:
    return f"turn-{uuid.uuid4().hex}"


def _quoted(value: str) -> str:
    if "'" in value or "\\" in value:
        raise ApiError(500, "internal", "Bad configuration", "the task queue name contains a quote")
    return f"'{value}'"


def _taken(conversation_id: str) -> ApiError:
    return ApiError(409, "conversation-exists", "Conversation id in use",
                    f"conversation id {conversation_id!r} is already used; choose another or leave it out")  # fmt: skip


def _check_message(content: str, limit: int) -> None:
    if not content.strip():
        raise ApiError(422, "invalid-request", "Invalid request", "message is empty")
    _check_length("message", content, limit)


def _check_length(field: str, content: str, limit: int) -> None:
    """The limit is a setting (``max_message_chars``), so the schema's fixed ``max_length`` cannot carry it."""
    if len(content) > limit:
        raise ApiError(422, "invalid-request", "Invalid request", f"{field} is {len(content)} characters; the limit is {limit}")


async def _check_model(ctx: ApiContext, model: str) -> None:
    """Refuse a model Ollama says it lacks; accept it when Ollama is away (turns wait for it)."""
    try:
        async with httpx.AsyncClient(base_url=ctx.settings.ollama_host, timeout=OLLAMA_CHECK_TIMEOUT_S) as http:
            answer = await http.post("/api/show", json={"model": model})
    except httpx.HTTPError:
        return
    if answer.status_code == 404:
        raise ApiError(422, "unknown-model", "Model not on Ollama",
                       f"Ollama at {ctx.settings.ollama_host} has no model {model!r}; run `ollama pull {model}`")  # fmt: skip


async def _accepted(ctx: ApiContext, conversation_id: str, starting: Any) -> WorkflowUpdateHandle[TurnResult]:
    """Wait for the workflow to accept (validate) the message; its rejection is a 4xx."""
    try:
        return await asyncio.wait_for(starting, ctx.settings.api_query_timeout_s)
    except TimeoutError:
        raise ApiError(503, "no-worker", "No worker answered",
                       f"no worker accepted the message within {ctx.settings.api_query_timeout_s:g}s; is a worker "
                       f"running on task queue {ctx.settings.task_queue!r}? (the message may still be answered later)") from None  # fmt: skip
    except WorkflowUpdateFailedError as err:
        raise _failure(conversation_id, err) from err


async def _raise_if_rejected(conversation_id: str, update: WorkflowUpdateHandle[TurnResult]) -> None:
    """With ``wait=false``: a message the validator rejected is a 4xx, not a 202.

    The server answers an update that reached ACCEPTED without an outcome, and a rejected one with
    its failure already in the answer; the SDK keeps that as the handle's known outcome (no public
    accessor), so reading it costs no round trip.
    """
    outcome = getattr(update, "_known_outcome", None)
    if outcome is not None and outcome.HasField("failure"):
        try:
            await update.result()
        except WorkflowUpdateFailedError as err:
            raise _failure(conversation_id, err) from err


async def _turn_result(conversation_id: str, update: WorkflowUpdateHandle[TurnResult], wait_s: float) -> TurnResult | None:
    """The turn's result, or None when it takes longer than ``wait_s`` (the caller answers 202)."""
    try:
        return await asyncio.wait_for(update.result(), wait_s)
    except TimeoutError:
        return None
    except WorkflowUpdateFailedError as err:
        raise _failure(conversation_id, err) from err


def _failure(conversation_id: str, err: WorkflowUpdateFailedError) -> ApiError:
    """Rejected by the validator (422, or 409 once ended), ended under it (409), or the model failed (502)."""
    cause = _application_cause(err)
    reason = cause.message if cause is not None else str(err.cause)
    if cause is not None and cause.type in REJECTION_TYPES:
        if "has ended" in reason:
            return ApiError(409, "conversation-ended", "Conversation is over", reason)
        return ApiError(422, "message-rejected", "Message rejected", reason)
    if cause is not None and cause.type == "ConversationEnded":
        return ApiError(409, "conversation-ended", "Conversation is over", reason)
    if cause is not None and cause.type in ("ModelError", "ModelUnavailable"):
        return ApiError(502, "model-error", "The model failed", reason)
    return ApiError(502, "turn-failed", "The turn failed", reason)


def _application_cause(err: BaseException) -> ApplicationError | None:
    cause: BaseException | None = err.cause if isinstance(err, WorkflowUpdateFailedError) else err
    while cause is not None:
        if isinstance(cause, ApplicationError):
            return cause
        cause = cause.__cause__ if not isinstance(cause, FailureError) else cause.cause
    return None


async def _signal(ctx: ApiContext, conversation_id: str, name: str, signal: Any, *args: Any) -> SignalSent:
    handle = await ctx.running(conversation_id)
    await ctx.signal(handle, signal, *args)
    return SignalSent(conversation_id=conversation_id, signal=name)

