"""``GET /health``: can this API do its job right now, and how fast do its dependencies answer.

Temporal and the store are required (without either nothing works: 503, ``down``). The model
servers and the workers are not: conversations wait for a model that is away and for a worker that
restarts, so their absence is ``degraded`` (200). The model servers are the ones the settings use,
probed as ``daemonflow dev`` and the monitoring round probe them (``activities/llm/probe.py``) and
named by provider (``ollama``, ``openai``, ``…-embeddings`` for a separate embedding server); one
that answers but surely lacks the model the settings name is not ok either. Each check has a short timeout and reports its latency.
``GET /metrics`` serves the Prometheus default registry (no key needed: it holds counts and
latencies by route template, no conversation content or ids).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text

from activities.llm.probe import ModelServer, model_servers, probe_model_server, verdict
from api.context import ApiContext
from api.conversations import Ctx, Reader
from api.openapi import problems
from api.schemas import ComponentHealth, Health

router = APIRouter(tags=["health"])

CHECK_TIMEOUT_S = 3.0


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "Temporal or the store is down"},
            **problems(401, 403)}, summary="Temporal, store, model servers and worker reachability, with latency")  # fmt: skip
async def health(ctx: Ctx, _: Reader) -> Response:
    servers = model_servers(ctx.settings)
    temporal, store, workers, *models = await asyncio.gather(
        _timed(lambda: _temporal(ctx)),
        _timed(lambda: _store(ctx)),
        _timed(lambda: _workers(ctx)),
        *(_timed(functools.partial(_model_server, server)) for server in servers),
    )
    if not (temporal.ok and store.ok):
        status = "down"
    elif not (workers.ok and all(model.ok for model in models)):
        status = "degraded"
    else:
        status = "ok"
    report = Health(status=status, temporal=temporal, store=store, workers=workers,
                    model_servers={server.name: model for server, model in zip(servers, models, strict=True)})
    return Response(report.model_dump_json(), status_code=503 if status == "down" else 200, media_type="application/json")


@router.get("/metrics", summary="Prometheus metrics (text format; no key needed)",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})  # fmt: skip
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _timed(check: Callable[[], Awaitable[str]]) -> ComponentHealth:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        ok = True
    except TimeoutError:
        ok, detail = False, f"no answer within {CHECK_TIMEOUT_S:g}s"
    except Exception as err:  # noqa: BLE001 - any failure is reported, never raised
        ok, detail = False, f"{type(err).__name__}: {err}"[:500]
    return ComponentHealth(ok=ok, latency_ms=round((time.perf_counter() - started) * 1000, 2), detail=detail)


async def _temporal(ctx: ApiContext) -> str:
    await ctx.conversations.check_temporal()
    return f"{ctx.settings.temporal_address} namespace {ctx.settings.namespace}"


async def _store(ctx: ApiContext) -> str:
    def ping() -> None:
        with ctx.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    await ctx.in_thread(ping)
    return ctx.engine.url.render_as_string(hide_password=True)


async def _model_server(server: ModelServer) -> str:
    state, detail = verdict(await probe_model_server(server, CHECK_TIMEOUT_S), server.wanted)
    if state != "ok":
        raise RuntimeError(detail)
    return detail


async def _workers(ctx: ApiContext) -> str:
    pollers = await ctx.conversations.workflow_pollers()
    if pollers == 0:
        raise RuntimeError(f"no worker polls task queue {ctx.settings.task_queue!r} (start `daemonflow worker`)")
    return f"{pollers} worker poller(s) on task queue {ctx.settings.task_queue!r}"
