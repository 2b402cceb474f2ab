"""Temporal's exceptions turned into the control client's domain errors, in one place.

Every call the client makes to Temporal goes through ``answered`` (RPCs, queries, signals) or, for
updates, through ``turn_failure`` / ``decision_failure``; the cause chain is read with
``workflows.failures`` and the workflow's error *types* (never its wording) decide the class.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from control.errors import (
    ChannelEnded,
    ControlError,
    ConversationEnded,
    PostFailed,
    PostRejected,
    DecisionRejected,
    QueueFull,
    RunEnding,
    InvalidRequest,
    MessageRejected,
    ModelFailed,
    NoWorker,
    QueryFailed,
    TemporalUnavailable,
    TurnFailed,
    TurnRunning,
)
from models.conversation import DecisionRejection
from workflows.failures import failure_cause, failure_message, failure_type
from workflows.queue_bound import QUEUE_FULL, RUN_ENDING

T = TypeVar("T")

NO_WORKER_HINT = "is `daemonflow worker` (or `daemonflow dev`) running on this task queue?"
MODEL_FAILURES = {"ModelError", "ModelUnavailable"}
REJECTIONS = {"MessageRejected", "ValueError", "TypeError"}
"""``send_message`` validator rejections (``ValueError``: workers from before the typed rejections)."""


async def answered(call: Awaitable[T], what: str, needs_worker: bool = True) -> T:
    """Await one Temporal call; whatever fails comes out as a ``ControlError`` saying ``what`` failed.

    ``needs_worker``: a query, signal or update waits for a worker, so running out of time means
    none answered (``NoWorker``); a describe or a listing only needs Temporal (``TemporalUnavailable``).
    """
    try:
        return await call
    except (RPCTimeoutOrCancelledError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise _out_of_time(what, needs_worker) from None
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as err:
        raise QueryFailed(f"{what} failed: {err}") from err
    except RPCError as err:
        raise rpc_failure(err, what, needs_worker) from err


NOT_READY_PAUSE_S = 0.1
NOT_READY_WITHIN_S = 10.0


async def until_ready(start: Callable[[], Awaitable[T]], within_s: float = NOT_READY_WITHIN_S) -> T:
    """``start()`` (an update), again while Temporal answers ``WorkflowNotReady``: it refuses updates
    while the workflow's task is being retried after one failed or timed out (a worker starved for
    10 s, say), and that retry usually lands within a second. After ``within_s`` the refusal is
    raised (``rpc_failure`` says it)."""
    return await again_while(start, lambda err: isinstance(err, RPCError) and _not_ready(err), within_s)


async def again_while(call: Callable[[], Awaitable[T]], passing: Callable[[Exception], bool],
                      within_s: float = NOT_READY_WITHIN_S) -> T:  # fmt: skip
    """``call()``, again while it raises an error that is ``passing``, pausing from 0.1 s and
    doubling to 2 s; after ``within_s`` the error is raised."""
    pause, deadline = NOT_READY_PAUSE_S, time.monotonic() + within_s
    while True:
        try:
            return await call()
        except Exception as err:
            if not passing(err) or time.monotonic() + pause > deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, 2.0)


def _not_ready(err: RPCError) -> bool:
    return any(d.type_url.endswith("WorkflowNotReadyFailure") for d in err.grpc_status.details)


def _out_of_time(what: str, needs_worker: bool) -> ControlError:
    if needs_worker:
        return NoWorker(f"{what}: no worker answered in time; {NO_WORKER_HINT}")
    return TemporalUnavailable(f"{what}: Temporal did not answer in time")


def rpc_failure(err: RPCError, what: str, needs_worker: bool = True) -> ControlError:
    if err.status == RPCStatusCode.DEADLINE_EXCEEDED:
        return _out_of_time(what, needs_worker)
    if err.status == RPCStatusCode.NOT_FOUND:
        return ConversationEnded(f"{what}: the conversation is not running any more ({err.message})")
    if err.status == RPCStatusCode.INVALID_ARGUMENT:
        return InvalidRequest(f"{what}: {err.message}")
    status = err.status.name if err.status else "an error"
    return TemporalUnavailable(f"{what}: Temporal answered {status}: {err.message}")


def turn_failure(err: WorkflowUpdateFailedError) -> ControlError:
    """A ``send_message`` that was rejected (validator) or whose turn failed, by the failure's type."""
    kind, reason = failure_type(err.cause), failure_message(err.cause)
    if kind in REJECTIONS:
        return MessageRejected(reason)
    if kind == QUEUE_FULL:
        return QueueFull(reason)
    if kind == RUN_ENDING:
        return RunEnding(reason)
    if kind == "TurnRunning":
        cause = failure_cause(err.cause)
        details = cause.details if isinstance(cause, ApplicationError) else ()
        return TurnRunning(reason, details[0] if details and isinstance(details[0], dict) else {})
    if kind == "ConversationEnded":
        return ConversationEnded(reason)
    if kind in MODEL_FAILURES:
        return ModelFailed(reason)
    return TurnFailed(reason)


def decision_failure(err: WorkflowUpdateFailedError) -> ControlError:
    """A ``decide`` the workflow refused, with its typed ``DecisionRejection``."""
    cause = failure_cause(err.cause)
    if isinstance(cause, ApplicationError) and cause.type == "DecisionRejected" and cause.details:
        return DecisionRejected(DecisionRejection.model_validate(cause.details[0]))
    return TurnFailed(f"the decision failed: {failure_message(err.cause)}")


def post_failure(err: WorkflowUpdateFailedError) -> ControlError:
    """A ``post`` that was rejected (validator) or whose handling failed, by the failure's type."""
    kind, reason = failure_type(err.cause), failure_message(err.cause)
    if kind == "PostRejected":
        return PostRejected(reason)
    if kind == QUEUE_FULL:
        return QueueFull(reason)
    if kind == RUN_ENDING:
        return RunEnding(reason)
    if kind == "ChannelEnded":
        return ChannelEnded(reason)
    return PostFailed(reason)
