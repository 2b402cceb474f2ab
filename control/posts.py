"""Waiting for a post without mistaking a post that waits for an error (``control.turns`` for channels).

A post's chain can wait for a person (an agent's tool call to approve), for ``resume``, or simply
take long. The ``post`` update's result is raced against the channel's ``watch_post`` update, which
returns as soon as the channel waits for a person or a resume, or the post is over; past the
caller's budget one ``status`` query says where it is. Either way the caller gets the
``PostResult`` or a ``PostWaiting`` saying who waits, for what.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field, computed_field
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateHandle

from control.errors import ControlError
from control.failures import answered, post_failure
from control.turns import WaitReason, race, rejected_at_once
from models.channel import ChannelState, PostResult, WatchPost
from models.channel_state import ChannelStatus, MemberStatus, PostProgress
from workflows.channel import ChannelWorkflow

_WAITS = {ChannelState.AWAITING_APPROVAL: WaitReason.AWAITING_APPROVAL, ChannelState.PAUSED: WaitReason.PAUSED}


class PostWaiting(BaseModel):
    """An accepted post whose chain is not over yet, and why; its result comes later under ``post_id``."""

    post_id: str
    reason: WaitReason
    state: ChannelState | None = None
    waiting: list[MemberStatus] = Field(default_factory=list)
    """The agents whose turn waits for a person, with the tool calls that wait."""
    pause_reason: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def detail(self) -> str:
        """Why, in words."""
        if self.reason == WaitReason.AWAITING_APPROVAL:
            calls = "; ".join(f"{m.agent}'s {', '.join(f'{c.tool} (call {c.tool_call_id})' for c in m.waiting)} "
                              f"in conversation {m.conversation_id}" for m in self.waiting) or "a tool call"
            return f"waiting for a person to decide {calls}"
        if self.reason == WaitReason.PAUSED:
            why = f" ({self.pause_reason})" if self.pause_reason else ""
            return f"the channel is paused{why}; the post goes on after resume"
        if self.reason == WaitReason.WAIT_BUDGET:
            return f"still {self.state.value if self.state else 'running'}; the result comes later"
        return "accepted; the result comes later"


PostOutcome = PostResult | PostWaiting


async def post_outcome(
    handle: WorkflowHandle[Any, Any],
    update: WorkflowUpdateHandle[PostResult],
    wait_s: float | None,
    status: Callable[[], Awaitable[ChannelStatus]],
) -> PostOutcome:
    """The post's result, or why it is not there yet; ``wait_s`` None waits as long as it takes."""
    if wait_s == 0:
        await rejected_at_once(update, post_failure)
        return PostWaiting(post_id=update.id, reason=WaitReason.NOT_WAITED)

    def waits(progress: PostProgress) -> PostWaiting | None:
        if progress.done or progress.state not in _WAITS:
            return None
        return PostWaiting(post_id=update.id, reason=_WAITS[progress.state], state=progress.state,
                           waiting=progress.waiting, pause_reason=progress.pause_reason)  # fmt: skip

    watch = handle.execute_update(ChannelWorkflow.watch_post, WatchPost(post_id=update.id))
    return await race(post_result(update), watch, waits, wait_s, lambda: _after_budget(update.id, status))


async def post_result(update: WorkflowUpdateHandle[PostResult]) -> PostResult:
    try:
        return await answered(update.result(), "waiting for the post")
    except WorkflowUpdateFailedError as err:
        raise post_failure(err) from err


async def _after_budget(post_id: str, status: Callable[[], Awaitable[ChannelStatus]]) -> PostWaiting:
    try:
        now = await status()
    except ControlError:
        return PostWaiting(post_id=post_id, reason=WaitReason.WAIT_BUDGET)
    waiting = [m for m in now.agents if m.waiting]
    return PostWaiting(post_id=post_id, reason=WaitReason.WAIT_BUDGET, state=now.state, waiting=waiting,
                       pause_reason=now.pause_reason)  # fmt: skip
