"""Coherent tool timeouts: the call's own budget drives the sandbox, the activity and the child.

A command allowed to run for an hour used to be killed after 150 s by the activity timeout and run
again. Now every clock derives from ``ToolSpec.command_timeout_s`` (the ``timeout_s`` argument
within the spec's maximum); a command that runs out of it is killed once and reported, never run
again. Real Docker, short budgets.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import ActivityEnvironment

from activities.sandbox import SandboxManager
from activities.tools.catalog import BY_NAME
from activities.tools.runner import ToolActivities
from config.settings import Settings
from models.tools import ACTIVITY_MARGIN_S, ToolCallInput
from store.actions import ActionStore
from store.engine import make_engine
from store.payloads import PayloadStore
from tests.fakes.ollama import Reply, ToolCall
from tests.test_approvals import tool_messages
from workflows.tool_execution import HOST_WAIT, run_timeout

ALLOW_COMMANDS = [{"id": "allow-test-commands", "decision": "allow", "tools": ["run_command"],
                   "command": ["echo *", "sleep *"]}]


def test_every_clock_derives_from_the_calls_own_budget():
    command = BY_NAME["run_command"]
    assert command.command_timeout_s({}) == 120
    assert command.command_timeout_s({"timeout_s": 3600}) == 3600
    assert command.command_timeout_s({"timeout_s": 99_999}) == 3600  # the spec's maximum bounds it
    assert command.command_timeout_s({"timeout_s": True}) == 120
    assert command.activity_timeout_s({"timeout_s": 3600}) == 3600 + ACTIVITY_MARGIN_S
    hour = run_timeout(command, {"timeout_s": 3600}, routed=True)
    assert hour >= command.max_attempts * timedelta(seconds=3600 + ACTIVITY_MARGIN_S) + HOST_WAIT
    tests = BY_NAME["run_tests"]
    assert tests.command_timeout_s({}) == 600 and tests.command_timeout_s({"timeout_s": 30}) == 30
    assert BY_NAME["read_file"].command_timeout_s({"timeout_s": 999}) == BY_NAME["read_file"].timeout_s
    generate = BY_NAME["generate_code"]  # two steps: the model's, then the write
    assert run_timeout(generate, {}, routed=False) > 2 * generate.max_attempts * timedelta(seconds=generate.timeout_s)


@pytest.fixture
def tools(tmp_path, docker_client):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    sandbox = SandboxManager(docker_client, Settings(database_url="sqlite://", var_dir=tmp_path), tmp_path / "artifacts")
    conversation_id = f"tmo{uuid.uuid4().hex[:10]}"
    yield ToolActivities(sandbox, docker_client, ActionStore(engine), PayloadStore(engine)), conversation_id
    sandbox.remove(conversation_id, volumes=True)


async def _run(tools, spec, conversation_id, **arguments):
    call = ToolCallInput(conversation_id=conversation_id, tool_call_id=uuid.uuid4().hex, tool=spec.name,
                         arguments=arguments)
    return await ActivityEnvironment().run(tools.run, spec, call)


async def test_the_sandbox_kills_at_the_budget_the_call_asked_for(tools):
    activities, conversation_id = tools
    short = BY_NAME["run_command"].model_copy(update={"timeout_s": 1, "max_timeout_s": 10})
    killed = await _run(activities, short, conversation_id, command="sleep 3; echo late")
    assert not killed.success and killed.error.startswith("timed out: killed after 1 s") and "late" not in killed.output
    longer = await _run(activities, short, conversation_id, command="sleep 2; echo in time", timeout_s=5)
    assert longer.success and longer.output == "in time\n"  # the default of 1 s did not apply


async def test_run_tests_passes_its_own_budget_to_the_sandbox(tools, docker_client):
    activities, conversation_id = tools
    slow = "import time, unittest\nclass T(unittest.TestCase):\n    def test_slow(self):\n        time.sleep(6)\n"
    assert (await _run(activities, BY_NAME["write_file"], conversation_id, path="tests/test_slow.py",
                       content=slow)).success
    result = await _run(activities, BY_NAME["run_tests"], conversation_id, path="tests", timeout_s=2)
    assert not result.success and result.error.startswith("timed out: killed after 2 s")


async def test_a_command_that_times_out_in_a_conversation_is_reported_once(daemon, fake_ollama, docker_client):
    call = ToolCall(name="run_command", arguments={"command": "echo run >> runs; sleep 30; echo never", "timeout_s": 2})
    fake_ollama.script(Reply(tool_calls=[call]), Reply(content="it timed out"))
    handle = await daemon.start(agent="developer", policy=ALLOW_COMMANDS)
    conversation_id = handle.id.removeprefix("conversation-")
    result = await daemon.send(handle, "run it")
    assert result.reply == "it timed out" and not result.tool_calls[0].success
    [message] = tool_messages(daemon, handle)
    assert "timed out: killed after 2 s" in message and "not run again" in message and "never" not in message
    runs = docker_client.containers.get(f"daemonflow-{conversation_id}").exec_run(["cat", "/workspace/runs"])
    assert runs.output.decode() == "run\n"

    scheduled, started = await _tool_activity(handle, result.tool_calls[0].id)
    assert [s.attempt for s in started] == [1]  # one attempt: not re-run
    assert scheduled.start_to_close_timeout.ToSeconds() == 2 + ACTIVITY_MARGIN_S
    assert scheduled.schedule_to_close_timeout.ToSeconds() == int(
        run_timeout(BY_NAME["run_command"], call.arguments, routed=False).total_seconds())


async def test_a_long_budget_reaches_the_activity(daemon, fake_ollama):
    """A command allowed an hour gets an hour (plus the margin), not the old 150 s."""
    call = ToolCall(name="run_command", arguments={"command": "echo quick", "timeout_s": 3600})
    fake_ollama.script(Reply(tool_calls=[call]), Reply(content="ok"))
    handle = await daemon.start(agent="developer", policy=ALLOW_COMMANDS)
    result = await daemon.send(handle, "run it")
    scheduled, _ = await _tool_activity(handle, result.tool_calls[0].id)
    assert scheduled.start_to_close_timeout.ToSeconds() == 3600 + ACTIVITY_MARGIN_S
    assert scheduled.heartbeat_timeout.ToSeconds() == 30  # a dead worker is still noticed in seconds


async def _tool_activity(handle, tool_call_id: str):
    """The ``tools.run`` activity of a call (activity id ``tool-<call>`` in the conversation's own
    history) as scheduled, and its started attempts."""
    history = await handle.fetch_history()
    ids = {e.event_id: e.activity_task_scheduled_event_attributes for e in history.events
           if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
    [scheduled_id] = [i for i, a in ids.items() if a.activity_id == f"tool-{tool_call_id}"]
    started = [e.activity_task_started_event_attributes for e in history.events
               if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
               and e.activity_task_started_event_attributes.scheduled_event_id == scheduled_id]
    assert ids[scheduled_id].activity_type.name == "tools.run"
    return ids[scheduled_id], started
