"""Heartbeating while an activity waits on something that does not heartbeat by itself.

A worker that dies is noticed by the heartbeat timeout (30 s for tools), not by the start-to-close
timeout, which for a command allowed an hour is an hour. Exec output heartbeats on its own; file
transfers, host Docker calls and model calls wait in one call, so this beats for them. The first
beat comes after ``every_s``, not at once: the SDK sends a first heartbeat to the server right away
(a write of the activity's state), which a tool call over in 60 ms does not need; the heartbeat
timeout runs from the start all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

HEARTBEAT_EVERY_S = 2.0


@contextlib.asynccontextmanager
async def heartbeating(every_s: float = HEARTBEAT_EVERY_S) -> AsyncIterator[None]:
    """Heartbeat the current activity every ``every_s`` seconds while the block runs (outside an
    activity, nothing)."""
    if not activity.in_activity():
        yield
        return

    async def beat() -> None:
        while True:  # the first after ``every_s``: a call over sooner needs no heartbeat at all
            await asyncio.sleep(every_s)
            activity.heartbeat()

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
