"""Replay: a change to the workflow code must not break conversations that are already running.

``tests/histories/*.json`` are histories recorded from earlier versions of the code; replaying them
with today's ``ConversationWorkflow`` fails on any non-deterministic change. Re-record them (only
when a change is meant to be incompatible and is versioned) with
``DAEMONFLOW_RECORD_HISTORIES=1 pytest tests/test_replay.py``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from control.channels import Channels
from control.conversations import Conversations
from models.channel import ChannelNote, ChannelState, Post, PostResult
from models.conversation import Approve, End, Inject, Pause
from models.private_messages import MessageState, ProvideInput, dm_conversation_id, message_workflow_id
from tests.channel_support import CODING, DATA, open_channel, team_answers
from tests.fakes.ollama import Reply, ToolCall, by_system_prompt
from tests.message_support import ASSISTANT, DEVELOPER, FIX, agents_answer, messages_of, replies
from tests.message_support import CODING as MESSAGE_CODING
from tests.test_conversation import _memory_stored, wait_for
from workflows.channel import ChannelWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.private_message import PrivateMessageWorkflow
from workflows.queue_bound import MAX_QUEUED_MESSAGES
from models.plan import AddTasks, Priority
from tests.plan_support import TaskModel, plan_input, plans_of, task
from workflows.plan import TaskPlanWorkflow
from models.memory import MemoryAdminRequest
from models.relevance_calculation import CalculationRequest
from workers.main import WORKFLOWS
from workers.workflow_runner import LeanSandboxRunner
from workers.schedules import cleanup_input, monitoring_input, optimisation_review_input, pattern_analysis_input
from workflows.cache_cleanup import CacheCleanupWorkflow
from workflows.memory_admin import MemoryAdminWorkflow
from workflows.monitoring import MonitoringWorkflow
from workflows.optimisation_review import OptimisationReviewWorkflow
from workflows.pattern_analysis import PatternAnalysisWorkflow
from workflows.relevance_calculation import RelevanceCalculationWorkflow

HISTORIES = Path(__file__).parent / "histories"
RECORD = os.environ.get("DAEMONFLOW_RECORD_HISTORIES") == "1"


def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter,  # every workflow a worker runs
                    workflow_runner=LeanSandboxRunner())  # in the sandbox a worker runs them in


async def turns_with_tools_and_injection(daemon, fake) -> list[WorkflowHandle]:
    fake.script(Reply(tool_calls=[ToolCall(name="imaginary", arguments={"x": 1})]), Reply(content="ok"))
    handle = await daemon.start(agent="developer")
    await daemon.send(handle, "first")
    await handle.signal(ConversationWorkflow.inject, Inject(content="be brief", role="system"))
    await daemon.send(handle, "second")
    return [handle]


async def pause_queue_resume_end(daemon, fake) -> list[WorkflowHandle]:
    handle = await daemon.start(initial_message="hello")
    await wait_for(lambda: _turns(handle, 1))
    await handle.signal(ConversationWorkflow.pause, Pause(reason="wait"))
    waiting = asyncio.create_task(daemon.send(handle, "while paused"))
    await handle.signal(ConversationWorkflow.inject, Inject(content="queued", priority="queue"))
    await wait_for(lambda: _queued(handle, 2))
    await handle.signal(ConversationWorkflow.resume)
    await waiting
    await wait_for(lambda: _turns(handle, 3))
    await handle.signal(ConversationWorkflow.end, End(reason="recorded"))
    await handle.result()
    return [handle]


async def continue_as_new(daemon, fake) -> list[WorkflowHandle]:
    handle = await daemon.start(turns_per_run=1)
    first_run = (await handle.describe()).run_id
    await daemon.send(handle, "one")
    latest = daemon.client.get_workflow_handle(handle.id)
    await wait_for(lambda: _different_run(latest, first_run))
    second_run = (await latest.describe()).run_id
    await daemon.send(latest, "two")
    second = daemon.client.get_workflow_handle(handle.id, run_id=second_run)
    await wait_for(lambda: _different_run(latest, second_run))
    return [daemon.client.get_workflow_handle(handle.id, run_id=first_run), second]


async def model_failures(daemon, fake) -> list[WorkflowHandle]:
    handle = await daemon.start()
    fake.down()
    turn = asyncio.create_task(daemon.send(handle, "retry me"))
    await wait_for(lambda: _last_error(handle), timeout=30)
    fake.up()
    await turn
    bad = await daemon.start(model="missing-model")
    with pytest.raises(Exception):
        await daemon.send(bad, "fails")
    return [handle, bad]


async def unknown_agent(daemon, fake) -> list[WorkflowHandle]:
    handle = await daemon.start(agent="does-not-exist")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    return [handle]


async def tools_and_approvals(daemon, fake) -> list[WorkflowHandle]:
    """Allowed, approved, edited, denied-by-policy and invalid calls in one turn, then continue-as-new."""
    def call(name, **arguments):
        return ToolCall(name=name, arguments=arguments)

    fake.script(
        Reply(tool_calls=[call("write_file", path="a.txt", content="hi"), call("run_command", command="echo ok")]),
        Reply(tool_calls=[call("run_command", command="rm -rf /"), call("read_file")]),
        Reply(tool_calls=[call("run_command", command="echo original")]),
        Reply(content="done"),
    )
    handle = await daemon.start(agent="developer", turns_per_run=1)
    first_run = (await handle.describe()).run_id
    turn = asyncio.create_task(daemon.send(handle, "work"))
    for decision in (Approve(tool_call_id="2-1", decision="approve", approver="replay"),
                     Approve(tool_call_id="8-0", decision="edit", arguments={"command": "echo edited"})):
        await wait_for(lambda: _pending(handle, decision.tool_call_id))
        await handle.signal(ConversationWorkflow.approve, decision)
    await turn
    return [daemon.client.get_workflow_handle(handle.id, run_id=first_run)]


async def memory(daemon, fake) -> list[WorkflowHandle]:
    """Recall before each turn, a memory tool, extraction after each turn, then continue-as-new."""
    fake.script(Reply(tool_calls=[ToolCall(name="memory_store", arguments={"text": "The user likes tea."})]),
                Reply(content="noted"))
    fake.script_structured('{"memories": [{"text": "The user drinks tea every morning.", "kind": "semantic"}]}')
    handle = await daemon.start(user_id="replay", turns_per_run=2)
    first_run = (await handle.describe()).run_id
    await daemon.send(handle, "I like tea")
    await daemon.send(handle, "what do I drink?")
    await wait_for(lambda: _different_run(handle, first_run))
    return [daemon.client.get_workflow_handle(handle.id, run_id=first_run)]


async def extraction_backlog_across_runs(daemon, fake) -> list[WorkflowHandle]:
    """Continue-as-new hands the turns not yet read for memories to the next run (``CARRY_PATCH``),
    which reads them with its own before it ends."""
    fake.script_structured('{"memories": [{"text": "The user drinks tea.", "kind": "semantic"}]}')
    handle = await daemon.start(user_id="replay", turns_per_run=2, memory_extraction_every=5, memory_extraction_delay_s=3600)
    first_run = (await handle.describe()).run_id
    for text in ("I like tea", "I drink it every morning", "what do I drink?"):
        await daemon.send(handle, text)
    latest = daemon.client.get_workflow_handle(handle.id)
    await latest.signal(ConversationWorkflow.end, End(reason="recorded"))
    await latest.result()
    return [daemon.client.get_workflow_handle(handle.id, run_id=first_run), latest]


async def local_model_steps(daemon, fake) -> list[WorkflowHandle]:
    """A quick model: the first step an activity, the next ones local (``workflows/model_step.py``),
    a tool call between two local steps, then the end."""
    fake.script(Reply(content="first"), Reply(tool_calls=[ToolCall(name="imaginary", arguments={})]), Reply(content="ok"))
    handle = await daemon.start(memory_extraction_every=100, memory_extraction_delay_s=3600)
    await daemon.send(handle, "one")
    await daemon.send(handle, "two")
    await handle.signal(ConversationWorkflow.end, End(reason="recorded"))
    await handle.result()
    return [handle]


async def queue_bound(daemon, fake) -> list[WorkflowHandle]:
    """A paused conversation whose queue is full: the 101st injection is refused (``QUEUE_PATCH``),
    then the end (``workflows/queue_bound.py``)."""
    handle = await daemon.start()
    await daemon.send(handle, "one")
    await handle.signal(ConversationWorkflow.pause, Pause(reason="filling up"))
    for i in range(MAX_QUEUED_MESSAGES + 1):
        await handle.signal(ConversationWorkflow.inject, Inject(content=f"note {i}", priority="queue"))
    await wait_for(lambda: _queued(handle, MAX_QUEUED_MESSAGES))
    await handle.signal(ConversationWorkflow.end, End(reason="recorded"))
    await handle.result()
    return [handle]


async def payloads_and_final_answer(daemon, fake) -> list[WorkflowHandle]:
    """A write too long for history (a marker), its read back (the output by reference), a command with
    its own budget (the child's timeouts), and final_answer ending the turn."""
    big = "payload line\n" * 4_000
    fake.script(
        Reply(tool_calls=[ToolCall(name="write_file", arguments={"path": "big.txt", "content": big})]),
        Reply(tool_calls=[ToolCall(name="read_file", arguments={"path": "big.txt"}),
                          ToolCall(name="run_command", arguments={"command": "echo hi", "timeout_s": 5})]),
        Reply(tool_calls=[ToolCall(name="final_answer", arguments={"answer": "written and read"})]),
    )
    allow = [{"id": "allow-echo", "decision": "allow", "tools": ["run_command"], "command": ["echo *"]}]
    handle = await daemon.start(agent="developer", policy=allow)
    await daemon.send(handle, "write and read")
    return [handle]


async def one_trip_turns(daemon, fake) -> list[WorkflowHandle]:
    """Turns of one round trip per model step (``TURN_PATCH``): recall and the turn's writes done by
    ``llm.chat``, the template by digest, an allowed and an approved call run as activities of the
    conversation, audit rows and tool messages carried by the next model call or written before the
    approval wait and after final_answer, extraction in the background (two turns, then a quiet
    moment), then the end."""
    fake.script(
        Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "echo one"})]),
        Reply(content="ran it"),
        Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "ls"})]),
        Reply(tool_calls=[ToolCall(name="final_answer", arguments={"answer": "listed"})]),
        Reply(content="third"),
    )
    fake.script_structured('{"memories": [{"text": "The user runs echo one.", "kind": "semantic"}]}')
    allow = [{"id": "allow-echo", "decision": "allow", "tools": ["run_command"], "command": ["echo *"]}]
    handle = await daemon.start(agent="developer", policy=allow, user_id="replay", memory_extraction_every=2,
                                memory_extraction_delay_s=0.5)
    await daemon.send(handle, "run echo")
    turn = asyncio.create_task(daemon.send(handle, "list the files"))
    await wait_for(lambda: _pending(handle, "6-0"))
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id="6-0", decision="approve", approver="replay"))
    assert (await turn).reply == "listed"
    await wait_for(lambda: _memory_stored(handle, 2))
    await daemon.send(handle, "third")
    await wait_for(lambda: _memory_stored(handle, 3))
    await handle.signal(ConversationWorkflow.end, End(reason="recorded"))
    await handle.result()
    return [handle]


async def channel_chain_approval_and_end(daemon, fake) -> list[WorkflowHandle]:
    """A post whose agent waits for a person (denied), a chain two agents keep going until the reply
    budget, pause, resume, a note, an observed post, then the end of the channel and its agents."""
    asked = []

    def developer(request):
        asked.append(request)
        if len(asked) == 1:
            return Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "pytest -x"})])
        return "@analyst please check these numbers."

    team_answers(fake, developer=developer, analyst="@developer please check the code first.")
    channel = await open_channel(daemon, agents=["developer", "analyst"], budgets={"replies_per_post": 3},
                                 relevance={"thresholds": {"intervene": 0.95, "high_priority": 0.97}})
    waiting = await channel.post(Post(author="alice", content=f"@developer {CODING}"), wait_s=None)
    conversation = await Conversations(daemon.client, daemon.task_queue).find(f"{channel.id}--developer")
    await conversation.decide(Approve(tool_call_id=waiting.waiting[0].waiting[0].tool_call_id, decision="deny"))
    await wait_for(lambda: _channel_state(channel, lambda s: s.state != ChannelState.AWAITING_APPROVAL))
    assert isinstance(await channel.follow(waiting.post_id, wait_s=None), PostResult)
    await channel.pause("recorded")
    await channel.inject(ChannelNote(content="keep it short"))
    await channel.resume()
    assert isinstance(await channel.post(Post(author="bob", content=DATA), wait_s=None), PostResult)
    await channel.end("recorded")
    handle = daemon.client.get_workflow_handle(channel.workflow_id)
    await handle.result()
    member = daemon.client.get_workflow_handle(conversation.workflow_id)
    await member.result()
    return [handle, member]


async def channel_continue_as_new(daemon, fake) -> list[WorkflowHandle]:
    team_answers(fake)
    channel = await open_channel(daemon, posts_per_run=1)
    handle = daemon.client.get_workflow_handle(channel.workflow_id)
    first_run = (await handle.describe()).run_id
    assert isinstance(await channel.post(Post(author="alice", content=CODING), wait_s=None), PostResult)
    await wait_for(lambda: _different_run(handle, first_run))
    return [daemon.client.get_workflow_handle(channel.workflow_id, run_id=first_run)]


async def private_messages(daemon, fake) -> list[WorkflowHandle]:
    """A person's message with an input-required round trip, then the assistant's tool sending a
    wait-for-reply message (approved) to the developer; the conversations end."""
    agents_answer(fake, **{DEVELOPER: replies("NEED INPUT: which test?", FIX, FIX)})
    fake.responder = by_system_prompt({DEVELOPER: fake.responder, ASSISTANT: _assistant_delegating})
    messages = messages_of(daemon)
    asked = await messages.send(messages.request("alice", "developer", MESSAGE_CODING, message_id=f"r{uuid.uuid4().hex[:8]}"))
    await wait_for(lambda: _message_state(messages, asked.message_id, MessageState.INPUT_REQUIRED), timeout=30)
    await messages.provide_input(asked.message_id, ProvideInput(content="tests/test_api.py"))
    assert (await asyncio.wait_for(messages.result(asked.message_id), 120)).state == MessageState.COMPLETED
    handle = await daemon.start(agent="assistant")
    turn = asyncio.create_task(daemon.send(handle, "ask the developer"))
    pending = await wait_for(lambda: _first_pending(handle), timeout=30)
    await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending, decision="approve", approver="replay"))
    await asyncio.wait_for(turn, 120)
    [sent] = (await messages.page("assistant", 5, None)).items
    dm = daemon.client.get_workflow_handle(f"conversation-{dm_conversation_id('developer')}")
    for conversation in (handle, dm):
        await conversation.signal(ConversationWorkflow.end, End(reason="recorded"))
        await asyncio.wait_for(conversation.result(), 120)
    message = daemon.client.get_workflow_handle(message_workflow_id(asked.message_id))
    return [handle, message, daemon.client.get_workflow_handle(message_workflow_id(sent.message_id)), dm]


def _assistant_delegating(body):
    if any(m.get("role") == "tool" for m in body.get("messages") or []):
        return Reply(content="the developer answered")
    return Reply(tool_calls=[ToolCall(name="send_private_message",
                                      arguments={"to": "developer", "content": MESSAGE_CODING, "wait": True})])


async def agent_answers_a_question(daemon, fake) -> list[WorkflowHandle]:
    """The assistant's waiting message is asked a question (input required), the assistant answers
    it with ``answer_private_message`` (both calls approved); the message is admitted atomically
    (``messages.admit``) and completes; the conversations end."""
    agents_answer(fake, **{DEVELOPER: replies("NEED INPUT: which test?", FIX)})
    fake.responder = by_system_prompt({DEVELOPER: fake.responder, ASSISTANT: _assistant_answering})
    handle = await daemon.start(agent="assistant")
    turn = asyncio.create_task(daemon.send(handle, "ask the developer"))
    for _ in range(2):  # send, then answer
        pending = await wait_for(lambda: _first_pending(handle), timeout=30)
        await handle.signal(ConversationWorkflow.approve, Approve(tool_call_id=pending, decision="approve", approver="replay"))
        await wait_for(lambda: _not_pending(handle, pending), timeout=30)
    await asyncio.wait_for(turn, 120)
    [sent] = (await messages_of(daemon).page("assistant", 5, None)).items
    assert sent.state == MessageState.COMPLETED and sent.input_rounds == 1
    dm = daemon.client.get_workflow_handle(f"conversation-{dm_conversation_id('developer')}")
    for conversation in (handle, dm):
        await conversation.signal(ConversationWorkflow.end, End(reason="recorded"))
        await asyncio.wait_for(conversation.result(), 120)
    return [handle, daemon.client.get_workflow_handle(message_workflow_id(sent.message_id))]


def _assistant_answering(body):
    tools = [m.get("content") or "" for m in body.get("messages") or [] if m.get("role") == "tool"]
    if not tools:
        return _assistant_delegating(body)
    if len(tools) == 1:
        message_id = tools[0].split("message_id ")[1].split(";")[0]
        return Reply(tool_calls=[ToolCall(name="answer_private_message",
                                          arguments={"message_id": message_id, "content": "tests/test_api.py", "wait": True})])
    return Reply(content="the developer answered")


async def _not_pending(handle, tool_call_id):
    status = await handle.query(ConversationWorkflow.status)
    return all(p.tool_call_id != tool_call_id for p in status.pending_approvals)


async def _message_state(messages, message_id, state):
    return (await messages.status(message_id)).state == state


async def _first_pending(handle):
    status = await handle.query(ConversationWorkflow.status)
    return status.pending_approvals[0].tool_call_id if status.pending_approvals else None


async def archive_and_revive(daemon, fake) -> list[WorkflowHandle]:
    """A conversation archived after inactivity (``ARCHIVE_PATCH``; the extraction backlog first), then
    revived by a message through the control client: the archived run, then the reviving run ended."""
    fake.script_structured('{"memories": [{"text": "The user is called Ada.", "kind": "semantic"}]}')
    handle = await daemon.start(archive_after_s=1, user_id="replay")
    await daemon.send(handle, "my name is Ada")
    archived = await wait_for(lambda: _closed_run(handle), timeout=30)
    conversation = await Conversations(daemon.client, daemon.task_queue).find(handle.id)
    await conversation.send("who am I?", wait_s=30)
    await conversation.end("recorded")
    latest = daemon.client.get_workflow_handle(handle.id)
    await latest.result()
    return [daemon.client.get_workflow_handle(handle.id, run_id=archived), latest]


async def channel_archive_and_revive(daemon, fake) -> list[WorkflowHandle]:
    """A channel and its agents' conversations archived after inactivity; a post revives the channel,
    which revives the agent it asks."""
    team_answers(fake)
    channel = await open_channel(daemon, archive_after_s=1)
    assert isinstance(await channel.post(Post(author="alice", content=CODING), wait_s=None), PostResult)
    handle = daemon.client.get_workflow_handle(channel.workflow_id)
    archived = await wait_for(lambda: _closed_run(handle), timeout=30)
    member = daemon.client.get_workflow_handle(f"conversation-{channel.id}--developer")
    member_archived = await wait_for(lambda: _closed_run(member), timeout=30)
    found = await Channels(daemon.client, daemon.task_queue).find(channel.id)
    assert isinstance(await found.post(Post(author="alice", content=CODING), wait_s=None), PostResult)
    return [daemon.client.get_workflow_handle(channel.workflow_id, run_id=archived),
            daemon.client.get_workflow_handle(member.id, run_id=member_archived), handle]


async def _closed_run(handle) -> str | None:
    described = await handle.describe()
    return described.run_id if described.status != WorkflowExecutionStatus.RUNNING else None


async def _channel_state(channel, check):
    return check(await channel.status())


# --- task plans (issue 15) ---------------------------------------------------------------------


async def plan_dag_retry_and_continue_as_new(daemon, fake) -> list[WorkflowHandle]:
    """A diamond whose middle task fails once and is retried, continuing as new after 3 attempts."""
    model = TaskModel(fake)
    model.script("c", Reply(error="refused once", status=400))
    request = plan_input(task("a"), task("b", "a"), task("c", "a", retry={"initial_interval_s": 0.1}),
                         task("d", "b", "c"), tasks_per_run=3)  # fmt: skip
    plan = await plans_of(daemon).start(request)
    handle = daemon.client.get_workflow_handle(plan.workflow_id)
    first_run = (await handle.describe()).run_id
    assert (await plan.result()).state == "succeeded"
    return [daemon.client.get_workflow_handle(plan.workflow_id, run_id=first_run), handle]


async def plan_steering(daemon, fake) -> list[WorkflowHandle]:
    """Pause, a task added, one reprioritised, one cancelled, resume, then the end of the plan."""
    model = TaskModel(fake)
    model.script("a", Reply(content="result of a", delay_s=1.0))
    plan = await plans_of(daemon).start(plan_input(task("a"), task("b"), task("c", priority="low"), max_parallel=1))
    await wait_for(lambda: _plan_task(plan, "a", "running"))
    await plan.pause("recorded")
    await plan.add_tasks(AddTasks(tasks=[task("e", "a")]))
    await plan.reprioritise("c", Priority.HIGH)
    await plan.cancel_task("b", "recorded")
    await plan.resume()
    await wait_for(lambda: _plan_task(plan, "c", "succeeded"))
    await plan.end("recorded")
    await plan.result()
    return [daemon.client.get_workflow_handle(plan.workflow_id)]


async def _plan_task(plan, task_id, state):
    return any(t.spec.id == task_id and t.state == state for t in (await plan.progress()).tasks)


async def scheduled_jobs(daemon, fake) -> list[WorkflowHandle]:
    """The four scheduled workflows, each started as its schedule starts it (same input), over a
    conversation's records: the health round, the cache cleanup, pattern analysis, the optimisation
    review."""
    await daemon.send(await daemon.start(), "something to analyse")
    settings, handles = daemon.settings, []
    for run, arg in ((MonitoringWorkflow.run, monitoring_input(settings)), (CacheCleanupWorkflow.run, cleanup_input(settings)),
                     (PatternAnalysisWorkflow.run, pattern_analysis_input(settings)),
                     (OptimisationReviewWorkflow.run, optimisation_review_input(settings))):  # fmt: skip
        handle = await daemon.client.start_workflow(run, arg, id=f"replay-{uuid.uuid4().hex[:8]}", task_queue=daemon.task_queue)
        await handle.result()
        handles.append(handle)
    return handles


async def memory_admin_and_relevance_calculation(daemon, fake) -> list[WorkflowHandle]:
    """``daemonflow memory list`` through the worker (``MemoryAdminWorkflow``) and a hypothetical
    message scored (``RelevanceCalculationWorkflow``, ``POST /relevance/calculate``)."""
    admin = await daemon.client.start_workflow(
        MemoryAdminWorkflow.run, args=[MemoryAdminRequest(action="list"), None], id=f"replay-{uuid.uuid4().hex[:8]}",
        task_queue=daemon.task_queue)  # fmt: skip
    await admin.result()
    request = CalculationRequest(content="How do I debug my pytest tests?", agents=["developer", "analyst"])
    scored = await daemon.client.start_workflow(
        RelevanceCalculationWorkflow.run, args=[request, None], id=f"replay-{uuid.uuid4().hex[:8]}",
        task_queue=daemon.task_queue)  # fmt: skip
    await scored.result()
    return [admin, scored]


SCENARIOS = [
    turns_with_tools_and_injection, pause_queue_resume_end, continue_as_new, model_failures, unknown_agent,
    tools_and_approvals, memory, extraction_backlog_across_runs, local_model_steps, queue_bound,
    payloads_and_final_answer, one_trip_turns, channel_chain_approval_and_end,
    channel_continue_as_new, private_messages, agent_answers_a_question, archive_and_revive, channel_archive_and_revive,
    plan_dag_retry_and_continue_as_new, plan_steering,  # task plans (issue 15)
    scheduled_jobs, memory_admin_and_relevance_calculation,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_todays_histories_replay(daemon, fake_ollama, scenario):
    """Every scenario runs live and its history replays; with RECORD set it is also saved."""
    handles = await scenario(daemon, fake_ollama)
    for index, handle in enumerate(handles):
        history = await handle.fetch_history()
        await replayer().replay_workflow(history)
        if RECORD:
            HISTORIES.mkdir(exist_ok=True)
            (HISTORIES / f"{scenario.__name__}-{index}.json").write_text(history.to_json())


def test_recorded_histories_exist():
    assert len(list(HISTORIES.glob("*.json"))) >= len(SCENARIOS)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.stem)
async def test_recorded_history_replays_with_todays_code(path: Path):
    from temporalio.client import WorkflowHistory

    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer().replay_workflow(history)


async def _queued(handle, n):
    return (await handle.query(ConversationWorkflow.status)).queued == n


async def _turns(handle, n):
    status = await handle.query(ConversationWorkflow.status)
    return status.turn == n and status.state == "idle"


async def _different_run(handle, run_id):
    description = await handle.describe()
    return description.run_id != run_id


async def _last_error(handle):
    return (await handle.query(ConversationWorkflow.status)).last_error


async def _pending(handle, tool_call_id):
    status = await handle.query(ConversationWorkflow.status)
    return any(p.tool_call_id == tool_call_id for p in status.pending_approvals)
