"""The ``daemonflow`` command, driven for real: a subprocess talking to the session's Temporal server,
answered by the test's worker and the fake Ollama.

The worker runs on this process's event loop, so every subprocess is awaited asynchronously;
a blocking ``subprocess.run`` would starve the very worker the CLI is waiting for.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHandle

from models.conversation import ConversationInput, ConversationSummary, HistoryQuery, MessageView, Status
from tests.fixtures.temporal import Daemon
from workflows import search_attributes
from workflows.conversation import ConversationWorkflow

CLI_TIMEOUT_S = 60


@dataclass
class Run:
    code: int
    out: str
    err: str


async def daemonflow(env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None) -> Run:
    """``python -m cli.main ARGS`` with ``env`` added to ours; waits for it to exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**inherited_env(), **env},
        cwd=cwd,
    )  # fmt: skip
    out, err = await asyncio.wait_for(
        process.communicate(stdin.encode() if stdin is not None else None), CLI_TIMEOUT_S
    )
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


def inherited_env() -> dict[str, str]:
    """Our environment minus Daemonflow's and Ollama's settings, so a developer's shell cannot leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DAEMONFLOW_") and k != "OLLAMA_HOST"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def status_of(handle: WorkflowHandle) -> Status:
    return await handle.query(ConversationWorkflow.status)


async def history_of(handle: WorkflowHandle, limit: int = 50) -> list[MessageView]:
    return await handle.query(ConversationWorkflow.history, HistoryQuery(limit=limit))


async def test_chat_new_conversation_then_resume_it(daemon: Daemon, tmp_path: Path) -> None:
    script = "hello there\nsecond message\n/pause tea break\n/status\n/resume\n/status\n/quit\n"
    run = await daemonflow(daemon.env(), tmp_path, "chat", "--user", "ada", stdin=script)
    assert run.code == 0, run.err

    found = re.search(r"conversation (\w+) · agent assistant", run.out)
    assert found, run.out
    conversation_id = found.group(1)
    assert "assistant> echo: hello there" in run.out
    assert "assistant> echo: second message" in run.out
    assert "state         paused (tea break)" in run.out
    assert run.out.index("paused (tea break)") < run.out.index("resumed") < run.out.rindex("state         idle")
    assert f"daemonflow chat --conversation {conversation_id}" in run.out  # /quit leaves it running

    handle = daemon.client.get_workflow_handle(f"conversation-{conversation_id}")
    status = await status_of(handle)
    assert (status.turn, status.paused, status.state.value) == (2, False, "idle")
    description = await handle.describe()
    assert await description.static_summary() == "assistant chat with ada: hello there"
    assert description.typed_search_attributes.get(search_attributes.AGENT) == "assistant"

    # Resume: the recent messages are shown, the chat goes on in the same workflow; EOF quits.
    run = await daemonflow(daemon.env(), tmp_path, "chat", "--conversation", conversation_id, stdin="and again\n")
    assert run.code == 0, run.err
    assert f"conversation  {conversation_id}" in run.out
    assert "[2] assistant: echo: hello there" in run.out
    assert "assistant> echo: and again" in run.out
    assert (await status_of(handle)).turn == 3


async def test_chat_reports_a_rejected_message_and_goes_on(daemon: Daemon, tmp_path: Path) -> None:
    """An update the workflow rejects is printed as the workflow's reason; the REPL continues."""
    conversation_id = uuid.uuid4().hex[:12]
    await daemon.start(conversation_id, max_message_chars=20)
    script = "x" * 30 + "\nshort one\n/end finished here\nnever sent\n"
    run = await daemonflow(daemon.env(), tmp_path, "chat", "--conversation", conversation_id, stdin=script)
    assert run.code == 0, run.err
    assert "error: message is 30 characters; the limit is 20" in run.err
    assert "assistant> echo: short one" in run.out
    assert f"conversation {conversation_id} ended" in run.out
    result = await daemon.client.get_workflow_handle(f"conversation-{conversation_id}").result()
    assert ConversationSummary.model_validate(result).ended_reason == "finished here"
    assert "never sent" not in run.out + run.err


async def test_operator_commands_on_a_workflow_started_elsewhere(daemon: Daemon, tmp_path: Path) -> None:
    """A workflow started by the plain `temporal` CLI may have any id; the commands find it as is."""
    workflow_id = f"ops-{uuid.uuid4().hex[:8]}"
    handle = await daemon.client.start_workflow(
        ConversationWorkflow.run, ConversationInput(), id=workflow_id, task_queue=daemon.task_queue
    )
    await daemon.send(handle, "first question")

    def cli(*args: str):
        return daemonflow(daemon.env(), tmp_path, *args)

    run = await cli("pause", workflow_id, "--reason", "checking")
    assert (run.code, run.out.strip()) == (0, f"paused conversation {workflow_id}"), run.err
    run = await cli("status", workflow_id)
    assert run.code == 0, run.err
    assert "state         paused (checking)" in run.out
    assert "turns         1 · 0 queued" in run.out

    run = await cli("resume", workflow_id)
    assert run.code == 0, run.err
    raw = json.loads((await cli("status", workflow_id, "--json")).out)
    assert (raw["paused"], raw["state"], raw["conversation_id"]) == (False, "idle", workflow_id)

    run = await cli("inject", workflow_id, "queued note", "--role", "user", "--priority", "queue")
    assert run.code == 0, run.err
    for _ in range(100):  # a queued injection is answered as a turn of its own
        if any(m.content == "echo: queued note" for m in await history_of(handle)):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(await history_of(handle))

    run = await cli("history", workflow_id, "--limit", "2")
    assert run.code == 0, run.err
    assert run.out.splitlines() == ["[3] user: queued note", "[4] assistant: echo: queued note"]

    run = await cli("end", workflow_id, "--reason", "all done")
    assert run.code == 0, run.err
    summary = ConversationSummary.model_validate(await handle.result())
    assert (summary.ended_reason, summary.turns) == ("all done", 2)


async def test_clear_errors(daemon: Daemon, tmp_path: Path) -> None:
    unreachable = {**daemon.env(), "DAEMONFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    unknown_agent, unknown_conversation, no_server, bad_limit = await asyncio.gather(
        daemonflow(daemon.env(), tmp_path, "chat", "--agent", "wizard"),
        daemonflow(daemon.env(), tmp_path, "status", "no-such-conversation"),
        daemonflow(unreachable, tmp_path, "pause", "whatever"),
        daemonflow(daemon.env(), tmp_path, "history", "x", "--limit", "0"),
    )
    assert unknown_agent.code == 2
    assert "unknown agent template 'wizard'" in unknown_agent.err
    assert "known templates: analyst, assistant, developer, moderator" in unknown_agent.err

    assert unknown_conversation.code == 1
    assert "no conversation 'no-such-conversation'" in unknown_conversation.err
    assert "Traceback" not in unknown_conversation.err

    assert no_server.code == 1
    assert "is `daemonflow dev` running?" in no_server.err
    assert unreachable["DAEMONFLOW_TEMPORAL_ADDRESS"] in no_server.err

    assert bad_limit.code == 2
    assert "must be between 1 and 200" in bad_limit.err


async def test_history_shows_at_once_what_the_model_has_not_seen(daemon: Daemon, tmp_path: Path) -> None:
    """An injected note is listed as ``[pending]`` right away, before any turn writes it."""
    handle = await daemon.start()
    await daemon.send(handle, "hello")
    conversation_id = handle.id.removeprefix("conversation-")
    injected = await daemonflow(daemon.env(), tmp_path, "inject", conversation_id, "answer in French", "--role", "system")
    assert injected.code == 0, injected.err
    run = await daemonflow(daemon.env(), tmp_path, "history", conversation_id, "--limit", "3")
    assert run.code == 0, run.err
    assert run.out.splitlines() == ["[1] user: hello", "[2] assistant: echo: hello", "[pending] system: answer in French"]
