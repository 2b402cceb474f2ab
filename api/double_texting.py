"""``PUT /conversations/{id}/double-texting``: what a message sent while a turn runs does.

The ``set_double_texting`` update (validated by the workflow) answers with the policy in force, so
the caller knows it applied; ``POST /conversations`` takes ``double_texting`` at start. Under
``reject`` a message sent while a turn runs is a 409 ``turn-running`` whose ``running_turn`` names
the turn (``models/streaming.py``).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from api.conversations import ConversationId, Ctx, Operator
from api.openapi import problems
from models.streaming import DoubleTexting, SetDoubleTexting

router = APIRouter(tags=["conversations"])


class DoubleTextingSet(BaseModel):
    conversation_id: str
    double_texting: DoubleTexting


@router.put(
    "/conversations/{conversation_id}/double-texting",
    response_model=DoubleTextingSet,
    responses=problems(400, 401, 403, 404, 409, 422, 503),
    summary="Set what a message sent while a turn runs does (enqueue, reject, interrupt)",
)
async def set_double_texting(conversation_id: ConversationId, body: SetDoubleTexting, ctx: Ctx,
                             _: Operator) -> DoubleTextingSet:  # fmt: skip
    conversation = await ctx.conversations.find(conversation_id)
    return DoubleTextingSet(conversation_id=conversation_id, double_texting=await conversation.set_double_texting(body.policy))
