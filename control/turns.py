"""Waiting for a turn without mistaking a turn that waits for an error.

A turn can wait for a person (a tool call to approve), for ``resume``, or simply take long. The
caller learns which at once: the ``send_message`` update's result is raced against the
``watch_turn`` update, which returns as soon as the conversation waits for a person, is paused, or
the turn is over — a Temporal primitive, no status polling. The race is bounded by the caller's
wait budget; past it, one ``status`` query says where the turn is. Either way the caller gets the
``TurnResult`` or a ``TurnWaiting`` with the state and the approvals that wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, Field, computed_field
from temporalio.service import RPCError
from temporalio.client import (
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)

from control.errors import ControlError

T = TypeVar("T")
R = TypeVar("R")
P = TypeVar("P")
W = TypeVar("W")
from control.failures import answered, rpc_failure, turn_failure
from models.conversation import ConversationState, PendingApproval, Status, TurnProgress, TurnResult, WatchTurn
from workflows.conversation import ConversationWorkflow

REJECTION_POLL = timedelta(milliseconds=50)
"""With ``wait=False`` the update was accepted or rejected already; a rejection is known without a
round trip, an acceptance costs one poll this short."""


class WaitReason(StrEnum):
    NOT_WAITED = "not_waited"
    """The caller asked not to wait (``wait=false``)."""
    AWAITING_APPROVAL = "awaiting_approval"
    """A tool call waits for a person (this turn's, or one ahead of it in the queue)."""
    PAUSED = "paused"
    """The conversation is paused; the turn goes on after ``resume``."""
    WAIT_BUDGET = "wait_budget"
    """Still running when the caller's wait budget ran out."""


class TurnWaiting(BaseModel):
    """An accepted turn that is not answered yet, and why; its result comes later under ``turn_id``."""

    turn_id: str
    reason: WaitReason
    state: ConversationState | None = None
    """The conversation's state when the answer was given (unknown with ``not_waited``)."""
    pending_approvals: list[PendingApproval] = Field(default_factory=list)
    pause_reason: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def detail(self) -> str:
        """Why, in words."""
        if self.reason == WaitReason.AWAITING_APPROVAL:
            calls = ", ".join(f"{p.tool} (call {p.tool_call_id})" for p in self.pending_approvals) or "a tool call"
            return f"waiting for a person to decide {calls}"
        if self.reason == WaitReason.PAUSED:
            why = f" ({self.pause_reason})" if self.pause_reason else ""
            return f"the conversation is paused{why}; it answers after resume"
        if self.reason == WaitReason.WAIT_BUDGET:
            return f"still {self.state.value if self.state else 'running'}; the answer comes later"
        return "accepted; the answer comes later"


Outcome = TurnResult | TurnWaiting


async def turn_outcome(
    handle: WorkflowHandle[Any, Any],
    update: WorkflowUpdateHandle[TurnResult],
    wait_s: float | None,
    status: Callable[[], Awaitable[Status]],
) -> Outcome:
    """The turn's result, or why it is not there yet; ``wait_s`` None waits as long as it takes."""
    if wait_s == 0:
        await rejected_at_once(update, turn_failure)
        return TurnWaiting(turn_id=update.id, reason=WaitReason.NOT_WAITED)

    def waits(progress: TurnProgress) -> TurnWaiting | None:
        if progress.answered or progress.state not in _WAITS:
            return None  # over (the result is on its way), ended, or a worker without watch_turn
        return _waiting(update.id, _WAITS[progress.state], progress.state, progress)

    watch = handle.execute_update(ConversationWorkflow.watch_turn, WatchTurn(turn_id=update.id))
    return await race(_result(update), watch, waits, wait_s, lambda: _after_budget(update.id, status))


async def race(
    result: Awaitable[R],
    watch: Awaitable[P],
    waits: Callable[[P], W | None],
    wait_s: float | None,
    after_budget: Callable[[], Awaitable[W]],
) -> R | W:
    """``result``, unless ``watch`` comes back first saying the work waits (``waits`` of its answer is
    not None: that is the answer), or ``wait_s`` runs out (then ``after_budget()``). A watch that
    fails (an older worker without it) or says the work is over leaves the result to wait for."""
    deadline = None if wait_s is None else asyncio.get_running_loop().time() + wait_s
    result_task, watch_task = asyncio.ensure_future(result), asyncio.ensure_future(watch)
    try:
        done, _ = await asyncio.wait({result_task, watch_task}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
        if result_task in done:
            return result_task.result()
        if watch_task in done:
            early = waits(watch_task.result()) if watch_task.exception() is None else None
            return early if early is not None else await _until(result_task, deadline)
        return await after_budget()
    except TimeoutError:
        return await after_budget()
    finally:
        await _drop(result_task, watch_task)


_WAITS = {
    ConversationState.AWAITING_APPROVAL: WaitReason.AWAITING_APPROVAL,
    ConversationState.PAUSED: WaitReason.PAUSED,
}


async def _result(update: WorkflowUpdateHandle[TurnResult]) -> TurnResult:
    try:
        return await answered(update.result(), "waiting for the turn")
    except WorkflowUpdateFailedError as err:
        raise turn_failure(err) from err


async def rejected_at_once(update: WorkflowUpdateHandle[Any],
                           failure: Callable[[WorkflowUpdateFailedError], ControlError]) -> None:  # fmt: skip
    """With ``wait=False``: raise the validator's rejection (``failure`` of it) if there was one."""
    try:
        await update.result(rpc_timeout=REJECTION_POLL)
    except WorkflowUpdateRPCTimeoutOrCancelledError:
        return
    except WorkflowUpdateFailedError as err:
        raise failure(err) from err
    except RPCError as err:
        raise rpc_failure(err, "reading the turn") from err


async def _until(result: asyncio.Future[T], deadline: float | None) -> T:
    left = None if deadline is None else max(deadline - asyncio.get_running_loop().time(), 0)
    return await asyncio.wait_for(asyncio.shield(result), left)


async def _after_budget(turn_id: str, status: Callable[[], Awaitable[Status]]) -> TurnWaiting:
    try:
        now = await status()
    except ControlError:
        return TurnWaiting(turn_id=turn_id, reason=WaitReason.WAIT_BUDGET)
    return _waiting(turn_id, WaitReason.WAIT_BUDGET, now.state, now)


def _waiting(turn_id: str, reason: WaitReason, state: ConversationState, seen: TurnProgress | Status) -> TurnWaiting:
    return TurnWaiting(turn_id=turn_id, reason=reason, state=state, pending_approvals=seen.pending_approvals,
                       pause_reason=seen.pause_reason)  # fmt: skip


async def _drop(*tasks: asyncio.Future[Any]) -> None:
    """Stop waiting on what is left; the workflow carries on regardless (a watch ends with its turn)."""
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.gather(*tasks, return_exceptions=True)
