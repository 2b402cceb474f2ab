"""A workflow's local activities, one at a time.

Why: a workflow whose coroutines run local activities at the same time (a channel's records
written while its chain stores the next message; a plan's tasks recording their starts) does not
always replay. Live, the worker resumes the coroutines in the order the activities *finish*; on
replay in the order their markers are matched, so the commands that follow (a child started, a
search attribute set) can come in another order and the history no longer replays
(``[TMPRL1100] Nondeterminism error``; temporalio/sdk-python#1578, sdk-core's fixes in progress).
A replay happens on every query of a closed workflow, after a cache eviction and after a worker
restart: a plan's ``progress`` query failed this way once in about 103 runs of one test.

With one local activity in flight per workflow, a resolution is the only thing that can wake the
workflow inside its task, live and on replay alike. The steps are short store writes (a few ms,
``bench/README.md``), so waiting for each other costs little. Histories recorded before this
(``ONE_AT_A_TIME_PATCH`` absent) replay as they ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from temporalio import workflow

ONE_AT_A_TIME_PATCH = "one-local-activity-at-a-time"

Result = TypeVar("Result")


class LocalSteps:
    """One per workflow instance; every local activity of the workflow goes through ``run``."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def run(self, step: Callable[..., Awaitable[Result]], argument: Any, *, summary: str,
                  config: workflow.LocalActivityConfig) -> Result:  # fmt: skip
        if not workflow.patched(ONE_AT_A_TIME_PATCH):
            return await workflow.execute_local_activity_method(step, argument, summary=summary, **config)
        async with self._lock:  # FIFO: waiting steps run in the order they asked, live and on replay
            return await workflow.execute_local_activity_method(step, argument, summary=summary, **config)
