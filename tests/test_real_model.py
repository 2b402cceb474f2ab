"""The ``real_model`` group: a real model (SmolLM2-135M on llama.cpp's ``llama-server``) answers
through the real Temporal contract — no fake in the loop.

Replies are greedy (the ``smoke`` template, temperature 0) and capped at ``REPLY_TOKENS``, so
what the model says is the same every run on the same build. Tool calling is not tested here: a
135M model does not choose tools (it stays on the fake, ``test_openai_provider.py``).
Run just this group with ``pytest -m real_model``.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from activities.llm.probe import probe_model_servers
from control.conversation_stream import ConversationStream, StreamItem
from models.events import EventType
from models.memory import MemoryAdminRequest
from tests.fixtures.local_model import REPLY_TOKENS, real_settings
from tests.fixtures.temporal import running_daemon
from tests.test_conversation import _status_if, status_of, wait_for
from tests.test_memory_conversations import events_of, stored
from workers.local_model import CHAT_ALIAS, EMBED_ALIAS, LlamaServer
from workflows.memory_admin import MemoryAdminWorkflow

pytestmark = pytest.mark.real_model

MODEL_WAIT_S = 300
"""How long a test waits for the model: generous, the machine's two cores are shared."""


async def test_a_turn_gets_a_real_reply_through_temporal(real_daemon):
    handle = await real_daemon.start(agent="smoke")
    result = await real_daemon.send(handle, "What is the capital of France?")
    assert "Paris" in result.reply
    assert 0 < result.usage.completion_tokens <= REPLY_TOKENS and result.usage.prompt_tokens > 0
    conversation_id = handle.id.removeprefix("conversation-")
    messages = real_daemon.store.list_messages(conversation_id)
    assert [(m.role, m.content) for m in messages] == [("user", "What is the capital of France?"), ("assistant", result.reply)]
    usage = real_daemon.store.usage(conversation_id)[0]
    assert usage.model == CHAT_ALIAS and usage.completion_tokens == result.usage.completion_tokens
    assert usage.prompt_eval_duration_ms is not None and usage.eval_duration_ms is not None


async def test_tokens_stream_from_the_real_model_and_build_the_stored_reply(real_daemon):
    """Issue 16 (asked by issue 18): the real model's reply reaches a subscriber of the
    conversation's Workflow Stream as token batches, before the reply is stored, and they join
    into exactly the stored reply."""
    handle = await real_daemon.start(agent="smoke")
    stream = ConversationStream(real_daemon.client, handle.id, timedelta(seconds=30))
    seen: list[StreamItem] = []

    async def follow() -> None:
        async for item in stream.follow(0):
            seen.append(item)
            if item.topic == "events" and item.data["type"] == "message" and item.data["data"]["role"] == "assistant":
                return

    following = asyncio.create_task(follow())
    result = await real_daemon.send(handle, "Write a long story about a dragon who learns to fly.")
    await asyncio.wait_for(following, MODEL_WAIT_S)
    deltas = [i.data for i in seen if i.topic == "tokens" and i.data["kind"] == "delta"]
    assert deltas and all(d["attempt"] == 1 for d in deltas)
    assert [d["offset"] for d in deltas] == [sum(len(d["text"]) for d in deltas[:n]) for n in range(len(deltas))]
    assert "".join(d["text"] for d in deltas) == result.reply  # the stored reply, streamed whole and once
    stored_at = next(n for n, i in enumerate(seen) if i.topic == "events" and i.data["type"] == "message"
                     and i.data["data"]["role"] == "assistant")  # fmt: skip
    assert max(n for n, i in enumerate(seen) if i.topic == "tokens") < stored_at


async def test_generation_stops_at_the_token_cap(real_daemon):
    handle = await real_daemon.start(agent="smoke")
    await real_daemon.send(handle, "Write a long story about a dragon who learns to fly. Make it at least ten paragraphs.")
    usage = real_daemon.store.usage(handle.id.removeprefix("conversation-"))[0]
    assert usage.completion_tokens == REPLY_TOKENS


async def test_a_fact_is_extracted_and_recalled_with_real_embeddings_in_the_next_conversation(real_daemon):
    first = await real_daemon.start(agent="smoke", user_id="alice")
    await real_daemon.send(first, "My deployment target is a Raspberry Pi 5.")
    outcome = await wait_for(lambda: stored(first, 1), timeout=MODEL_WAIT_S)
    assert outcome["skipped"] is None and outcome["added"] >= 1, outcome  # structured output that fits the schema

    memories = await _admin(real_daemon, MemoryAdminRequest(action="list", scope="user", scope_id="alice"))
    assert any("raspberry pi" in m.record.text.lower() for m in memories)

    second = await real_daemon.start(agent="smoke", user_id="alice")
    await real_daemon.send(second, "What should I compile for my deployment target?")
    recalled = [e.data for e in await events_of(second) if e.type == EventType.MEMORY_RECALLED]
    assert recalled[0]["error"] is None and recalled[0]["count"] >= 1
    found = await _admin(real_daemon, MemoryAdminRequest(action="search", query="what should I compile for?", scope="user", scope_id="alice"))
    assert found and "raspberry pi" in found[0].record.text.lower() and 0 < found[0].similarity <= 1

    other = await real_daemon.start(agent="smoke", user_id="bob")
    await real_daemon.send(other, "What should I compile for my deployment target?")
    recalled = [e.data for e in await events_of(other) if e.type == EventType.MEMORY_RECALLED]
    assert recalled[0] == {"turn": 1, "count": 0, "error": None}


async def test_the_server_stopped_mid_turn_and_started_again_the_turn_completes(
    temporal_env, temporal_address, local_model, local_servers, tmp_path
):
    chat = LlamaServer(local_model, "chat", tmp_path / "chat.log")
    await chat.start()
    settings = real_settings(local_servers, tmp_path, temporal_address).model_copy(
        update={"openai_base_url": chat.url, "max_tokens": 400, "memory_extraction": False}
    )
    try:
        async with running_daemon(temporal_env.client, settings) as daemon:
            handle = await daemon.start(agent="smoke")
            turn = asyncio.create_task(daemon.send(handle, "Write a long story about a dragon who learns to fly."))
            await wait_for(lambda: _generating(chat), timeout=MODEL_WAIT_S, interval=0.05)
            chat.stop()
            status = await wait_for(lambda: _status_if(handle, lambda s: s.last_error is not None), timeout=MODEL_WAIT_S)
            assert f"127.0.0.1:{chat.port}" in status.last_error
            await chat.start()
            result = await asyncio.wait_for(turn, timeout=MODEL_WAIT_S)
            assert result.reply.strip() and result.usage.completion_tokens > 0
            messages = daemon.store.list_messages(handle.id.removeprefix("conversation-"))
            assert [m.role for m in messages] == ["user", "assistant"] and messages[1].content == result.reply
            assert (await status_of(handle)).last_error is None
    finally:
        chat.stop()


async def test_the_probe_sees_both_local_servers(local_servers, tmp_path, temporal_address):
    probes = await probe_model_servers(real_settings(local_servers, tmp_path, temporal_address))
    assert probes["chat"].reachable and probes["chat"].server == "llama.cpp" and probes["chat"].models == [CHAT_ALIAS]
    assert probes["embeddings"].reachable and probes["embeddings"].models == [EMBED_ALIAS]


async def _generating(server: LlamaServer) -> bool:
    """Whether the server has started writing the answer (its ``/slots`` counts decoded tokens)."""
    async with httpx.AsyncClient(timeout=5) as http:
        slots = (await http.get(f"http://127.0.0.1:{server.port}/slots")).json()
    return any(s.get("is_processing") and (s.get("next_token") or [{}])[0].get("n_decoded", 0) > 0 for s in slots)


async def _admin(daemon, request: MemoryAdminRequest) -> list:
    """``daemonflow memory`` through the worker, which holds embedded Qdrant open."""
    result = await daemon.client.execute_workflow(
        MemoryAdminWorkflow.run, args=[request, None], id=f"memory-admin-{uuid.uuid4().hex[:8]}",
        task_queue=daemon.task_queue,
    )
    return result.memories
