"""Every error as ``application/problem+json`` (RFC 9457), with a ``detail`` a person can act on.

``type`` is ``urn:daemonflow:problem:<slug>`` for our own problems (the slug is stable and
documented in docs/ARCHITECTURE.md) and ``about:blank`` for plain HTTP ones (unknown route, wrong
method). Temporal failures that reach a handler unexplained become 503s that say what to check,
never a bare 500; a real bug is a 500 whose detail names an error id found in the server log.
"""

from __future__ import annotations

import logging
import uuid
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

log = logging.getLogger("daemonflow.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:daemonflow:problem:"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None
    """Validation errors: ``{loc, msg, type}`` each."""


class ApiError(Exception):
    """Raised anywhere in a request; becomes a problem response."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers
        self.errors = errors


def problem_response(
    request: Request | None,
    status: int,
    title: str,
    detail: str,
    slug: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"{TYPE_PREFIX}{slug}" if slug else "about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def temporal_problem(err: Exception, what: str = "Temporal") -> ApiError:
    """A Temporal failure no handler explained, as a 404/422/503 that says what to check."""
    if isinstance(err, RPCTimeoutOrCancelledError):
        return ApiError(503, "no-worker", "No worker answered",
                        f"{what}: no worker answered in time; is `daemonflow worker` (or `daemonflow dev`) running "
                        "on this task queue?")  # fmt: skip
    if isinstance(err, RPCError):
        if err.status == RPCStatusCode.NOT_FOUND:
            return ApiError(404, "not-found", "Not found", f"{what}: {err.message}")
        if err.status == RPCStatusCode.INVALID_ARGUMENT:
            return ApiError(422, "invalid-request", "Invalid request", f"{what}: {err.message}")
        if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
            return ApiError(503, "no-worker", "No worker answered",
                            f"{what}: the call timed out; is a worker running on this task queue?")  # fmt: skip
        return ApiError(503, "temporal-unavailable", "Temporal unavailable",
                        f"{what}: Temporal answered {err.status.name if err.status else 'an error'}: {err.message}")  # fmt: skip
    return ApiError(503, "temporal-unavailable", "Temporal unavailable", f"{what}: {err}")


def _validation_errors(err: RequestValidationError) -> list[dict[str, Any]]:
    """Where and why, without echoing the input back (it may be large, or a secret)."""
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in err.errors()
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return problem_response(request, err.status, err.title, err.detail, err.slug, err.headers, err.errors)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(err)
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem_response(request, 422, "Invalid request", detail, "invalid-request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        title = HTTPStatus(err.status_code).phrase if err.status_code in HTTPStatus._value2member_map_ else "Error"
        detail = str(err.detail) if err.detail and str(err.detail) != title else _default_detail(request, err.status_code)
        return problem_response(request, err.status_code, title, detail, headers=getattr(err, "headers", None))

    async def temporal_error(request: Request, err: Exception) -> JSONResponse:
        return await api_error(request, temporal_problem(err))

    app.add_exception_handler(RPCError, temporal_error)
    app.add_exception_handler(RPCTimeoutOrCancelledError, temporal_error)

    @app.exception_handler(Exception)
    async def bug(request: Request, err: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.exception("unhandled error %s on %s %s", error_id, request.method, request.url.path)
        return problem_response(request, 500, "Internal Server Error",
                                f"an unexpected error occurred (error id {error_id}); the server log has the details",
                                "internal")  # fmt: skip


def _default_detail(request: Request, status: int) -> str:
    if status == 404:
        return f"no such resource: {request.url.path} (see /docs for the API)"
    if status == 405:
        return f"{request.method} is not allowed on {request.url.path}"
    return HTTPStatus(status).description if status in HTTPStatus._value2member_map_ else "error"
