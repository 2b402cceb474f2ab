"""``create_plan``: an agent's plan, asked of a person first, run, and its results handed back to
the agent; bad plans refused with what is wrong; plans nesting no deeper than one level."""

from __future__ import annotations

import asyncio
import hashlib

from control.conversations import Conversations
from control.errors import ControlError
from models.conversation import Approve
from models.plan import task_conversation_id
from tests.fakes.ollama import Reply, ToolCall
from tests.plan_support import TaskModel, plan_input, plans_of, task
from tests.fixtures.temporal import daemon_settings, running_daemon
from tests.test_conversation import wait_for


def create_plan(*tasks: dict, **fields) -> Reply:
    return Reply(tool_calls=[ToolCall(name="create_plan", arguments={"tasks": list(tasks), **fields})])


async def approve_next(daemon, conversation_id: str) -> str:
    """Waits for the conversation's pending call, checks it is ``create_plan``, approves it; its id."""
    conversation = await wait_for(lambda: _found(daemon, conversation_id), timeout=30)
    status = await wait_for(lambda: _pending(conversation), timeout=30)
    pending = status.pending_approvals[0]
    assert pending.tool == "create_plan" and pending.rule == "ask-create-plan"
    await conversation.decide(Approve(tool_call_id=pending.tool_call_id, decision="approve", approver="test"))
    return pending.tool_call_id


async def _found(daemon, conversation_id):
    try:
        return await Conversations(daemon.client, daemon.task_queue).find(conversation_id)
    except Exception:
        return None


async def _pending(conversation):
    status = await conversation.status()
    return status if status.pending_approvals else None


def plan_id_of(conversation_id: str, tool_call_id: str) -> str:
    return "c" + hashlib.sha256(f"{conversation_id}/{tool_call_id}".encode()).hexdigest()[:16]


def tool_messages(daemon, conversation_id: str) -> list[str]:
    return [m.content for m in daemon.store.list_messages(conversation_id) if m.role == "tool"]


async def test_an_agent_plans_after_approval_and_reads_every_result(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    fake_ollama.script(create_plan({"id": "a", "prompt": "find the bug"},
                                   {"id": "b", "prompt": "fix it", "depends_on": ["a"], "priority": "high"},
                                   title="fix the login bug"))  # fmt: skip
    handle = await daemon.start(agent="developer")
    cid = handle.id.removeprefix("conversation-")
    turn = asyncio.create_task(daemon.send(handle, "plan the fix"))
    call_id = await approve_next(daemon, cid)
    result = await asyncio.wait_for(turn, timeout=60)

    plan = plans_of(daemon).get(plan_id_of(cid, call_id))
    progress = await plan.progress()
    assert progress.depth == 0 and progress.title == "fix the login bug" and progress.state == "succeeded"
    assert model.asked[:2] == ["a", "b"]
    (output,) = tool_messages(daemon, cid)
    assert f"plan {plan.id} succeeded: 2 succeeded" in output
    assert "- a (succeeded): result of a" in output and "- b (succeeded): result of b" in output
    assert result.reply.startswith("done: ") and "result of b" in result.reply


async def test_the_plan_is_bound_by_the_rules_of_the_conversation_that_asked_for_it(daemon, fake_ollama):
    """A person's stricter rules on a conversation bind the plan its agent creates: its tasks'
    conversations get them (and never the conversation's "approve always" rules)."""
    TaskModel(fake_ollama)
    fake_ollama.script(create_plan({"id": "a", "prompt": "find the bug"}))
    deny = {"id": "no-shell-here", "decision": "deny", "tools": ["run_command"], "description": "not in this conversation"}
    handle = await daemon.start(agent="developer", policy=[deny], user_id="bob", approval_timeout_s=120)
    cid = handle.id.removeprefix("conversation-")
    turn = asyncio.create_task(daemon.send(handle, "plan the fix"))
    call_id = await approve_next(daemon, cid)
    await asyncio.wait_for(turn, timeout=60)
    progress = await plans_of(daemon).get(plan_id_of(cid, call_id)).progress()
    assert progress.settings is not None
    assert (progress.settings.policy, progress.settings.user_id, progress.settings.approval_timeout_s) == ([deny], "bob", 120)
    task_conversation = await Conversations(daemon.client, daemon.task_queue).find(task_conversation_id(progress.plan_id, "a"))
    assert (await task_conversation.delegated_settings()).policy == [deny]


async def test_a_bad_plan_is_refused_with_what_is_wrong(daemon, fake_ollama):
    TaskModel(fake_ollama)
    fake_ollama.script(create_plan({"id": "a", "prompt": "x", "depends_on": ["b"]}, {"id": "b", "prompt": "y", "depends_on": ["a"]}),
                       create_plan({"id": "a", "prompt": "x", "agent": "nobody"}))  # fmt: skip
    handle = await daemon.start(agent="developer")
    cid = handle.id.removeprefix("conversation-")
    turn = asyncio.create_task(daemon.send(handle, "plan badly"))
    first = await approve_next(daemon, cid)
    await approve_next(daemon, cid)
    await asyncio.wait_for(turn, timeout=60)
    cycle, agent = tool_messages(daemon, cid)
    assert "invalid plan: dependency cycle: a → b → a" in cycle
    assert "unknown agent template 'nobody'" in agent
    assert plan_id_of(cid, first) not in [item.plan_id for item in (await plans_of(daemon).list(None, 50))[0]]


async def test_a_plans_task_may_plan_once_but_not_deeper(daemon, fake_ollama):
    model = TaskModel(fake_ollama)
    model.script("t", create_plan({"id": "u", "prompt": "go deeper", "agent": "developer"}))
    model.script("u", create_plan({"id": "v", "prompt": "deeper still"}))
    top = plan_input(task("t", agent="developer"))
    plan = await plans_of(daemon).start(top)
    t_conversation = task_conversation_id(top.plan_id, "t")
    call = await approve_next(daemon, t_conversation)
    sub = plans_of(daemon).get(plan_id_of(t_conversation, call))
    await approve_next(daemon, task_conversation_id(sub.id, "u"))
    summary = await asyncio.wait_for(plan.result(), timeout=60)

    assert summary.state == "succeeded" and (await sub.progress()).depth == 1
    (refusal,) = tool_messages(daemon, task_conversation_id(sub.id, "u"))
    assert "refused: this conversation is a task of a plan 1 level(s) deep" in refusal
    assert "v" not in model.asked
    (sub_summary,) = tool_messages(daemon, t_conversation)
    assert f"plan {sub.id} succeeded" in sub_summary and "- u (succeeded): result of u" in sub_summary


async def test_a_sub_plan_inherits_its_parents_settings_and_ends_with_it(daemon, fake_ollama):
    """What a person set on a plan binds the plans its tasks create; ending the plan ends them."""
    model = TaskModel(fake_ollama)
    model.script("t", create_plan({"id": "u", "prompt": "take your time", "agent": "developer"}))
    model.script("u", Reply(content="result of u", delay_s=30))
    rule = {"id": "ask-everything", "decision": "ask", "tools": ["*"], "description": "this plan asks for everything"}
    top = plan_input(task("t", agent="developer"), user_id="alice", policy=[rule], auto_accept=False)
    plan = await plans_of(daemon).start(top)
    t_conversation = task_conversation_id(top.plan_id, "t")
    call = await approve_next(daemon, t_conversation)
    sub = plans_of(daemon).get(plan_id_of(t_conversation, call))
    running = await wait_for(lambda: _running(sub, "u"), timeout=30)
    assert running.settings is not None and running.settings.model_dump(exclude={"max_parallel", "on_failure"}) == \
        top.settings.model_dump(exclude={"max_parallel", "on_failure"})  # fmt: skip

    await plan.end("the person changed their mind")
    assert (await asyncio.wait_for(plan.result(), timeout=60)).state == "ended"
    ended = await asyncio.wait_for(sub.result(), timeout=60)
    assert ended.state == "ended"
    assert ended.ended_reason == f"its parent plan {plan.id} stopped: the person changed their mind"


async def _running(plan, task_id: str):
    try:
        progress = await plan.progress()
    except ControlError:  # not started yet
        return None
    return progress if any(t.spec.id == task_id and t.state == "running" for t in progress.tasks) else None


async def test_a_plan_slower_than_the_wait_answers_with_its_id_and_goes_on(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    settings = daemon_settings(tmp_path, temporal_address, fake_ollama.url, plan_tool_wait_s=1)
    async with running_daemon(temporal_env.client, settings) as daemon:
        model = TaskModel(fake_ollama)
        model.script("slow", Reply(content="result of slow", delay_s=4))
        fake_ollama.script(create_plan({"id": "slow", "prompt": "take your time"}))
        handle = await daemon.start(agent="developer")
        cid = handle.id.removeprefix("conversation-")
        turn = asyncio.create_task(daemon.send(handle, "plan something slow"))
        call_id = await approve_next(daemon, cid)
        await asyncio.wait_for(turn, timeout=60)
        plan = plans_of(daemon).get(plan_id_of(cid, call_id))
        (note,) = tool_messages(daemon, cid)
        assert f"plan {plan.id} is still running after 1 s: 0/1 done · running: slow" in note
        assert (await asyncio.wait_for(plan.result(), timeout=60)).tasks[0].result == "result of slow"
