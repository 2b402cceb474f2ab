"""The plain `temporal` CLI drives a conversation with JSON, as the README shows."""

from __future__ import annotations

import asyncio
import json
import uuid

from tests.fixtures.temporal import temporal_binary
from workflows.conversation import ConversationWorkflow


async def temporal(address: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        temporal_binary(), *args, "--address", address,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, f"temporal {' '.join(args)} failed: {err.decode()}"
    return out.decode()


async def test_start_update_signal_and_query_from_the_temporal_cli(daemon):
    workflow_id = f"conversation-{uuid.uuid4().hex[:10]}"
    address = daemon.settings.temporal_address
    await temporal(
        address, "workflow", "start", "--type", "ConversationWorkflow", "--task-queue", daemon.task_queue,
        "--workflow-id", workflow_id, "--input", '{"agent":"assistant"}', "--static-summary", "from the CLI",
    )
    out = await temporal(
        address, "workflow", "update", "execute", "--workflow-id", workflow_id,
        "--name", "send_message", "--input", '{"content":"hi"}', "--output", "json",
    )
    assert "echo: hi" in out

    await temporal(address, "workflow", "signal", "--workflow-id", workflow_id, "--name", "pause",
                   "--input", '{"reason":"from the CLI"}')
    status = json.loads(await temporal(address, "workflow", "query", "--workflow-id", workflow_id,
                                       "--name", "status", "--output", "json"))
    result = status["queryResult"][0]
    assert result["paused"] is True and result["state"] == "paused" and result["turn"] == 1
    assert result["conversation_id"] == workflow_id.removeprefix("conversation-")

    await temporal(address, "workflow", "signal", "--workflow-id", workflow_id, "--name", "resume")
    await temporal(address, "workflow", "signal", "--workflow-id", workflow_id, "--name", "inject",
                   "--input", '{"content":"be brief","role":"system"}')
    await temporal(address, "workflow", "signal", "--workflow-id", workflow_id, "--name", "end",
                   "--input", '{"reason":"cli test"}')
    handle = daemon.client.get_workflow_handle(workflow_id)
    summary = await handle.result()
    assert summary == {"conversation_id": workflow_id.removeprefix("conversation-"), "turns": 1, "ended_reason": "cli test"}


async def test_a_workflow_started_without_an_id_uses_the_generated_one(daemon):
    out = await temporal(
        daemon.settings.temporal_address, "workflow", "start", "--type", "ConversationWorkflow",
        "--task-queue", daemon.task_queue, "--input", '{"agent":"assistant"}', "--output", "json",
    )
    workflow_id = json.loads(out)["workflowId"]
    handle = daemon.client.get_workflow_handle(workflow_id)
    status = await handle.query(ConversationWorkflow.status)
    assert status.conversation_id == workflow_id
