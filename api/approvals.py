"""Approvals across conversations: what waits for a person, and deciding it with one call.

Listing asks Temporal visibility which conversations are awaiting approval
(``DaemonflowAwaitingApproval = true``), then each of them for its ``pending_approvals``.

Deciding is the workflow's ``decide`` update, with the API key's name as the approver: the answer
is the decision as the workflow applied it (200), or its typed rejection — an unknown call (404),
a call already decided (409, saying by whom and what), arguments that changed since they were
shown (409), an edit without arguments or an approve carrying other arguments (422). Approve runs
exactly the arguments shown; only ``edit`` carries new ones. No polling, no audit scan: the
workflow says what happened.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from api.auth import Permission, Principal, require
from api.conversations import ConversationId, Ctx, Reader
from api.errors import ApiError
from api.metrics import DECISIONS
from api.openapi import problems
from api.schemas import ID_PATTERN, ApprovalItem, DecisionBody, DecisionResult
from control.errors import DecisionRejected
from models.conversation import Approve

router = APIRouter(tags=["approvals"])

ToolCallId = Annotated[str, Path(pattern=ID_PATTERN, description="the tool call id shown with the pending approval")]
Approver = Annotated[Principal, Depends(require(Permission.DECIDE))]
LIST_LIMIT = 500


@router.get("/approvals", response_model=list[ApprovalItem], responses=problems(401, 403, 503),
            summary="Every tool call waiting for a person, across conversations, oldest first")  # fmt: skip
async def list_approvals(ctx: Ctx, _: Reader) -> list[ApprovalItem]:
    waiting = await ctx.conversations.awaiting_approval(LIST_LIMIT)
    items = [
        ApprovalItem(conversation_id=w.conversation.conversation_id, agent=w.conversation.agent,
                     channel=w.conversation.channel, **p.model_dump())
        for w in waiting
        for p in w.pending
    ]
    return sorted(items, key=lambda a: (a.requested_at is None, a.requested_at, a.conversation_id, a.tool_call_id))


@router.post(
    "/approvals/{conversation_id}/{tool_call_id}",
    response_model=DecisionResult,
    responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
    summary="Decide a waiting tool call: approve, approve_always, deny or edit (update decide)",
)
async def decide(
    conversation_id: ConversationId, tool_call_id: ToolCallId, body: DecisionBody, ctx: Ctx, principal: Approver
) -> DecisionResult:
    if body.decision == "deny" and body.arguments is not None:
        raise ApiError(422, "invalid-decision", "Invalid decision", "a deny takes no `arguments`")
    conversation = await ctx.conversations.find(conversation_id)
    decision = Approve(
        tool_call_id=tool_call_id,
        decision=body.decision,
        arguments=body.arguments,
        arguments_hash=body.arguments_hash,
        reason=body.reason,
        approver=principal.name,
    )
    try:
        applied = await conversation.decide(decision)
    except DecisionRejected as err:
        DECISIONS.labels(body.decision, err.rejection.reason.value).inc()
        raise
    DECISIONS.labels(body.decision, "applied").inc()
    return DecisionResult(
        conversation_id=conversation_id,
        tool_call_id=tool_call_id,
        decision=applied.decision,
        approver=principal.name,
        arguments=applied.arguments,
        args_hash=applied.args_hash,
    )
