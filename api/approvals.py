"""Approvals across conversations: what waits for a person, and deciding it with one call.

Listing asks Temporal visibility which conversations are awaiting approval
(``DaemonflowAwaitingApproval = true``), then each of them for its ``pending_approvals``.

Deciding checks the call is still waiting (404 if the id is unknown, 409 if it was already decided
— by the audit row, or the conversation's ``approval_decided`` event while the tool still runs),
then signals ``approve`` bound to the hash of the arguments that wait, with the API key's name as
the approver. Approve runs exactly the arguments shown; only ``edit`` carries new ones. The answer
says whether the workflow took the decision: it waits (``api_decision_confirm_s``) for the call to
leave the pending list and checks that this decision, not a concurrent one, is the one applied.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from api.auth import Permission, Principal, require
from api.conversations import ConversationId, Ctx, Reader
from api.errors import ApiError, temporal_problem
from api.gateway import ApiContext
from api.metrics import DECISIONS
from api.openapi import problems
from api.schemas import ID_PATTERN, ApprovalItem, DecisionBody, DecisionResult
from models.conversation import WORKFLOW_ID_PREFIX, Approve, PendingApproval, Status
from models.events import EventType
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow

router = APIRouter(tags=["approvals"])

ToolCallId = Annotated[str, Path(pattern=ID_PATTERN, description="the tool call id shown with the pending approval")]
Approver = Annotated[Principal, Depends(require(Permission.DECIDE))]
LIST_LIMIT = 500
QUERY_CONCURRENCY = 8
CONFIRM_POLL_S = 0.2


@router.get("/approvals", response_model=list[ApprovalItem], responses=problems(401, 403, 503),
            summary="Every tool call waiting for a person, across conversations, oldest first")  # fmt: skip
async def list_approvals(ctx: Ctx, _: Reader) -> list[ApprovalItem]:
    query = (
        f"WorkflowType = 'ConversationWorkflow' AND TaskQueue = '{ctx.settings.task_queue}' "
        f"AND ExecutionStatus = 'Running' AND {search_attributes.AWAITING_APPROVAL.name} = true"
    )
    try:
        executions = [e async for e in ctx.client.list_workflows(query, limit=LIST_LIMIT, rpc_timeout=ctx.query_timeout)]
    except RPCError as err:
        raise temporal_problem(err, "listing conversations awaiting approval") from err
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def pending_of(workflow_id: str, agent: str | None) -> list[ApprovalItem]:
        conversation_id = workflow_id.removeprefix(WORKFLOW_ID_PREFIX)
        async with gate:
            try:
                pending: list[PendingApproval] = await ctx.query(
                    ctx.client.get_workflow_handle(workflow_id), ConversationWorkflow.pending_approvals
                )
            except ApiError:
                return []  # closed or unanswerable since visibility listed it: nothing to decide there
        return [ApprovalItem(conversation_id=conversation_id, agent=agent, **p.model_dump()) for p in pending]

    groups = await asyncio.gather(
        *(pending_of(e.id, e.typed_search_attributes.get(search_attributes.AGENT)) for e in executions)
    )
    items = [item for group in groups for item in group]
    return sorted(items, key=lambda a: (a.requested_at is None, a.requested_at, a.conversation_id, a.tool_call_id))


@router.post(
    "/approvals/{conversation_id}/{tool_call_id}",
    response_model=DecisionResult,
    responses={
        202: {"model": DecisionResult, "description": "delivered; the workflow has not applied it yet"},
        **problems(400, 401, 403, 404, 409, 413, 422, 503),
    },
    summary="Decide a waiting tool call: approve, approve_always, deny or edit",
)
async def decide(
    conversation_id: ConversationId, tool_call_id: ToolCallId, body: DecisionBody, ctx: Ctx, principal: Approver
) -> Any:
    description = await ctx.describe(conversation_id)
    handle = ctx.handle(conversation_id)
    if description.status != WorkflowExecutionStatus.RUNNING:
        await _raise_if_decided(ctx, handle, conversation_id, tool_call_id, running=False)
        raise ApiError(409, "conversation-ended", "Conversation is over",
                       f"conversation {conversation_id!r} is {description.status.name.lower() if description.status else 'over'}; "
                       "nothing in it waits for a decision")  # fmt: skip
    pending_list: list[PendingApproval] = await ctx.query(handle, ConversationWorkflow.pending_approvals)
    pending = next((p for p in pending_list if p.tool_call_id == tool_call_id), None)
    if pending is None:
        await _raise_if_decided(ctx, handle, conversation_id, tool_call_id, running=True)
        waiting = ", ".join(p.tool_call_id for p in pending_list) or "none"
        raise ApiError(404, "tool-call-not-pending", "No such waiting tool call",
                       f"no tool call {tool_call_id!r} waits for a decision in conversation {conversation_id!r} "
                       f"(waiting: {waiting})")  # fmt: skip
    if body.arguments_hash and body.arguments_hash != pending.args_hash:
        raise ApiError(409, "arguments-changed", "Arguments differ from what you saw",
                       f"the waiting call's arguments hash is {pending.args_hash}, not {body.arguments_hash}; "
                       "look at the call again before deciding")  # fmt: skip
    runs: dict[str, Any] | None
    if body.decision == "edit":
        if body.arguments is None:
            raise ApiError(422, "invalid-decision", "Invalid decision", "an edit needs the new `arguments`")
        runs = body.arguments
    elif body.decision == "deny":
        if body.arguments is not None:
            raise ApiError(422, "invalid-decision", "Invalid decision", "a deny takes no `arguments`")
        runs = None
    else:
        if body.arguments is not None and body.arguments != pending.arguments:
            raise ApiError(422, "invalid-decision", "Invalid decision",
                           f"{body.decision} runs exactly the arguments shown; use decision=edit to change them")  # fmt: skip
        runs = pending.arguments

    signal = Approve(
        tool_call_id=tool_call_id,
        decision=body.decision,
        arguments=body.arguments if body.decision == "edit" else None,
        arguments_hash=pending.args_hash,
        reason=body.reason,
        approver=principal.name,
    )
    await ctx.signal(handle, ConversationWorkflow.approve, signal)
    applied = await _confirm(ctx, handle, conversation_id, signal)
    DECISIONS.labels(body.decision, "applied" if applied else "pending").inc()
    result = DecisionResult(
        conversation_id=conversation_id,
        tool_call_id=tool_call_id,
        decision=body.decision,
        approver=principal.name,
        arguments=runs,
        args_hash=pending.args_hash,
        applied=applied,
    )
    if applied:
        return result
    return Response(result.model_dump_json(), status_code=202, media_type="application/json")


async def _raise_if_decided(ctx: ApiContext, handle: Any, conversation_id: str, tool_call_id: str, running: bool) -> None:
    """409 when the call was decided before: its audit row, or (tool still running) its event."""
    rows = await ctx.in_thread(lambda: ctx.actions.actions(conversation_id=conversation_id, limit=10_000))
    row = next((r for r in rows if r.tool_call_id == tool_call_id), None)
    if row is not None:
        raise ApiError(409, "already-decided", "Already decided",
                       f"tool call {tool_call_id!r} was already decided: {row.decision} ({row.source}) at "
                       f"{row.created_at.isoformat()}")  # fmt: skip
    if not running:
        return
    try:
        events = await ctx.events(handle, after=0)
    except ApiError:
        return  # a workflow without the events query: the audit row is the only record
    for event in events:
        if event.type == EventType.APPROVAL_DECIDED and event.data.get("tool_call_id") == tool_call_id:
            who = event.data.get("approver") or "unknown"
            raise ApiError(409, "already-decided", "Already decided",
                           f"tool call {tool_call_id!r} was already decided: {event.data.get('decision')} by {who}")  # fmt: skip


async def _confirm(ctx: ApiContext, handle: Any, conversation_id: str, signal: Approve) -> bool:
    """True once the workflow applied this decision; 409 if another decision won the race."""
    marker = f"{signal.tool_call_id} ({signal.decision} by {signal.approver})"
    deadline = asyncio.get_running_loop().time() + ctx.settings.api_decision_confirm_s
    while True:
        try:
            status: Status = await ctx.query(handle, ConversationWorkflow.status)
        except ApiError:
            status = None  # type: ignore[assignment]
        if status is not None:
            ignored = [entry for entry in status.ignored_approvals if entry.startswith(marker)]
            still_waiting = any(p.tool_call_id == signal.tool_call_id for p in status.pending_approvals)
            if ignored and (not still_waiting or "already decided" in ignored[-1]):
                DECISIONS.labels(signal.decision, "conflict").inc()
                raise ApiError(409, "already-decided", "Already decided",
                               f"the workflow ignored this decision: {ignored[-1].split('): ', 1)[-1]}")  # fmt: skip
            if not still_waiting:
                return True
        if asyncio.get_running_loop().time() >= deadline:
            return False
        await asyncio.sleep(CONFIRM_POLL_S)
