"""The inactivity clock of a conversation or a channel: when it has been idle ``after_s`` seconds
it says so (``due``), and the workflow archives itself if nothing runs, waits or is queued.

One durable timer per period, not one per turn: a background task sleeps until the last activity
plus the period, and when it wakes earlier activity only pushes the next wake-up further. A turn
or a post therefore adds no timer event to history (a ``wait_condition(..., timeout=...)`` around
the main loop's wait would start and cancel a timer for every one). ``touch`` is called at each
turn's (post's) end; ``due`` is cleared when the workflow looked and could not archive, and set
again one period later at the earliest.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow


class IdleClock:
    def __init__(self) -> None:
        self.after_s: int = 0
        self.last: datetime | None = None
        self.due = False
        self._task: asyncio.Task[None] | None = None

    def start(self, after_s: int, last: datetime | None) -> None:
        """Run the clock (``after_s`` 0: never due); ``last``: the activity carried from an earlier run."""
        self.after_s, self.last = after_s, last or workflow.now()
        if after_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._watch())

    def touch(self) -> None:
        self.last, self.due = workflow.now(), False

    def not_now(self) -> None:
        """The workflow looked and could not archive (something waits): ask again a period later."""
        self.due = False

    def idle_s(self) -> int:
        return int((workflow.now() - self.last).total_seconds()) if self.last else 0

    async def _watch(self) -> None:
        while True:
            assert self.last is not None
            remaining = (self.last + timedelta(seconds=self.after_s) - workflow.now()).total_seconds()
            if remaining <= 0:
                self.due = True
                remaining = self.after_s
            await workflow.sleep(timedelta(seconds=remaining), summary="archive when idle")
