"""The turn-request primitive on its own: a plain workflow asks a conversation for turns with the
``request_turn`` signal and hears back through its own signals — on the real dev server, a real
worker, and (for the crash) a real worker process killed mid-turn."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from control.conversations import Conversations
from models.conversation import Approve, ConversationState, End, Pause
from models.events import EventType
from models.turn_reports import REPLY_PREVIEW_CHARS, TurnOutcome
from models.turn_requests import ReplyAddress, TurnRequest
from store.payloads import PayloadStore
from tests.fakes.ollama import Reply, ToolCall
from tests.test_conversation import _status_if, wait_for
from tests.test_durability import WorkerProcess, _daemon_without_worker
from tests.turn_requester import RequesterPlan, RequesterResult, TurnRequester
from workflows.conversation import ConversationWorkflow


@pytest.fixture
async def requester_queue(daemon) -> AsyncIterator[str]:
    """A queue of its own for the requester: the daemon's worker does not know its workflow."""
    async for queue in _requester_worker(daemon):
        yield queue


async def _requester_worker(daemon) -> AsyncIterator[str]:
    queue = f"{daemon.task_queue}-requester"
    async with Worker(daemon.client, task_queue=queue, workflows=[TurnRequester]):
        yield queue


def _requester_id() -> str:
    return f"requester-{uuid.uuid4().hex[:8]}"


async def _ask(daemon, queue: str, conversation: WorkflowHandle, requester_id: str, *requests: TurnRequest,
               expect: int | None = None) -> WorkflowHandle:  # fmt: skip
    plan = RequesterPlan(conversation_workflow_id=conversation.id, requests=list(requests),
                         expect=len(requests) if expect is None else expect)  # fmt: skip
    return await daemon.client.start_workflow(TurnRequester.run, plan, id=requester_id, task_queue=queue)


def _request(request_id: str, requester_id: str, content: str = "", **fields) -> TurnRequest:
    address = ReplyAddress(workflow_id=requester_id, signal="turn_done", progress_signal="turn_progress")
    return TurnRequest(request_id=request_id, content=content, reply_to=address, **fields)


async def test_a_plain_workflow_gets_one_report_per_request_with_the_reply_in_the_store(
    daemon, fake_ollama, requester_queue
):
    fake_ollama.script("first answer", "x" * 2_000)
    conversation = await daemon.start()
    cid = conversation.id.removeprefix("conversation-")
    context = PayloadStore(daemon.store.engine).put(cid, "[#ops] alice: the build is red\n")
    requester_id = f"requester-{uuid.uuid4().hex[:8]}"
    plan = RequesterPlan(conversation_workflow_id=conversation.id, expect=2, requests=[
        _request("r-1", requester_id, "what now?", author="ops"),
        _request("r-1", requester_id, "a repeat of r-1: never answered"),
        _request("r-2", requester_id, "\nanswer briefly", content_ref=context.model_copy(update={"preview": ""})),
    ])  # fmt: skip
    result: RequesterResult = await daemon.client.execute_workflow(
        TurnRequester.run, plan, id=requester_id, task_queue=requester_queue
    )

    first, second = result.done
    assert (first.request_id, first.outcome, first.turn, first.reply) == ("r-1", TurnOutcome.ANSWERED, 1, "first answer")
    assert (second.request_id, second.outcome, second.turn) == ("r-2", TurnOutcome.ANSWERED, 2)
    assert second.reply == "x" * REPLY_PREVIEW_CHARS and second.reply_chars == 2_000
    assert first.usage.model_calls == 1 and first.error is None
    stored = daemon.store.list_messages(cid)
    assert [(m.seq, m.role, m.content) for m in stored] == [
        (1, "user", "what now?"), (2, "assistant", "first answer"),
        (3, "user", "[#ops] alice: the build is red\n\nanswer briefly"), (4, "assistant", "x" * 2_000),
    ]  # fmt: skip
    assert (first.reply_seq, second.reply_seq) == (2, 4)
    status = await conversation.query(ConversationWorkflow.status)
    assert status.turn == 2, "the repeated request id was not answered a second time"
    events = await conversation.query(ConversationWorkflow.events)
    reported = [e.data for e in events if e.type == EventType.TURN_REPORTED]
    assert [(r["request_id"], r["outcome"], r["to"]) for r in reported] == [
        ("r-1", "answered", requester_id), ("r-2", "answered", requester_id)]
    assert result.progress == [], "nothing waited, so nothing was reported in between"


async def test_a_request_that_cannot_be_queued_is_rejected_at_once(daemon, requester_queue):
    conversation = await daemon.start(max_message_chars=10)
    rid = _requester_id()
    requester = await _ask(daemon, requester_queue, conversation, rid,
                           _request("long", rid, "far more than ten characters"), _request("blank", rid, "   "))
    long, blank = (await requester.result()).done
    assert (long.request_id, long.outcome) == ("long", TurnOutcome.REJECTED)
    assert long.error == "the requested message is 28 characters; the limit is 10"
    assert (blank.outcome, blank.error) == (TurnOutcome.REJECTED, "a turn request needs content or content_ref")
    assert (await conversation.query(ConversationWorkflow.status)).turn == 0


async def test_requests_still_queued_when_the_conversation_ends_are_reported_ended(daemon, requester_queue):
    conversation = await daemon.start()
    await conversation.signal(ConversationWorkflow.pause, Pause(reason="hold"))
    rid = _requester_id()
    requester = await _ask(daemon, requester_queue, conversation, rid, _request("q-1", rid, "one"),
                           _request("q-2", rid, "two"))  # fmt: skip
    await wait_for(lambda: _status_if(conversation, lambda s: s.queued == 2))
    await conversation.signal(ConversationWorkflow.end, End(reason="closing"))
    done = (await requester.result()).done
    assert [(d.request_id, d.outcome) for d in done] == [("q-1", TurnOutcome.ENDED), ("q-2", TurnOutcome.ENDED)]
    assert "ended before this request was answered: closing" in (done[0].error or "")
    await conversation.result()


async def test_a_failed_turn_is_reported_failed_with_why(daemon, requester_queue):
    conversation = await daemon.start(model="not-pulled")
    rid = _requester_id()
    requester = await _ask(daemon, requester_queue, conversation, rid, _request("f-1", rid, "hello"))
    [done] = (await requester.result()).done
    assert done.outcome == TurnOutcome.FAILED
    assert "not-pulled" in (done.error or "") and done.reply_seq is None


async def test_the_requester_hears_when_its_turn_waits_for_a_person_and_goes_on(daemon, fake_ollama, requester_queue):
    fake_ollama.script(Reply(tool_calls=[ToolCall(name="run_command", arguments={"command": "ls"})]), "listed")
    conversation = await daemon.start(agent="developer")
    rid = _requester_id()
    requester = await _ask(daemon, requester_queue, conversation, rid, _request("a-1", rid, "list the files"))
    progress = await wait_for(lambda: _seen(daemon, rid, lambda r: r.progress))
    [waiting] = progress
    assert (waiting.request_id, waiting.state) == ("a-1", ConversationState.AWAITING_APPROVAL)
    [call] = waiting.waiting
    assert call.tool == "run_command"

    # a requested turn is followed by its request id, as a message's turn is by its update id
    control = await Conversations(daemon.client, daemon.task_queue).find(conversation.id)
    watched = await control.watch("a-1")
    assert (watched.answered, watched.state) == (False, ConversationState.AWAITING_APPROVAL)

    await control.decide(Approve(tool_call_id=call.tool_call_id, decision="deny", approver="alice"))
    result = await requester.result()
    assert [n.state for n in result.progress] == [ConversationState.AWAITING_APPROVAL, ConversationState.THINKING]
    [done] = result.done
    assert (done.outcome, done.reply, done.tool_calls) == (TurnOutcome.ANSWERED, "listed", 1)


async def test_request_ids_and_queued_requests_are_carried_across_continue_as_new(daemon, requester_queue):
    conversation = await daemon.start(turns_per_run=1)
    first_run = (await conversation.describe()).run_id
    rid = _requester_id()
    requester = await _ask(daemon, requester_queue, conversation, rid, _request("c-1", rid, "one"),
                           _request("c-2", rid, "two"), _request("c-1", rid, "repeat after the run"), expect=2)
    done = (await requester.result()).done
    assert [(d.request_id, d.turn) for d in done] == [("c-1", 1), ("c-2", 2)]
    latest = daemon.client.get_workflow_handle(conversation.id)
    assert (await latest.describe()).run_id != first_run
    again = await _ask(daemon, requester_queue, latest, _requester_id(), _request("c-1", rid, "once more"), expect=0)
    await again.result()
    await wait_for(lambda: _status_if(latest, lambda s: s.state == ConversationState.IDLE and s.turn == 2))
    events = await latest.query(ConversationWorkflow.events)
    assert [e.data["request_id"] for e in events if e.type == EventType.TURN_REPORTED] == ["c-1", "c-2"]


async def test_a_worker_killed_mid_requested_turn_reports_once_and_stores_one_reply(
    temporal_env, temporal_address, fake_ollama, tmp_path
):
    daemon = await _daemon_without_worker(temporal_env, temporal_address, fake_ollama, tmp_path)
    fake_ollama.script(Reply(content="the first attempt never finishes", delay_s=30))
    first = WorkerProcess(daemon.env(), tmp_path / "worker-1.log")
    second = None
    try:
        async for queue in _requester_worker(daemon):
            conversation = await daemon.start()
            rid = _requester_id()
            requester = await _ask(daemon, queue, conversation, rid, _request("k-1", rid, "survive this"))
            await wait_for(lambda: _true(len(fake_ollama.chat_requests()) == 1), timeout=30)
            first.kill()
            second = WorkerProcess(daemon.env(), tmp_path / "worker-2.log")
            [done] = (await requester.result()).done
            assert (done.outcome, done.reply, done.reply_seq) == (TurnOutcome.ANSWERED, "echo: survive this", 2)
            cid = conversation.id.removeprefix("conversation-")
            assert [(m.role, m.content) for m in daemon.store.list_messages(cid)] == [
                ("user", "survive this"), ("assistant", "echo: survive this")]
            events = await conversation.query(ConversationWorkflow.events)
            assert len([e for e in events if e.type == EventType.TURN_REPORTED]) == 1
    finally:
        for worker in (first, second):
            if worker:
                worker.close()


async def _seen(daemon, requester_id: str, pick):
    seen = await daemon.client.get_workflow_handle(requester_id).query(TurnRequester.seen)
    return pick(seen)


async def _true(value: bool) -> bool:
    return value
