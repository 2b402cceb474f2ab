"""The tool catalogue and the ``tools.run`` activity on the real Docker engine."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.testing import ActivityEnvironment

from activities.sandbox import SandboxManager
from activities.tools.catalog import BY_NAME, CATALOG, specs_for
from activities.tools.runner import ToolActivities
from config.settings import Settings
from config.templates import load_all
from models.tools import ToolCallInput
from store.actions import ActionStore
from store.engine import make_engine
from store.payloads import PayloadStore
from tests.fakes.ollama import Reply, ToolCall
from tests.test_approvals import start_turn, tool_messages
from tests.test_durability import WorkerProcess, _daemon_without_worker
from tests.test_conversation import wait_for
from workflows.arguments import argument_errors


def test_every_template_tool_is_in_the_catalogue_or_a_later_feature():
    later = {"memory_store", "memory_recall"}
    for template in load_all():
        assert set(template.tools) - set(BY_NAME) <= later, template.name


def test_specs_become_ollama_tool_definitions():
    definition = BY_NAME["write_file"].ollama_definition()
    assert definition["function"]["name"] == "write_file"
    assert definition["function"]["parameters"]["required"] == ["path", "content"]
    assert [s.name for s in specs_for(["read_file", "unknown", "git_log"])] == ["read_file", "git_log"]


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.name)
def test_schemas_reject_unknown_and_missing_arguments(spec):
    assert argument_errors(spec.parameters, {"surprise": 1})
    assert argument_errors(spec.parameters, "not an object")


@pytest.fixture
def runner(tmp_path, docker_client):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    settings = Settings(database_url="sqlite://", var_dir=tmp_path)
    sandbox = SandboxManager(docker_client, settings, tmp_path / "artifacts")
    conversation_id = f"t{uuid.uuid4().hex[:10]}"
    yield ToolActivities(sandbox, docker_client, ActionStore(engine), PayloadStore(engine)), conversation_id
    sandbox.remove(conversation_id, volumes=True)


async def test_a_retried_tool_call_returns_the_first_result_without_running_again(runner):
    tools, conversation_id = runner
    spec = BY_NAME["run_command"]
    call = ToolCallInput(conversation_id=conversation_id, tool_call_id="3-0", tool="run_command",
                         arguments={"command": "echo run >> /workspace/count; wc -l < /workspace/count"})
    first = await ActivityEnvironment().run(tools.run, spec, call)
    again = await ActivityEnvironment().run(tools.run, spec, call)
    assert first.output.strip() == again.output.strip() == "1"
    other = call.model_copy(update={"tool_call_id": "4-0"})
    assert (await ActivityEnvironment().run(tools.run, spec, other)).output.strip() == "2"


async def test_file_and_git_tools_work_in_the_workspace(runner):
    tools, conversation_id = runner

    async def call(name: str, **arguments):
        request = ToolCallInput(conversation_id=conversation_id, tool_call_id=uuid.uuid4().hex, tool=name,
                                arguments=arguments)
        return await ActivityEnvironment().run(tools.run, BY_NAME[name], request)

    assert (await call("write_file", path="src/app.py", content="print('hi')\n")).success
    assert (await call("read_file", path="src/app.py")).output == "print('hi')\n"
    assert "app.py" in (await call("list_directory", path="src")).output
    assert (await call("run_python", code="print(6 * 7)")).output.strip() == "42"
    assert (await call("git_commit", message="first")).success
    assert "first" in (await call("git_log")).output
    assert "Python 3" in (await call("system_info")).output
    escape = await call("run_command", command="cat /etc/hostname")
    assert escape.success
    with pytest.raises(Exception, match="outside"):
        await call("read_file", path="../../etc/passwd")


async def test_worker_killed_during_a_command_it_is_reported_not_run_again(
    temporal_env, temporal_address, fake_ollama, tmp_path, docker_client
):
    """At most once: the command started (its marker is in the store) when the worker died; the
    retry on another worker tells the model instead of running the command a second time."""
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    fake_ollama.script(
        Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo run >> runs; sleep 4; echo slept"})]),
        Reply(content="done"),
    )
    allow = [{"id": "allow-it", "decision": "allow", "tools": ["run_command"], "command": ["echo *", "sleep *"]}]
    first = WorkerProcess(daemon.env(), tmp_path / "worker-1.log")
    second = None
    try:
        handle = await daemon.start(agent="developer", policy=allow)
        conversation_id = handle.id.removeprefix("conversation-")
        turn = asyncio.create_task(daemon.send(handle, "sleep a bit"))
        actions = ActionStore(daemon.store.engine)
        await wait_for(lambda: _true(actions.started(conversation_id, "2-0")), timeout=60)
        # the marker is stored just before `docker exec`: kill only once the command has begun
        await wait_for(lambda: _true(_container_has(docker_client, conversation_id, "/workspace/runs")), timeout=60)
        first.kill()
        second = WorkerProcess(daemon.env(), tmp_path / "worker-2.log")
        result = await asyncio.wait_for(turn, timeout=120)
    finally:
        for worker in (first, second):
            if worker:
                worker.close()
    assert result.reply == "done" and not result.tool_calls[0].success
    assert "interrupted" in tool_messages(daemon, handle)[0] and "not run again" in tool_messages(daemon, handle)[0]
    await asyncio.sleep(5)  # the first run, orphaned, finishes in its container
    runs = docker_client.containers.get(f"daemonflow-{conversation_id}").exec_run(["cat", "/workspace/runs"])
    assert runs.output.decode() == "run\n"  # once


async def test_a_started_call_is_not_run_again_but_an_idempotent_one_is(runner):
    tools, conversation_id = runner
    actions = tools._actions
    command = ToolCallInput(conversation_id=conversation_id, tool_call_id="5-0", tool="run_command",
                            arguments={"command": "echo run >> /workspace/count"})
    assert actions.mark_started(conversation_id, "5-0", "run_command")  # as if a worker died after starting it
    result = await ActivityEnvironment().run(tools.run, BY_NAME["run_command"], command)
    assert not result.success and result.error.startswith("interrupted")
    assert (await ActivityEnvironment().run(tools.run, BY_NAME["run_command"], command)).error == result.error
    write = ToolCallInput(conversation_id=conversation_id, tool_call_id="6-0", tool="write_file",
                          arguments={"path": "count", "content": "0\n"})
    assert (await ActivityEnvironment().run(tools.run, BY_NAME["write_file"], write)).success
    read = ToolCallInput(conversation_id=conversation_id, tool_call_id="7-0", tool="read_file",
                         arguments={"path": "count"})
    actions.mark_started(conversation_id, "7-0", "read_file")  # a read is simply run again
    assert (await ActivityEnvironment().run(tools.run, BY_NAME["read_file"], read)).output == "0\n"
    assert actions.cached_result(conversation_id, "5-0")["error"].startswith("interrupted")


async def _true(value):
    return value


def _container_has(docker_client, conversation_id: str, path: str) -> bool:
    container = docker_client.containers.get(f"daemonflow-{conversation_id}")
    return container.exec_run(["test", "-e", path]).exit_code == 0
