"""A workflow whose coroutines run local activities at the same time, through ``LocalSteps``: each
coroutine runs its steps in turn and starts a timer after each, so the order in which the steps
resume the coroutines decides the order of the commands (what must replay)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from workflows.local_steps import LocalSteps

STEP = workflow.LocalActivityConfig(start_to_close_timeout=timedelta(seconds=30))


@activity.defn(name="local_steps_timed_step")
async def timed_step(delay_s: float) -> tuple[float, float]:
    """When it ran (this process's monotonic clock), after ``delay_s`` of work."""
    started = time.monotonic()
    await asyncio.sleep(delay_s)
    return started, time.monotonic()


@workflow.defn(name="LocalStepsWorkflow")
class LocalStepsWorkflow:
    def __init__(self) -> None:
        self._steps = LocalSteps()

    @workflow.run
    async def run(self, delays_by_coroutine: list[list[float]]) -> list[tuple[float, float]]:
        ran: list[tuple[float, float]] = []

        async def coroutine(delays: list[float]) -> None:
            for index, delay in enumerate(delays):
                ran.append(await self._steps.run(timed_step, delay, summary=f"step {index}", config=STEP))
                await workflow.sleep(0.01)

        await asyncio.gather(*(coroutine(delays) for delays in delays_by_coroutine))
        return ran
