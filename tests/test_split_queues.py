"""Split task queues: roles, queue names, the host queue, and two worker processes sharing a turn."""

from __future__ import annotations

import asyncio

import subprocess
import sys
import uuid

import pytest

from config.settings import Settings
from models.conversation import ConversationInput, SendMessage, conversation_workflow_id
from tests.fakes.ollama import Reply, ToolCall
from tests.fixtures.temporal import daemon_settings
from tests.test_observability import daemonflow_worker
from workers.queues import QueueError, host_queue, parse_roles, plan
from workflows.conversation import ConversationWorkflow


def split(**overrides) -> Settings:
    return Settings(task_queue="df", llm_task_queue="df-llm", sandbox_task_queue="df-sandbox", **overrides)


def test_roles_are_parsed_from_role_or_queue_names():
    settings = split()
    assert parse_roles(None, settings) == ("main", "llm", "sandbox")
    assert parse_roles("sandbox, main", settings) == ("main", "sandbox")
    assert parse_roles("df-llm", settings) == ("llm",)
    assert parse_roles("all", settings) == ("main", "llm", "sandbox")
    with pytest.raises(QueueError, match="main=df, llm=df-llm, sandbox=df-sandbox"):
        parse_roles("gpu", settings)


def test_without_split_settings_every_role_is_one_queue():
    settings = Settings(task_queue="df", sandbox_host="box1")
    assert plan(settings, ("main", "llm", "sandbox")) == {"df": ["main", "llm", "sandbox"]}
    assert host_queue(settings) == "df-sandbox-box1"
    assert plan(settings, ("main", "llm", "sandbox"), host_queue(settings))["df-sandbox-box1"] == ["sandbox"]


def test_split_roles_get_their_own_queues_and_the_host_queue_is_per_host():
    settings = split(sandbox_host="box1")
    assert host_queue(settings) == "df-sandbox-box1"
    assert host_queue(split(sandbox_host_queue="pinned")) == "pinned"
    assert plan(settings, ("sandbox",), host_queue(settings)) == {"df-sandbox": ["sandbox"], "df-sandbox-box1": ["sandbox"]}
    assert plan(settings, ("main", "llm")) == {"df": ["main"], "df-llm": ["llm"]}


def test_the_cli_refuses_an_unknown_queue():
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "worker", "--queues", "gpu"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "unknown queue 'gpu'" in done.stderr


async def scheduled_queues(client, workflow_id: str) -> list[tuple[str, str]]:
    """(activity type, task queue) of every activity the workflow scheduled, in order."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [
        (e.activity_task_scheduled_event_attributes.activity_type.name,
         e.activity_task_scheduled_event_attributes.task_queue.name)
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]  # fmt: skip


async def test_two_workers_on_split_queues_complete_a_turn_with_tool_calls(
    temporal_env, temporal_address, fake_ollama, tmp_path, docker_client
):
    base = daemon_settings(tmp_path, temporal_address, fake_ollama.url)
    main, llm, sandbox = base.task_queue, f"{base.task_queue}-llm", f"{base.task_queue}-sandbox"
    env = {
        "DAEMONFLOW_TEMPORAL_ADDRESS": base.temporal_address,
        "DAEMONFLOW_TASK_QUEUE": main,
        "DAEMONFLOW_LLM_TASK_QUEUE": llm,
        "DAEMONFLOW_SANDBOX_TASK_QUEUE": sandbox,
        "DAEMONFLOW_SANDBOX_HOST": "docker-host-a",
        "DAEMONFLOW_DATABASE_URL": base.effective_database_url,
        "DAEMONFLOW_VAR_DIR": str(base.var_dir),
        "OLLAMA_HOST": base.ollama_host,
        "DAEMONFLOW_METRICS_PORT": "0",
        "DAEMONFLOW_TEMPORAL_METRICS_PORT": "0",
        "DAEMONFLOW_SCHEDULES": "off",
    }
    first = daemonflow_worker(env, tmp_path / "main-llm.log", "--queues", "main,llm")
    second = daemonflow_worker(env, tmp_path / "sandbox.log", "--queues", "sandbox")
    allow = [{"id": "allow", "decision": "allow", "tools": ["run_command"], "command": ["echo *", "cat *"]}]
    fake_ollama.script(
        Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo kept > /workspace/note"})]),
        Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "cat /workspace/note"})]),
        Reply(tool_calls=[ToolCall(name="generate_code", arguments={"path": "gen.py", "instructions": "print hi"})]),
        Reply(content="print('hi')\n"),  # generate_code's model step, on the llm worker
        Reply(content="done"),
    )
    conversation_id = f"split-{uuid.uuid4().hex[:8]}"
    try:
        handle = await temporal_env.client.start_workflow(
            ConversationWorkflow.run,
            ConversationInput(conversation_id=conversation_id, agent="developer", policy=allow),
            id=conversation_workflow_id(conversation_id),
            task_queue=main,
        )
        sending = handle.execute_update(ConversationWorkflow.send_message, SendMessage(content="keep a note"))
        result = await asyncio.wait_for(sending, 180)  # a worker that died at start fails the test, never hangs it
    finally:
        for worker in (first, second):
            worker.terminate()
            worker.wait(30)
    assert result.reply == "done" and [c.success for c in result.tool_calls] == [True, True, True]

    conversation = await scheduled_queues(temporal_env.client, handle.id)
    assert ("llm.chat", llm) in conversation and ("transcript.open", main) in conversation
    assert not any(queue == llm for kind, queue in conversation if kind.startswith("transcript."))
    # Single-step calls are activities of the conversation; the two-step generate_code a child.
    # The first call goes to any sandbox worker; it answers with its host queue, and the later
    # calls come back to that host, where the workspace (and the note) lives.
    assert [entry for entry in conversation if entry[0] == "tools.run"] == [
        ("tools.run", sandbox), ("tools.run", f"{sandbox}-docker-host-a")]
    generated = await scheduled_queues(temporal_env.client, f"tool-{conversation_id}-{result.tool_calls[2].id}")
    assert generated == [("ai.generate_code", llm), ("tools.run", f"{sandbox}-docker-host-a")]
    messages = _tool_messages(base, conversation_id)
    assert "kept" in messages[1] and messages[2].startswith("wrote 12 bytes to /workspace/gen.py")


def _tool_messages(settings: Settings, conversation_id: str) -> list[str]:
    from store.engine import make_engine
    from store.transcript import TranscriptStore

    store = TranscriptStore(make_engine(settings.effective_database_url))
    return [m.content for m in store.list_messages(conversation_id) if m.role == "tool"]
