"""A whole conversation on an OpenAI-compatible server (the fake, over real HTTP) through a real
worker and Temporal: tool calls and their results, memory extraction with ``response_format``,
recall through ``/v1/embeddings``, and an API key that never reaches workflow history."""

from __future__ import annotations

import json

from sqlmodel import Session, col, select

from models.events import EventType
from tests.fakes.script import Reply, ToolCall
from store.engine import make_engine
from store.tables import ModelUsage
from tests.fixtures.temporal import daemon_settings, running_daemon
from tests.test_memory_conversations import PI, events_of, extraction, stored, system_prompt
from tests.test_conversation import wait_for

KEY = "sk-vllm-0123456789abcdef0123"
NO_OLLAMA = "http://127.0.0.1:9"


async def test_a_conversation_with_tools_and_memory_on_an_openai_compatible_server(
    temporal_env, temporal_address, fake_openai, tmp_path
):
    fake_openai.api_key = KEY
    settings = daemon_settings(
        tmp_path, temporal_address, NO_OLLAMA, llm_provider="openai", openai_base_url=fake_openai.url,
        openai_api_key=KEY, model="smollm2", embed_model="smollm2-embed",
    )
    fake_openai.script(
        Reply(tool_calls=[ToolCall("memory_store", {"text": "The user's editor is Helix.", "importance": 0.7})]),
        Reply(content="Noted: Helix, and a Raspberry Pi 5."),
    )
    fake_openai.script_structured(extraction(PI))
    async with running_daemon(temporal_env.client, settings) as daemon:
        first = await daemon.start(user_id="alice")
        result = await daemon.send(first, "I use Helix, and my deployment target is a Raspberry Pi 5")
        assert result.reply == "Noted: Helix, and a Raspberry Pi 5."
        assert [(c.tool, c.decision, c.success) for c in result.tool_calls] == [("memory_store", "allow", True)]
        answered = fake_openai.chat_requests()[1]["messages"]
        assert answered[-2]["tool_calls"][0]["id"] == "2-0"
        assert answered[-1]["role"] == "tool" and answered[-1]["tool_call_id"] == "2-0"
        assert "stored" in answered[-1]["content"]
        # The server's prompt cache (usage.prompt_tokens_details.cached_tokens) is recorded per call:
        # the call after the tool shares its prompt's start with the first, which it follows.
        cached = [u.cached_prompt_tokens for u in _usage(settings, first.id.removeprefix("conversation-"))]
        assert cached[0] == 0 and 0 < cached[1] <= len(" ".join(m.get("content") or "" for m in answered).split())

        assert await wait_for(lambda: stored(first, 1), timeout=30) == {"turn": 1, "added": 1, "updated": 0, "skipped": None}
        assert fake_openai.structured_requests()[0]["response_format"]["type"] == "json_schema"

        second = await daemon.start(user_id="alice")
        await daemon.send(second, "what should I compile for my deployment target?")
        prompt = system_prompt(fake_openai.chat_requests()[-1])
        assert PI in prompt and "The user's editor is Helix." in prompt
        recalled = [e.data for e in await events_of(second) if e.type == EventType.MEMORY_RECALLED]
        assert recalled == [{"turn": 1, "count": 2, "error": None}]
        assert fake_openai.embed_requests() and all(
            r.headers.get("authorization") == f"Bearer {KEY}" for r in fake_openai.requests
        )

        for handle in (first, second):
            history = (await handle.fetch_history()).to_json()
            assert KEY not in history and json.loads(history)["events"]


def _usage(settings, conversation_id: str) -> list[ModelUsage]:
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as session:
            query = select(ModelUsage).where(ModelUsage.conversation_id == conversation_id).order_by(col(ModelUsage.seq))
            return list(session.exec(query))
    finally:
        engine.dispose()
