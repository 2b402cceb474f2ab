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
    assert summary == {"conversation_id": workflow_id.removeprefix("conversation-"), "turns": 1, "ended_reason": "cli test",
                       "archive": None}  # ended, not archived


async def test_a_workflow_started_without_an_id_uses_the_generated_one(daemon):
    out = await temporal(
        daemon.settings.temporal_address, "workflow", "start", "--type", "ConversationWorkflow",
        "--task-queue", daemon.task_queue, "--input", '{"agent":"assistant"}', "--output", "json",
    )
    workflow_id = json.loads(out)["workflowId"]
    handle = daemon.client.get_workflow_handle(workflow_id)
    status = await handle.query(ConversationWorkflow.status)
    assert status.conversation_id == workflow_id


async def test_a_channel_from_the_temporal_cli(daemon, fake_ollama):
    """The README's channel commands: start with JSON, post with `update execute`, query, list by
    search attribute, end (which ends the agents' conversations too)."""
    from tests.channel_support import CODING, team_answers

    team_answers(fake_ollama)
    channel = f"cli{uuid.uuid4().hex[:8]}"
    address = daemon.settings.temporal_address
    await temporal(
        address, "workflow", "start", "--type", "ChannelWorkflow", "--task-queue", daemon.task_queue,
        "--workflow-id", f"channel-{channel}", "--static-summary", "from the CLI",
        "--input", json.dumps({"agents": ["developer", "analyst", {"agent": "moderator"}], "people": ["alice"],
                               "budgets": {"replies_per_post": 3}}),
    )
    out = await temporal(address, "workflow", "update", "execute", "--workflow-id", f"channel-{channel}",
                         "--name", "post", "--input", json.dumps({"author": "alice", "content": CODING}),
                         "--output", "json")
    result = json.loads(out)
    result = result.get("result", result)
    assert result["spoke"] == ["developer"] and result["scores"][0]["decision"] == "intervene"
    status = json.loads(await temporal(address, "workflow", "query", "--workflow-id", f"channel-{channel}",
                                       "--name", "status", "--output", "json"))["queryResult"][0]
    assert (status["channel_id"], status["posts"], status["state"]) == (channel, 1, "idle")
    expected = {f"channel-{channel}", *(f"conversation-{channel}--{a}" for a in ("developer", "analyst", "moderator"))}
    for _ in range(50):  # visibility is eventually consistent
        listed = await temporal(address, "workflow", "list", "--query", f"DaemonflowChannel='{channel}'",
                                "--output", "json")
        if {item["execution"]["workflowId"] for item in json.loads(listed or "[]")} == expected:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"DaemonflowChannel='{channel}' lists {listed}")
    await temporal(address, "workflow", "signal", "--workflow-id", f"channel-{channel}", "--name", "end",
                   "--input", '{"reason":"cli test"}')
    summary = await daemon.client.get_workflow_handle(f"channel-{channel}").result()
    assert summary == {"channel_id": channel, "posts": 1, "ended_reason": "cli test", "archive": None}
    member = await daemon.client.get_workflow_handle(f"conversation-{channel}--developer").result()
    assert member["ended_reason"] == f"channel #{channel} ended: cli test"


async def test_a_plan_from_the_temporal_cli(daemon, fake_ollama):
    """The README's plan commands (task plans, issue 15): start with JSON, query its progress, pause,
    add a task with `update execute`, resume; the result is the summary."""
    from tests.plan_support import TaskModel

    TaskModel(fake_ollama)
    workflow_id = f"plan-cli{uuid.uuid4().hex[:8]}"
    address = daemon.settings.temporal_address
    await temporal(address, "workflow", "start", "--type", "TaskPlanWorkflow", "--task-queue", daemon.task_queue,
                   "--workflow-id", workflow_id, "--input", json.dumps({"tasks": [
                       {"id": "a", "prompt": "say hi"}, {"id": "b", "prompt": "say bye", "depends_on": ["a"]}]}))
    await temporal(address, "workflow", "signal", "--workflow-id", workflow_id, "--name", "pause",
                   "--input", '{"reason": "lunch"}')
    out = await temporal(address, "workflow", "update", "execute", "--workflow-id", workflow_id, "--name", "add_tasks",
                         "--input", json.dumps({"tasks": [{"id": "c", "prompt": "wave", "depends_on": ["a"]}]}),
                         "--output", "json")
    added = json.loads(out)
    assert [t["spec"]["id"] for t in added.get("result", added)["tasks"]] == ["a", "b", "c"]
    progress = json.loads(await temporal(address, "workflow", "query", "--workflow-id", workflow_id,
                                         "--name", "progress", "--output", "json"))["queryResult"][0]
    assert progress["paused"] and progress["details"].startswith("paused: lunch")
    await temporal(address, "workflow", "signal", "--workflow-id", workflow_id, "--name", "resume")
    summary = await daemon.client.get_workflow_handle(workflow_id).result()
    assert summary["state"] == "succeeded" and summary["counts"]["succeeded"] == 3
    assert summary["tasks"][1]["result"] == "result of b"
