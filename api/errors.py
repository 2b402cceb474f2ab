"""Every error as ``application/problem+json`` (RFC 9457), with a ``detail`` a person can act on.

``type`` is ``urn:daemonflow:problem:<slug>`` for our own problems (the slug is stable and
documented in docs/ARCHITECTURE.md) and ``about:blank`` for plain HTTP ones (unknown route, wrong
method). The ``control`` client's domain errors map to problems here (``CONTROL_PROBLEMS``), one
table for every endpoint; a Temporal failure that still reaches a handler unexplained becomes the
same problem through ``control.failures``, never a bare 500; a real bug is a 500 whose detail
names an error id found in the server log.
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
from temporalio.service import RPCError

from control import errors as control
from control import plan_errors
from control.failures import rpc_failure
from models.conversation import RejectionReason

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
    running_turn: dict[str, Any] | None = None
    """``turn-running`` (double-texting ``reject``): the turn that runs (``turn``, ``state``, ``message``)."""


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
        running_turn: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.running_turn = running_turn
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
    running_turn: dict[str, Any] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"{TYPE_PREFIX}{slug}" if slug else "about:blank",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        errors=errors,
        running_turn=running_turn,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


CONTROL_PROBLEMS: dict[type[control.ControlError], tuple[int, str, str]] = {
    control.ConversationNotFound: (404, "conversation-not-found", "Unknown conversation"),
    control.TurnNotFound: (404, "turn-not-found", "Unknown turn"),
    control.ChannelNotFound: (404, "channel-not-found", "Unknown channel"),
    control.PostNotFound: (404, "post-not-found", "Unknown post"),
    control.ChannelEnded: (409, "channel-ended", "Channel is over"),
    control.ChannelExists: (409, "channel-exists", "Channel id in use"),
    control.PostRejected: (422, "post-rejected", "Post rejected"),
    control.PostFailed: (502, "post-failed", "The post failed"),
    control.CalculationFailed: (502, "calculation-failed", "The message could not be scored"),
    control.PrivateMessageNotFound: (404, "private-message-not-found", "Unknown private message"),
    control.PrivateMessageExists: (409, "private-message-exists", "Private message id in use"),
    control.NotWaitingForInput: (409, "not-waiting-for-input", "The message is not waiting for input"),
    control.ConversationEnded: (409, "conversation-ended", "Conversation is over"),
    control.ConversationExists: (409, "conversation-exists", "Conversation id in use"),
    control.InvalidRequest: (422, "invalid-request", "Invalid request"),
    control.MessageRejected: (422, "message-rejected", "Message rejected"),
    control.QueueFull: (429, "queue-full", "Too many messages waiting"),
    control.RunEnding: (503, "run-ending", "Conversation is handing over to its next run"),
    control.ModelFailed: (502, "model-error", "The model failed"),
    control.TurnFailed: (502, "turn-failed", "The turn failed"),
    control.TurnRunning: (409, "turn-running", "A turn is running"),
    control.NoWorker: (503, "no-worker", "No worker answered"),
    control.QueryFailed: (503, "query-failed", "The workflow could not answer"),
    control.TemporalUnavailable: (503, "temporal-unavailable", "Temporal unavailable"),
    control.ControlError: (503, "temporal-unavailable", "Temporal unavailable"),
    # task plans (issue 15)
    plan_errors.PlanNotFound: (404, "plan-not-found", "Unknown plan"),
    plan_errors.TaskNotFound: (404, "task-not-found", "Unknown task"),
    plan_errors.PlanExists: (409, "plan-exists", "Plan id in use"),
    plan_errors.PlanOver: (409, "plan-over", "Plan is over"),
    plan_errors.TaskNotChangeable: (409, "task-not-changeable", "Task cannot be changed now"),
    plan_errors.PlanInvalid: (422, "plan-invalid", "Invalid plan"),
}
"""Each domain error of the control client as (status, problem slug, title); the most specific class wins."""

RETRY_AFTER: dict[type[control.ControlError], dict[str, str]] = {
    control.QueueFull: {"Retry-After": "5"},
    control.RunEnding: {"Retry-After": "1"},
}
"""Errors a client gets past by sending again later."""

REJECTION_PROBLEMS: dict[RejectionReason, tuple[int, str, str]] = {
    RejectionReason.UNKNOWN_CALL: (404, "tool-call-not-pending", "No such waiting tool call"),
    RejectionReason.ALREADY_DECIDED: (409, "already-decided", "Already decided"),
    RejectionReason.ARGUMENTS_CHANGED: (409, "arguments-changed", "Arguments differ from what you saw"),
    RejectionReason.EDIT_WITHOUT_ARGUMENTS: (422, "invalid-decision", "Invalid decision"),
    RejectionReason.ARGUMENTS_NOT_SHOWN: (422, "invalid-decision", "Invalid decision"),
}
"""A decision the workflow refused, by its typed reason."""


def control_problem(err: control.ControlError) -> ApiError:
    if isinstance(err, control.DecisionRejected):
        status, slug, title = REJECTION_PROBLEMS[err.rejection.reason]
    else:
        status, slug, title = next(CONTROL_PROBLEMS[k] for k in type(err).__mro__ if k in CONTROL_PROBLEMS)
    headers = RETRY_AFTER.get(type(err))
    return ApiError(status, slug, title, str(err), headers=headers, running_turn=getattr(err, "running", None))


def _validation_errors(err: RequestValidationError) -> list[dict[str, Any]]:
    """Where and why, without echoing the input back (it may be large, or a secret)."""
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in err.errors()
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return problem_response(request, err.status, err.title, err.detail, err.slug, err.headers, err.errors,
                                err.running_turn)  # fmt: skip

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

    @app.exception_handler(control.ControlError)
    async def domain_error(request: Request, err: control.ControlError) -> JSONResponse:
        return await api_error(request, control_problem(err))

    async def temporal_error(request: Request, err: Exception) -> JSONResponse:
        unexplained = rpc_failure(err, "Temporal") if isinstance(err, RPCError) else control.NoWorker(
            "Temporal: no worker answered in time; is `daemonflow worker` (or `daemonflow dev`) running?"
        )
        return await domain_error(request, unexplained)

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
