"""The optimisation review's hints over HTTP: list them, read one, revert one.

``GET /optimisations`` (viewer) lists the hints in force, or the whole journal with
``include_reverted``; ``POST /optimisations/{id}/revert`` (operator) takes one out of force at
once — conversations opened from then on get the previous budget — and records who and why (the
key's name). A second revert is a ``409 already-reverted`` saying who reverted it and when.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from api.conversations import Ctx, Operator, Reader
from api.errors import ApiError
from api.openapi import problems
from api.patterns import ROW_ID_MAX
from api.schemas import AGENT_PATTERN
from models.optimisation import AgentHintView, RevertHint
from store.agent_hints import AgentHintStore, HintAlreadyReverted, HintNotFound

router = APIRouter()

MAX_HINTS = 1000
HintId = Annotated[int, Path(ge=1, le=ROW_ID_MAX, description="the hint's id (`GET /optimisations`)")]


def _missing(hint_id: int) -> ApiError:
    return ApiError(404, "optimisation-not-found", "Optimisation not found",
                    f"no optimisation {hint_id}; GET /optimisations?include_reverted=true lists them all")  # fmt: skip


@router.get("/optimisations", response_model=list[AgentHintView], tags=["optimisations"],
            responses=problems(401, 403, 422), summary="Hints the optimisation review applied: in force, or the journal")  # fmt: skip
async def list_hints(
    ctx: Ctx,
    _: Reader,
    include_reverted: Annotated[bool, Query(description="also reverted and expired hints")] = False,
    agent: Annotated[str | None, Query(pattern=AGENT_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HINTS)] = 100,
) -> list[AgentHintView]:
    store = AgentHintStore(ctx.engine)
    return await ctx.in_thread(lambda: store.list(active_only=not include_reverted, agent=agent, limit=limit))


@router.get("/optimisations/{hint_id}", response_model=AgentHintView, tags=["optimisations"],
            responses=problems(401, 403, 404, 422), summary="One hint: what, why, evidence, how to revert")  # fmt: skip
async def get_hint(hint_id: HintId, ctx: Ctx, _: Reader) -> AgentHintView:
    found = await ctx.in_thread(AgentHintStore(ctx.engine).get, hint_id)
    if found is None:
        raise _missing(hint_id)
    return found


@router.post("/optimisations/{hint_id}/revert", response_model=AgentHintView, tags=["optimisations"],
             responses=problems(400, 401, 403, 404, 409, 413, 422), summary="Take a hint out of force now")  # fmt: skip
async def revert_hint(
    hint_id: HintId, ctx: Ctx, principal: Operator, body: Annotated[RevertHint | None, Body()] = None
) -> AgentHintView:
    reason = body.reason if body is not None else None
    try:
        return await ctx.in_thread(lambda: AgentHintStore(ctx.engine).revert(hint_id, by=f"api:{principal.name}", reason=reason))
    except HintNotFound:
        raise _missing(hint_id) from None
    except HintAlreadyReverted as err:
        raise ApiError(409, "already-reverted", "Already reverted", str(err)) from None
