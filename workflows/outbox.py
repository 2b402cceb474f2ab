"""Signals from one workflow to others, sent in order without holding up the sender.

Two signals sent at once may arrive in either order, and a receiver must hear "waiting" before
"done", or "pause" before "resume": an ``Outbox`` sends one at a time, in the order they were
posted, from one task of the workflow's own event loop (deterministic, so replay issues the same
commands). A receiver that is gone (ended, terminated) cannot be told: the failure is logged and
the next signal goes on. ``delivered()`` waits for everything posted so far; a workflow awaits it
before it ends or continues as new.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError


class Outbox:
    def __init__(self) -> None:
        self._waiting: list[tuple[str, str, Any]] = []
        self._sender: asyncio.Task[None] | None = None

    def __bool__(self) -> bool:
        """Something is still to be delivered."""
        return bool(self._waiting) or (self._sender is not None and not self._sender.done())

    def send(self, workflow_id: str, signal: str, arg: Any = None) -> None:
        self._waiting.append((workflow_id, signal, arg))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._deliver())

    async def delivered(self) -> None:
        while self:
            assert self._sender is not None
            await self._sender

    async def _deliver(self) -> None:
        while self._waiting:
            workflow_id, signal, arg = self._waiting.pop(0)
            handle = workflow.get_external_workflow_handle(workflow_id)
            try:
                await (handle.signal(signal) if arg is None else handle.signal(signal, arg))
            except FailureError as err:
                workflow.logger.warning("signal %s to %s not delivered: %s", signal, workflow_id, err)
