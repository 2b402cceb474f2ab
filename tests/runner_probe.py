"""Test-only workflows for ``tests/test_workflow_runner.py``: one that runs an activity (its
payloads go through every serialization-context lookup), one that breaks a sandbox rule.

In a module of their own, not in the test file, so the sandbox re-imports only this."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import activity, workflow


@activity.defn(name="runner_probe.echo")
async def echo(text: str) -> str:
    return f"echo: {text}"


@workflow.defn(name="RunnerProbeWorkflow")
class RunnerProbeWorkflow:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(echo, text, start_to_close_timeout=timedelta(seconds=30))


@workflow.defn(name="WallClockProbeWorkflow")
class WallClockProbeWorkflow:
    """Reads the machine's clock: the sandbox must fail its workflow task."""

    @workflow.run
    async def run(self) -> str:
        return datetime.now().isoformat()
