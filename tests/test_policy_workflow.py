"""Policy engine 2 inside the real workflow: exact "approve always", and older histories still replay.

Real Temporal dev server, real Docker sandboxes, the fake Ollama speaking Ollama's API.
"""

from __future__ import annotations

import asyncio

import pytest
from temporalio import workflow as temporal_workflow
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from config.policy import load_policy, parse_rules
from models.conversation import Approve
from models.policy import ActionType, Decision, ToolCallContext
from policy.engine import evaluate
from tests.fakes.ollama import Reply
from tests.test_approvals import command, pending_of, start_turn
from tests.test_conversation import wait_for
from workflows.conversation import POLICY_ENGINE_PATCH, ConversationWorkflow

pytestmark = pytest.mark.usefixtures("docker_client")
ECHO_OVERRIDE = [{"id": "allow-echo", "decision": "allow", "command": ["echo *"], "match": ["echo hi"]}]


async def test_approve_always_allows_the_same_line_only(daemon, fake_ollama):
    handle, turn = await start_turn(daemon, fake_ollama, command("cd /tmp && echo approved"))
    pending = await wait_for(lambda: pending_of(handle))
    await handle.signal(ConversationWorkflow.approve, Approve(
        tool_call_id=pending.tool_call_id, decision="approve_always", approver="erin"))
    await turn

    fake_ollama.script(command("cd  /tmp &&  echo 'approved'  # same line"), Reply(content="ran"))
    assert (await daemon.send(handle, "again")).tool_calls[0].decision == "allow"
    for variation in ("echo approved && cd /tmp", "cd /tmp; echo approved", "LANG=C cd /tmp && echo approved",
                      "cd /tmp && /bin/echo approved"):
        fake_ollama.script(command(variation), Reply(content="x"))
        asked = asyncio.create_task(daemon.send(handle, "a variation"))
        waiting = await wait_for(lambda: pending_of(handle))
        assert waiting.arguments == {"command": variation}
        await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=waiting.tool_call_id, decision="deny"))
        assert (await asked).tool_calls[0].decision == "deny"


async def test_a_history_judged_by_engine_1_replays_with_its_own_decisions(daemon, fake_ollama, monkeypatch):
    """Record a run as a worker without ``policy-engine-2`` would (engine 1 allows the assignment
    behind ``echo *``, engine 2 asks), then replay it with today's code: the patch marker is
    absent, so the frozen engine 1 judges again and the commands match."""
    call = ToolCallContext(tool="run_command", action_type=ActionType.TERMINAL_COMMAND,
                           arguments={"command": "LANG=C echo legacy"})
    assert evaluate(load_policy(), call, parse_rules(ECHO_OVERRIDE)).decision == Decision.ASK

    original = temporal_workflow.patched
    monkeypatch.setattr(temporal_workflow, "patched", lambda patch_id: patch_id != POLICY_ENGINE_PATCH
                        and original(patch_id))
    fake_ollama.script(command("LANG=C echo legacy"), Reply(content="done"))
    handle = await daemon.start(agent="developer", policy=ECHO_OVERRIDE)
    result = await daemon.send(handle, "run it")
    assert [(c.tool, c.decision) for c in result.tool_calls] == [("run_command", "allow")]
    history = await handle.fetch_history()
    monkeypatch.undo()

    replayer = Replayer(workflows=[ConversationWorkflow], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
    assert POLICY_ENGINE_PATCH not in history.to_json()
