"""The worker's workflow runner (``workers/workflow_runner.py``): Temporal's sandbox with its
serialization-context lookups made without ``exec``; and its payload walks, made only when a codec
or external storage can change a payload (``workers/payload_visits.py``).

On the real dev server: the lookups must give every payload the context the SDK's own sandbox
gives it (seen by a payload codec that records its context: the one public place they show), the
sandbox must still fail a workflow that reads the machine's clock, and the composition root must
use the runner.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import uuid
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
import temporalio.bridge.worker as bridge_worker
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.worker import Worker, WorkflowRunner, _workflow
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from tests.runner_probe import RunnerProbeWorkflow, WallClockProbeWorkflow, echo
from workers import payload_visits
from workers.workflow_runner import LeanSandboxRunner

FAILED_TASK_WAIT_S = 30


class RecordingCodec(PayloadCodec, WithSerializationContext):
    """Leaves payloads as they are; records which context each encode and decode was given."""

    def __init__(self, seen: list[tuple], context: SerializationContext | None = None) -> None:
        self.seen = seen
        self.context = context

    def with_context(self, context: SerializationContext) -> RecordingCodec:
        return RecordingCodec(self.seen, context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.append(("encode", _shape(self.context)))
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.append(("decode", _shape(self.context)))
        return list(payloads)


def _shape(context: SerializationContext | None) -> tuple:
    """The context without the run's own workflow id, so that two runs compare."""
    if isinstance(context, ActivitySerializationContext):
        return ("activity", context.activity_type, context.workflow_type, context.is_local)
    if isinstance(context, WorkflowSerializationContext):
        return ("workflow",)
    return (type(context).__name__,)


async def _contexts_seen(temporal_env, runner: WorkflowRunner) -> list[tuple]:
    """What the workflow worker's codec saw for one run: the workflow worker alone has the
    recording codec (the activity runs on a second worker, the client starts it plainly), so only
    the lookups the runner answers are recorded. The payload walks are Daemonflow's: with a codec
    they must run as the SDK's do."""
    payload_visits.install()
    seen: list[tuple] = []
    converter = dataclasses.replace(pydantic_data_converter, payload_codec=RecordingCodec(seen))
    recording = Client(**{**temporal_env.client.config(), "data_converter": converter})
    queue = f"runner-{uuid.uuid4().hex[:10]}"
    async with Worker(recording, task_queue=queue, workflows=[RunnerProbeWorkflow], workflow_runner=runner), \
            Worker(temporal_env.client, task_queue=queue, activities=[echo]):
        result = await temporal_env.client.execute_workflow(RunnerProbeWorkflow.run, "hi", id=f"runner-probe-{queue}",
                                                            task_queue=queue)
    assert result == "echo: hi"
    return sorted(seen)


async def test_payloads_get_the_contexts_the_sdk_sandbox_gives_them(temporal_env):
    ours = await _contexts_seen(temporal_env, LeanSandboxRunner())
    sdk = await _contexts_seen(temporal_env, SandboxedWorkflowRunner())

    assert ours == sdk
    # the command-specific lookups were made: the activity's arguments (in the workflow's
    # completion) and its result (in the next activation) carry the activity's context
    activity = ("activity", "runner_probe.echo", "RunnerProbeWorkflow", False)
    assert ("encode", activity) in ours and ("decode", activity) in ours
    assert ("decode", ("workflow",)) in ours  # the workflow's input


async def test_the_sandbox_still_fails_a_workflow_that_reads_the_clock(temporal_env):
    client = temporal_env.client
    queue = f"runner-{uuid.uuid4().hex[:10]}"
    async with Worker(client, task_queue=queue, workflows=[WallClockProbeWorkflow], workflow_runner=LeanSandboxRunner()):
        handle = await client.start_workflow(WallClockProbeWorkflow.run, id=f"wall-clock-{queue}", task_queue=queue)
        failure = await _first_task_failure(handle)
        await handle.terminate("test over")
    assert "datetime.datetime.now" in failure


async def _first_task_failure(handle) -> str:
    for _ in range(FAILED_TASK_WAIT_S * 10):
        history = await handle.fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return event.workflow_task_failed_event_attributes.failure.message
        await asyncio.sleep(0.1)
    raise AssertionError(f"no workflow task failed within {FAILED_TASK_WAIT_S} s")


async def test_the_worker_runs_conversations_in_the_lean_sandbox(daemon):
    assert isinstance(daemon.worker.config()["workflow_runner"], LeanSandboxRunner)
    result = await daemon.send(await daemon.start(), "hello")
    assert result.reply


@dataclasses.dataclass(frozen=True)
class CountingConverter(DataConverter):
    """No codec, no external storage; counts how often a payload walk asks it for anything."""

    walked: list = dataclasses.field(default_factory=list, compare=False)

    async def _decode_payload_sequence(self, payloads):
        self.walked.append("decode")
        return await super()._decode_payload_sequence(payloads)

    async def _encode_payload_sequence(self, payloads):
        self.walked.append("encode")
        return await super()._encode_payload_sequence(payloads)


async def _walks(temporal_env) -> list[str]:
    converter = CountingConverter(payload_converter_class=pydantic_data_converter.payload_converter_class)
    counting = Client(**{**temporal_env.client.config(), "data_converter": converter})
    queue = f"walks-{uuid.uuid4().hex[:10]}"
    async with Worker(counting, task_queue=queue, workflows=[RunnerProbeWorkflow], workflow_runner=LeanSandboxRunner()), \
            Worker(temporal_env.client, task_queue=queue, activities=[echo]):
        result = await temporal_env.client.execute_workflow(RunnerProbeWorkflow.run, "hi", id=f"walks-{queue}",
                                                            task_queue=queue)
    assert result == "echo: hi"
    return converter.walked


async def test_a_worker_without_codec_or_external_storage_walks_no_payloads(temporal_env):
    payload_visits.install()
    assert await _walks(temporal_env) == []
    # the SDK's workflow worker still looks the two functions up where install() puts them
    source = inspect.getsource(_workflow._WorkflowWorker._handle_activation)
    assert "temporalio.bridge.worker.decode_activation(" in source
    assert "temporalio.bridge.worker.encode_completion(" in source


async def test_without_the_change_the_sdk_walks_every_activation(temporal_env, monkeypatch):
    """What the change removes, so the test above cannot pass for another reason."""
    monkeypatch.setattr(bridge_worker, "decode_activation", payload_visits._sdk_decode)
    monkeypatch.setattr(bridge_worker, "encode_completion", payload_visits._sdk_encode)
    walked = await _walks(temporal_env)
    assert "decode" in walked and "encode" in walked


async def test_the_composition_root_installs_it(daemon):
    assert bridge_worker.decode_activation is payload_visits.decode_activation
    assert bridge_worker.encode_completion is payload_visits.encode_completion
