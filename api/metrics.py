"""Prometheus metrics of the HTTP API, on the default registry that ``GET /metrics`` serves.

Routes are labelled by their template (``/conversations/{conversation_id}``), never by the
concrete path, so conversation ids do not become label values and the series stay bounded. Other
components register their metrics on the same default registry and appear on the same page.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "daemonflow_api_requests_total",
    "HTTP requests answered by the API, by route template, method and status code.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "daemonflow_api_request_duration_seconds",
    "Time from request to the end of the response (event streams: the stream's whole life).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
IN_FLIGHT = Gauge("daemonflow_api_requests_in_flight", "Requests being answered right now.")
EVENT_STREAMS = Gauge("daemonflow_api_event_streams", "Live event streams (SSE) open right now.")
STREAM_SUBSCRIPTIONS = Gauge(
    "daemonflow_api_stream_subscriptions",
    "Conversations this API process follows right now (one Workflow Stream subscription each, whatever its viewers).",
)
DECISIONS = Counter(
    "daemonflow_api_approval_decisions_total",
    "Approval decisions sent through the API, by decision and outcome (applied, or the rejection reason).",
    ["decision", "outcome"],
)

UNMATCHED = "<unmatched>"


def route_label(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    raw: str = scope.get("path", "")
    if raw == "/ui" or raw.startswith("/ui/"):
        return "/ui"
    return UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_recording)
        finally:
            IN_FLIGHT.dec()
            route = route_label(scope)
            method = scope.get("method", "")
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route).observe(time.perf_counter() - started)
