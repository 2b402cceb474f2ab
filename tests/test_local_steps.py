"""``LocalSteps``: a workflow's local activities run one at a time even when its coroutines ask
for them together, and the history replays — on the real dev server with a real worker."""

from __future__ import annotations

import uuid

from temporalio.worker import Replayer, Worker

from tests.local_steps_workflow import LocalStepsWorkflow, timed_step

DELAYS = [[0.3, 0.0, 0.2], [0.0, 0.25, 0.0], [0.1, 0.0, 0.3]]
"""Uneven, so that steps run together would finish in another order than they were asked."""


async def test_local_steps_never_overlap_and_the_history_replays(daemon):
    queue = f"{daemon.task_queue}-local-steps"
    async with Worker(daemon.client, task_queue=queue, workflows=[LocalStepsWorkflow], activities=[timed_step]):
        handle = await daemon.client.start_workflow(LocalStepsWorkflow.run, DELAYS, task_queue=queue,
                                                    id=f"local-steps-{uuid.uuid4().hex[:8]}")  # fmt: skip
        ran = sorted(await handle.result())
    assert len(ran) == sum(len(delays) for delays in DELAYS)
    for (_, previous_end), (start, _) in zip(ran, ran[1:]):
        assert start >= previous_end, f"two local activities ran at once: {ran}"
    await Replayer(workflows=[LocalStepsWorkflow]).replay_workflow(await handle.fetch_history())
