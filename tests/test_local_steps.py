"""``LocalSteps``: a workflow's local activities run one at a time even when its coroutines ask
for them together, and the history replays — on the real dev server with a real worker."""

from __future__ import annotations

import uuid

from temporalio.worker import Replayer, Worker

from tests.local_steps_workflow import LocalStepsWorkflow, counted_step

WORK_S = [[0.3, 0.0, 0.2], [0.0, 0.25, 0.0], [0.1, 0.0, 0.3]]
"""Each coroutine's steps; uneven, so that steps run together would overlap and finish in another
order than they were asked."""


async def test_local_steps_never_overlap_and_the_history_replays(daemon):
    queue = f"{daemon.task_queue}-local-steps"
    async with Worker(daemon.client, task_queue=queue, workflows=[LocalStepsWorkflow], activities=[counted_step]):
        handle = await daemon.client.start_workflow(LocalStepsWorkflow.run, WORK_S, task_queue=queue,
                                                    id=f"local-steps-{uuid.uuid4().hex[:8]}")  # fmt: skip
        running = await handle.result()
    assert running == [1] * sum(len(work) for work in WORK_S), f"local activities ran together: {running}"
    await Replayer(workflows=[LocalStepsWorkflow]).replay_workflow(await handle.fetch_history())
