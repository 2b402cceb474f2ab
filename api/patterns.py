"""The stored analytics snapshots over HTTP: ``GET /analytics/snapshots`` (newest first, by agent,
paged back with ``before``) and ``GET /analytics/snapshots/{id}`` (one agent's whole analytics).

What ``PatternAnalysisWorkflow`` stored every 30 minutes, read from the store in a thread; the
same rows as ``daemonflow patterns``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.conversations import Ctx, Reader
from api.errors import ApiError
from api.openapi import problems
from api.schemas import AGENT_PATTERN
from models.analytics_snapshots import SnapshotSummary, SnapshotView
from store.analytics_snapshots import AnalyticsSnapshotStore

router = APIRouter()

ROW_ID_MAX = 2**31 - 1
"""Ids are 32-bit integers on PostgreSQL: a larger one can only be unknown."""
MAX_SNAPSHOTS = 500


@router.get("/analytics/snapshots", response_model=list[SnapshotSummary], tags=["analytics"],
            responses=problems(401, 403, 422),
            summary="Stored analytics snapshots (one per agent and pattern analysis), newest first")  # fmt: skip
async def list_snapshots(
    ctx: Ctx,
    _: Reader,
    agent: Annotated[str | None, Query(pattern=AGENT_PATTERN, description="only this agent's")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SNAPSHOTS)] = 50,
    before: Annotated[int | None, Query(ge=1, le=ROW_ID_MAX, description="only snapshots with a smaller id (paging)")] = None,
) -> list[SnapshotSummary]:
    return await ctx.in_thread(lambda: AnalyticsSnapshotStore(ctx.engine).list(agent=agent, limit=limit, before=before))


@router.get("/analytics/snapshots/{snapshot_id}", response_model=SnapshotView, tags=["analytics"],
            responses=problems(401, 403, 404, 422), summary="One stored snapshot with the agent's whole analytics")  # fmt: skip
async def get_snapshot(snapshot_id: Annotated[int, Path(ge=1, le=ROW_ID_MAX)], ctx: Ctx, _: Reader) -> SnapshotView:
    found = await ctx.in_thread(AnalyticsSnapshotStore(ctx.engine).get, snapshot_id)
    if found is None:
        raise ApiError(404, "snapshot-not-found", "Snapshot not found",
                       f"no analytics snapshot {snapshot_id}; GET /analytics/snapshots lists them")  # fmt: skip
    return found
