"""What a conversation takes in before it has answered is bounded (``workflows/queue_bound.py``):
the waiting messages always fit the state a run hands to the next, and callers that never stop do
not keep one run for ever. On a real dev server and worker; the API's answer over real HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporalio.api.enums.v1 import EventType as HistoryEventType

from control.conversations import Conversations
from control.errors import QueueFull, RunEnding
from control.turns import TurnWaiting
from models.conversation import ConversationState, Inject, TurnResult
from models.events import ConversationEvent, EventsQuery, EventType
from tests.fakes.ollama import Reply
from control.posts import PostWaiting
from models.channel import Post, PostResult
from tests.channel_support import CODING, DATA, open_channel, team_answers
from tests.fixtures.api import ApiStack
from tests.test_api import new_id, problem, until
from tests.test_conversation import _status_if, status_of, wait_for
from workflows.conversation import ConversationWorkflow
from workflows.queue_bound import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES, overdue, queue_refusal, text_bytes

BIG = 99_000  # under the default max_message_chars (100,000)


# --- the bound itself (pure) -----------------------------------------------------------------------

@pytest.mark.parametrize("text, size", [
    ("", 2), ("abc", 5), ("é", 4), ("日本", 8), ("🙂", 6), ('"', 4), ("\\", 4), ("\n", 4), ("\x01", 8),
    ("\x00" * 10, 62), ("\u2028", 5), ("a\tb", 6),
])  # fmt: skip
def test_a_text_counts_as_its_json_bytes(text, size):
    assert text_bytes(text) == size


def test_the_count_bound():
    assert queue_refusal(["x"] * (MAX_QUEUED_MESSAGES - 1), "y") is None
    refused = queue_refusal(["x"] * MAX_QUEUED_MESSAGES, "y")
    assert refused and f"limit is {MAX_QUEUED_MESSAGES}" in refused


@pytest.mark.parametrize("filler", ["a", "é", "\x01", "🙂", '"'])
def test_the_byte_bound_holds_whatever_the_characters(filler):
    """A text whose characters cost more bytes than one each (escapes, multi-byte UTF-8) counts so."""
    one = filler * 20_000
    waiting: list[str] = []
    while (why := queue_refusal(waiting, one)) is None:
        waiting.append(one)
    assert "bytes" in why and str(MAX_QUEUED_BYTES) in why
    assert sum(map(text_bytes, waiting)) <= MAX_QUEUED_BYTES < sum(map(text_bytes, waiting)) + text_bytes(one)
    assert len(json.dumps(waiting, ensure_ascii=False).encode()) <= MAX_QUEUED_BYTES + len(waiting) + 1


def test_exactly_at_the_byte_bound_is_taken():
    fill = "a" * (MAX_QUEUED_BYTES - 2 - 3)
    assert queue_refusal([fill], "a") is None  # 5 + 3 = 8 bytes more: exactly the bound
    assert queue_refusal([fill], "ab") is not None


def test_a_run_is_overdue_past_twice_its_turns_or_when_temporal_suggests():
    assert not overdue(100, 100, False) and not overdue(199, 100, False)
    assert overdue(200, 100, False) and overdue(3, 100, True)


# --- in the workflow ---------------------------------------------------------------------------------


async def test_big_waiting_messages_never_stop_the_conversation(daemon, fake_ollama):
    """25 injected messages of 99,000 characters at a run's end: before the bound, the run's
    continue-as-new passed Temporal's 2 MB and every workflow task failed (``PayloadsTooLarge``)."""
    conversations = Conversations(daemon.client, daemon.task_queue)
    handle = await daemon.start(turns_per_run=1)
    conversation = await conversations.find(handle.id)
    first_run = (await handle.describe()).run_id
    await conversation.pause()
    await wait_for(lambda: _status_if(handle, lambda s: s.state == ConversationState.PAUSED))
    for i in range(25):
        await conversation.inject(Inject(content=f"{i:02d} " + "x" * BIG, priority="queue"))
    with pytest.raises(QueueFull, match="bytes"):
        await conversation.send("z" * BIG, wait_s=0)
    status = await wait_for(lambda: _status_if(handle, lambda s: s.queued == 5))
    events = await handle.query(ConversationWorkflow.events, EventsQuery(), result_type=list[ConversationEvent])
    refused = [e for e in events if e.type == EventType.INJECT_REFUSED]
    assert len(refused) == 20 and all("limit is" in e.data["reason"] for e in refused), status

    await conversation.resume()
    latest = daemon.client.get_workflow_handle(handle.id)
    await wait_for(lambda: _status_if(latest, lambda s: s.turn == 5 and s.queued == 0), timeout=60)
    assert (await latest.describe()).run_id != first_run
    assert await _failed_tasks(daemon, handle.id) == 0
    answered = await conversation.send("after them", wait_s=None)
    assert isinstance(answered, TurnResult) and answered.turn == 6
    users = [m.content[:2] for m in daemon.store.list_messages(handle.id.removeprefix("conversation-"), limit=100)
             if m.role == "user"]  # fmt: skip
    assert users == ["00", "01", "02", "03", "04", "af"]


async def test_callers_that_never_stop_do_not_keep_one_run_for_ever(daemon, fake_ollama):
    """Two clients in turn always leave a caller waiting: before, the run answered on and never
    continued as new (2 runs for 24 turns in one try here; 7 now). Now the run stops taking callers at twice its
    ``turns_per_run``, drains, hands over, and the typed client sends the refused message again."""
    fake_ollama.responder = lambda request: Reply(content="ok", delay_s=0.05)
    handle = await daemon.start(turns_per_run=2)
    conversation = await Conversations(daemon.client, daemon.task_queue).find(handle.id)

    async def send(text: str) -> TurnResult | TurnWaiting:
        """As an API client does with ``503 run-ending``: the typed client sends a refused message
        again for 10 s; a loaded machine can take longer to hand over (the other client, sending at
        once, may fill the next run first), so it is sent again, a bounded number of times."""
        for _ in range(5):
            try:
                return await conversation.send(text, wait_s=None)
            except RunEnding:
                await asyncio.sleep(1)
        return await conversation.send(text, wait_s=None)

    async def client(name: str) -> list[TurnResult | TurnWaiting]:
        return [await send(f"{name} {i}") for i in range(12)]

    results = [r for rs in await asyncio.gather(client("a"), client("b")) for r in rs]
    assert all(isinstance(r, TurnResult) for r in results) and sorted(r.turn for r in results) == list(range(1, 25))
    runs = [run async for run in daemon.client.list_workflows(f'WorkflowId = "{handle.id}"')]
    assert len(runs) >= 24 // (2 * 2 + 2), len(runs)  # each run: at most 4 turns + the 2 callers
    assert (await status_of(daemon.client.get_workflow_handle(handle.id))).turn == 24
    assert await _failed_tasks(daemon, handle.id) == 0


async def test_a_channel_takes_the_same_bounds(daemon, fake_ollama):
    team_answers(fake_ollama)
    channel = await open_channel(daemon, posts_per_run=1)
    await channel.pause("filling up")
    waiting = [await channel.post(Post(author="alice", content=f"{i} " + "x" * BIG), wait_s=0) for i in range(5)]
    assert all(isinstance(w, PostWaiting) for w in waiting)
    with pytest.raises(QueueFull, match="waiting in this channel"):
        await channel.post(Post(author="alice", content="y" * BIG), wait_s=0)
    await channel.resume()
    done = [await channel.follow(w.post_id, wait_s=None) for w in waiting]
    assert all(isinstance(d, PostResult) for d in done)

    async def poster(content: str) -> list:
        return [await channel.post(Post(author="alice", content=content), wait_s=None) for _ in range(4)]

    results = [r for rs in await asyncio.gather(poster(CODING), poster(DATA)) for r in rs]
    assert all(isinstance(r, PostResult) for r in results)
    assert (await channel.status()).posts >= 5 + 8
    assert await _failed_tasks(daemon, channel.workflow_id) == 0


async def _failed_tasks(daemon, workflow_id: str) -> int:
    failed = 0
    async for run in daemon.client.list_workflows(f'WorkflowId = "{workflow_id}"'):
        history = await daemon.client.get_workflow_handle(workflow_id, run_id=run.run_id).fetch_history()
        failed += sum(e.event_type == HistoryEventType.EVENT_TYPE_WORKFLOW_TASK_FAILED for e in history.events)
    return failed


# --- over HTTP -------------------------------------------------------------------------------------


async def test_a_full_queue_is_429_with_retry_after(api: ApiStack) -> None:
    http = api.http("operator")
    cid = new_id("full")
    assert (await http.post("/conversations", json={"conversation_id": cid})).status_code == 201
    assert (await http.post(f"/conversations/{cid}/pause")).status_code == 202
    big = "y" * BIG
    for _ in range(MAX_QUEUED_BYTES // (BIG + 2)):
        accepted = await http.post(f"/conversations/{cid}/messages", json={"content": big})
        assert accepted.status_code == 202, accepted.text
    refused = await http.post(f"/conversations/{cid}/messages", json={"content": big})
    body = problem(refused, 429, "queue-full")
    assert refused.headers["retry-after"] == "5" and "send it once some are answered" in body["detail"]

    # that the waiting messages are answered after a resume is the workflow tests' part; ending the
    # conversation leaves no big turns running into the next test on the shared API stack
    assert (await http.post(f"/conversations/{cid}/end")).status_code == 202

    async def over():
        return (await http.get(f"/conversations/{cid}")).json()["execution"] == "completed"

    assert await until(over, timeout=60)
