"""The relevance engine over HTTP: score a hypothetical message, read the recorded scores and their
analytics, set the thresholds, give feedback on a decision.

``POST /relevance/calculate`` runs on the workers (``control.relevance``: the same similarity
activity and pure scoring a channel runs) and records nothing. The records are read from the store
(``store/relevance.py``) like monitoring and analytics. ``PUT /relevance/thresholds`` stores the
thresholds in ``relevance_settings`` (``store/relevance_settings.py``): every channel, new or
running, applies them from its next message on, under its own overrides.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from api.auth import Permission, Principal, require
from api.channel_schemas import CalculateBody, FeedbackBody, ThresholdsView
from api.channels import ChannelId
from api.conversations import Ctx, Reader
from api.errors import ApiError
from api.monitoring import frame
from api.openapi import problems
from api.schemas import AGENT_PATTERN
from config.relevance import RelevanceConfigError, load_relevance
from config.templates import template_names
from models.relevance import Thresholds
from models.relevance_calculation import CalculationRequest
from models.relevance_records import FeedbackRecord, RelevanceAnalytics, ScorePage
from models.relevance_scoring import PostRelevance
from store.relevance import UnknownScore

router = APIRouter(tags=["relevance"])

Configurator = Annotated[Principal, Depends(require(Permission.CONFIGURE))]
FeedbackGiver = Annotated[Principal, Depends(require(Permission.FEEDBACK))]
AgentName = Annotated[str, Path(pattern=AGENT_PATTERN, description="agent name (e.g. `developer`)")]


@router.post("/relevance/calculate", response_model=PostRelevance, responses=problems(400, 401, 403, 404, 413, 422, 502, 503),
             summary="Score a hypothetical message for some agents (optionally as a channel would now), without posting it")  # fmt: skip
async def calculate(body: CalculateBody, ctx: Ctx, _: Reader) -> PostRelevance:
    channel = await ctx.channels.find(body.channel_id) if body.channel_id else None
    agents = body.agents
    if channel is not None and not agents:
        agents = [member.agent for member in (await channel.status()).agents]
    if not agents:
        raise ApiError(422, "invalid-request", "Invalid request", "name the agents to score, or a channel_id")
    known = template_names(ctx.settings.agents_dir)
    unknown = [agent for agent in agents if agent not in known]
    if unknown:
        raise ApiError(422, "unknown-agent", "Unknown agent template",
                       f"unknown agent templates {', '.join(unknown)}; known templates: {', '.join(known) or 'none'}")  # fmt: skip
    request = CalculationRequest(content=body.content, author=body.author, author_kind=body.author_kind, agents=agents,
                                 mentions=body.mentions, reply_to=body.reply_to)  # fmt: skip
    return await ctx.relevance.calculate(request, channel)


@router.get("/relevance/scores/{agent}", response_model=ScorePage, responses=problems(401, 403, 422),
            summary="An agent's recorded scores and decisions, newest first, with factors and feedback")  # fmt: skip
async def scores(
    agent: AgentName,
    ctx: Ctx,
    _: Reader,
    channel_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="the previous page's next_before")] = None,
) -> ScorePage:
    return await ctx.in_thread(lambda: ctx.relevance_store.scores_of(agent, limit=limit, before=before,
                                                                     channel_id=channel_id))  # fmt: skip


@router.get("/channels/{channel_id}/scores", response_model=ScorePage, tags=["channels"],
            responses=problems(401, 403, 422),
            summary="A channel's recorded scores and decisions, newest first, with factors and feedback")  # fmt: skip
async def channel_scores(
    channel_id: ChannelId,
    ctx: Ctx,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="the previous page's next_before")] = None,
) -> ScorePage:
    return await ctx.in_thread(lambda: ctx.relevance_store.scores_in(channel_id, limit=limit, before=before))


@router.get("/relevance/analytics", response_model=RelevanceAnalytics, responses=problems(401, 403, 422),
            summary="Intervention rate per agent, score distributions, outcomes and feedback over [since, until)")  # fmt: skip
async def analytics(
    ctx: Ctx,
    _: Reader,
    since: Annotated[datetime | None, Query(description="frame start, ISO 8601 (default: until − 7 days)")] = None,
    until: Annotated[datetime | None, Query(description="frame end, exclusive, ISO 8601 (default: now)")] = None,
    channel_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")] = None,
) -> RelevanceAnalytics:
    start, end = frame(since, until, datetime.now(UTC))
    return await ctx.in_thread(ctx.relevance_store.analytics, start, end, channel_id)


@router.get("/relevance/thresholds", response_model=ThresholdsView, responses=problems(401, 403, 500),
            summary="The thresholds channels apply now (the file's, or those set at run time)")  # fmt: skip
async def get_thresholds(ctx: Ctx, _: Reader) -> ThresholdsView:
    return await ctx.in_thread(_thresholds, ctx)


@router.put("/relevance/thresholds", response_model=ThresholdsView, responses=problems(400, 401, 403, 413, 422),
            summary="Set the thresholds every channel applies from its next message on (admin)")  # fmt: skip
async def put_thresholds(body: Thresholds, ctx: Ctx, principal: Configurator) -> ThresholdsView:
    await ctx.in_thread(ctx.relevance_settings.set_thresholds, body, principal.name)
    return await ctx.in_thread(_thresholds, ctx)


def _thresholds(ctx) -> ThresholdsView:
    set_at_run_time = ctx.relevance_settings.thresholds()
    if set_at_run_time is not None:
        thresholds, by, at = set_at_run_time
        return ThresholdsView(thresholds=thresholds, source="run-time", updated_by=by, updated_at=at)
    try:
        return ThresholdsView(thresholds=load_relevance(ctx.settings.relevance_file).thresholds, source="file")
    except RelevanceConfigError as err:
        raise ApiError(500, "invalid-relevance", "Invalid relevance configuration", str(err)) from err


@router.post("/relevance/feedback", response_model=FeedbackRecord, status_code=200,
             responses={201: {"model": FeedbackRecord, "description": "first feedback of this person on this score"},
                        **problems(400, 401, 403, 404, 413, 422)},
             summary="Your verdict on a decision (useful, ignored, conflict, inappropriate); giving it again updates it")  # fmt: skip
async def feedback(body: FeedbackBody, ctx: Ctx, principal: FeedbackGiver, response: Response) -> FeedbackRecord:
    try:
        record, created = await ctx.in_thread(ctx.relevance_store.record_feedback, body.score_id, principal.name,
                                              body.feedback, datetime.now(UTC), body.note)  # fmt: skip
    except UnknownScore as err:
        raise ApiError(404, "score-not-found", "Unknown score", f"{err}; scores are listed at /relevance/scores/{{agent}}") from None
    response.status_code = 201 if created else 200
    return record
