"""The FastAPI application: routers, auth, problem errors, limits, metrics, and the admin page.

``create_app`` takes everything from its caller (settings, a connected Temporal client, the key
ring), so ``daemonflow api``, ``daemonflow dev`` and the tests build the very same app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api import (
    agents,
    approvals,
    channels,
    conversations,
    double_texting,
    errors,
    events,
    health,
    messages,
    monitoring,
    notifications,
    openapi,
    optimisations,
    patterns,
    payloads,
    plans,
    relevance,
)
from api.auth import KeyRing
from api.context import ApiContext
from api.limits import BodyLimitMiddleware, SecurityHeadersMiddleware
from api.metrics import MetricsMiddleware
from config.settings import Settings
from control.channels import Channels
from control.conversations import Conversations
from control.messages import Messages
from control.plans import Plans
from control.relevance import RelevanceCalculator
from store.engine import make_engine
from store.private_messages import PrivateMessageStore
from store.transcript import TranscriptStore

STATIC_DIR = Path(__file__).parent / "static"

DESCRIPTION = """Drive Daemonflow conversations and channels over HTTP, and read its monitoring, analytics
and relevance records.

Every endpoint but `/metrics`, `/docs`, `/openapi.json` and the admin page `/ui` needs
`Authorization: Bearer <key>` with a key from `DAEMONFLOW_API_KEYS` (`name:role:key`, roles
viewer, operator, approver, admin). Errors are `application/problem+json` (RFC 9457).
"""


def create_app(settings: Settings, client: Client, keys: KeyRing) -> FastAPI:
    engine = make_engine(settings.effective_database_url)
    app = FastAPI(title="Daemonflow", version="0.1.0", description=DESCRIPTION)
    app.state.daemonflow = ApiContext(
        settings=settings,
        conversations=Conversations(client, settings.task_queue, settings.api_query_timeout_s),
        keys=keys,
        transcripts=TranscriptStore(engine),
        channels=Channels(client, settings.task_queue, settings.api_query_timeout_s),
        relevance=RelevanceCalculator(client, settings.task_queue, settings.llm_task_queue or None),
        messages=Messages(client, settings, PrivateMessageStore(engine), settings.api_query_timeout_s),
    )
    errors.install(app)
    openapi.install(app)
    app.include_router(conversations.router)
    app.include_router(events.router)
    app.include_router(payloads.router)
    app.include_router(approvals.router)
    app.include_router(health.router)
    app.include_router(monitoring.router)
    app.include_router(patterns.router)
    app.include_router(optimisations.router)
    app.include_router(channels.router)
    app.include_router(relevance.router)
    app.include_router(double_texting.router)  # issue 16
    app.include_router(messages.router)
    app.include_router(agents.router)
    app.include_router(notifications.router)
    app.state.plans = Plans(client, settings.task_queue, settings.api_query_timeout_s)  # task plans (issue 15)
    app.include_router(plans.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/")

    @app.get("/ui", include_in_schema=False)
    async def ui() -> RedirectResponse:
        return RedirectResponse("/ui/")

    app.mount("/ui", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
    # Each middleware added wraps the ones before it, so metrics (last) is outermost and sees every answer,
    # security headers cover the body limit's refusals too, and the limit refuses big bodies before
    # anything reads them.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware)
    if settings.otlp_endpoint:  # a request's trace continues into the workflow (client interceptor)
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app)
    return app
