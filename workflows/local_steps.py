"""A workflow's local activities, one at a time.

Why: a workflow whose coroutines run local activities at the same time (a channel's records
written while its chain stores the next message; a plan's tasks recording their starts) is
reported not to replay always (temporalio/sdk-python#1578): live, the worker resumes the
coroutines in the order the activities *finish*; on replay in the order their markers are matched,
so the commands that follow (a child started, a search attribute set) can come in another order
(``[TMPRL1100] Nondeterminism error``). A replay happens on every query of a closed workflow, after
a cache eviction and after a worker restart. A plan's ``progress`` query failed that way once in
about 103 runs of one test; concurrent local activities are the suspect, not a proof: the issue's
minimal shape, and ``tests/test_local_steps.py`` without the lock, replayed every time here
(temporalio 1.35.0).

With one local activity in flight per workflow, a resolution is the only thing that can wake the
workflow inside its task, live and on replay alike. The steps are short store writes, so waiting
for each other costs little: a channel post answered by one agent took 186.8 and 187.4 ms p50
against 194.6 and 176.4 before (``bench.channel --posts 40``, alternated, load 1.9). Histories
recorded before this (``ONE_AT_A_TIME_PATCH`` absent) replay as they ran.
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
