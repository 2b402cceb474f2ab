"""Per-agent control over HTTP (seed 003's admin API): pause or resume one agent across all its
conversations and channel seats, hand it a priority task, and see what it is doing
(``control/agents.py``). Also ``GET /archives``: the archive records (``models/archive.py``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query

from api.conversations import Ctx, Operator, Reader
from api.errors import ApiError
from api.openapi import problems
from api.schemas import AGENT_PATTERN
from config.templates import template_names
from control.agents import AgentControl
from models.agent_control import AgentControlResult, AgentDebug, AgentPauseRequest, AgentTaskRequest, AgentTaskResult
from models.archive import ArchiveKind, ArchiveRecord
from store.agent_pauses import AgentPauseStore
from store.agent_records import recent_failures
from store.archives import ArchiveStore

router = APIRouter(tags=["agents"])

AgentName = Annotated[str, Path(pattern=AGENT_PATTERN, description="an agent template's name")]
DECISIONS_SHOWN = 20


def _control(ctx: Ctx) -> AgentControl:
    return AgentControl(ctx.conversations, AgentPauseStore(ctx.engine))


def _known(ctx: Ctx, agent: str) -> str:
    names = template_names(ctx.settings.agents_dir)
    if agent not in names:
        raise ApiError(404, "unknown-agent", "Unknown agent", f"no agent template {agent!r}; known: {', '.join(names)}")
    return agent


@router.post("/agents/{agent}/pause", response_model=AgentControlResult, responses=problems(401, 403, 404, 422, 503),
             summary="Pause an agent everywhere: each running conversation and channel seat of it, and those it starts later")  # fmt: skip
async def pause_agent(agent: AgentName, ctx: Ctx, principal: Operator,
                      body: Annotated[AgentPauseRequest | None, Body()] = None) -> AgentControlResult:  # fmt: skip
    return await _control(ctx).pause(_known(ctx, agent), (body or AgentPauseRequest()).reason, principal.name)


@router.post("/agents/{agent}/resume", response_model=AgentControlResult, responses=problems(401, 403, 404, 503),
             summary="Resume an agent: lifts the agent's pause from each running conversation and channel seat of it")  # fmt: skip
async def resume_agent(agent: AgentName, ctx: Ctx, _: Operator) -> AgentControlResult:
    return await _control(ctx).resume(_known(ctx, agent))


@router.post("/agents/{agent}/tasks", response_model=AgentTaskResult, status_code=202,
             responses=problems(400, 401, 403, 404, 409, 413, 422, 503),
             summary="Give an agent a priority task: into its active conversation (first in line), or a new one")  # fmt: skip
async def agent_task(agent: AgentName, body: AgentTaskRequest, ctx: Ctx, _: Operator) -> AgentTaskResult:
    return await _control(ctx).task(_known(ctx, agent), body)


@router.get("/agents/{agent}/debug", response_model=AgentDebug, responses=problems(401, 403, 404, 503),
            summary="An agent's state: each running conversation, its current work and pending approvals, recent "
                    "relevance decisions with scores, recent failed or refused tool calls")  # fmt: skip
async def agent_debug(agent: AgentName, ctx: Ctx, _: Reader) -> AgentDebug:
    control = _control(ctx)
    name = _known(ctx, agent)
    paused = await ctx.in_thread(lambda: AgentPauseStore(ctx.engine).paused([name]).get(name))
    decisions = await ctx.in_thread(lambda: ctx.relevance_store.scores_of(name, limit=DECISIONS_SHOWN).items)
    failures = await ctx.in_thread(lambda: recent_failures(ctx.engine, name))
    return AgentDebug(
        agent=name, paused=paused, conversations=await control.states(name),
        decisions=[d.model_dump(mode="json", include={"id", "channel_id", "message_id", "score", "decision", "high_priority",
                                                      "explanation", "outcome", "at"}) for d in decisions],
        errors=[f.model_dump(mode="json", include={"conversation_id", "tool_call_id", "turn", "tool", "decision", "source",
                                                   "success", "exit_code", "error", "created_at"}) for f in failures],
    )  # fmt: skip


@router.get("/archives", response_model=list[ArchiveRecord], responses=problems(401, 403, 422),
            summary="Archive records of conversations and channels archived after inactivity, newest first")  # fmt: skip
async def archives(ctx: Ctx, _: Reader, kind: Annotated[ArchiveKind | None, Query()] = None,
                   subject_id: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[ArchiveRecord]:  # fmt: skip
    return await ctx.in_thread(lambda: ArchiveStore(ctx.engine).records(kind, subject_id, limit))
