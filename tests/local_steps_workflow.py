"""A workflow whose coroutines run local activities at the same time, through ``LocalSteps``: each
coroutine runs its steps in turn and starts a timer after each, so the order in which the steps
resume the coroutines decides the order of the commands (what must replay)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from workflows.local_steps import LocalSteps

STEP = workflow.LocalActivityConfig(start_to_close_timeout=timedelta(seconds=30))


_in_flight = 0
"""Steps of this process running now (the test's worker runs them all)."""


@activity.defn(name="local_steps_counted_step")
async def counted_step(work_s: float) -> int:
    """How many steps were running once this one had started (itself included), after ``work_s``
    of work."""
    global _in_flight
    _in_flight += 1
    running = _in_flight
    try:
        await asyncio.sleep(work_s)
    finally:
        _in_flight -= 1
    return running


@workflow.defn(name="LocalStepsWorkflow")
class LocalStepsWorkflow:
    def __init__(self) -> None:
        self._steps = LocalSteps()

    @workflow.run
    async def run(self, work_by_coroutine: list[list[float]]) -> list[int]:
        running: list[int] = []

        async def coroutine(work: list[float]) -> None:
            for index, work_s in enumerate(work):
                running.append(await self._steps.run(counted_step, work_s, summary=f"step {index}", config=STEP))
                await workflow.sleep(0.01)

        await asyncio.gather(*(coroutine(work) for work in work_by_coroutine))
        return running
