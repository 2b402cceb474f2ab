"""The model activity against the fake Ollama over real HTTP and a real store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.llm import LlmActivities
from activities.llm.ollama_provider import OllamaProvider
from activities.llm.provider import GenerationOptions, PromptMessage
from activities.tools.catalog import specs_for
from config.settings import Settings
from config.templates import load_template
from models.llm import ChatRequest
from store.engine import make_engine
from store.transcript import TranscriptStore
from tests.fakes.ollama import Reply, ToolCall


@pytest.fixture
def store(tmp_path) -> TranscriptStore:
    return TranscriptStore(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))


def activities(store: TranscriptStore, ollama_host: str) -> LlmActivities:
    return LlmActivities(store, Settings(ollama_host=ollama_host, database_url="sqlite://"))


def request(reply_seq: int = 2, model: str = "llama3.2", context_size: int = 8192) -> ChatRequest:
    template = load_template("assistant").model_copy(update={"model": model, "context_size": context_size})
    return ChatRequest(
        conversation_id="c1", turn=1, reply_seq=reply_seq, upto_seq=reply_seq - 1,
        template=template, now=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    )


async def test_a_retried_call_returns_the_stored_reply_without_asking_again(store, fake_ollama):
    store.open_conversation("c1", "assistant", "llama3.2")
    store.append("c1", 1, "user", "hello")
    llm = activities(store, fake_ollama.url)
    first = await ActivityEnvironment().run(llm.chat, request())
    again = await ActivityEnvironment().run(llm.chat, request())
    assert first.reply == again.reply == "echo: hello"
    assert len(fake_ollama.chat_requests()) == 1
    assert [m.role for m in store.list_messages("c1")] == ["user", "assistant"]
    assert store.usage("c1")[0].completion_tokens == first.usage.completion_tokens > 0


async def test_tool_calls_come_back_with_stable_ids_and_are_stored(store, fake_ollama):
    fake_ollama.script(Reply(tool_calls=[ToolCall(name="read_file", arguments={"path": "a.txt"})]))
    store.append("c1", 1, "user", "read a.txt")
    result = await ActivityEnvironment().run(activities(store, fake_ollama.url).chat, request())
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [("2-0", "read_file", {"path": "a.txt"})]
    assert store.get("c1", 2).tool_calls == [
        {"id": "2-0", "name": "read_file", "arguments": {"path": "a.txt"}, "payloads": []}]


async def test_the_prompt_carries_the_workflow_date_and_a_bounded_window(store, fake_ollama):
    for seq in range(1, 40):
        store.append("c1", seq, "user" if seq % 2 else "assistant", f"{seq} " + "y" * 1000)
    await ActivityEnvironment().run(activities(store, fake_ollama.url).chat, request(reply_seq=40, context_size=2048))
    messages = fake_ollama.chat_requests()[0]["messages"]
    assert "2026-11-20 09:30:00" in messages[0]["content"]
    shown = messages[1:]
    assert shown[-1]["content"].startswith("39 ")
    assert sum(len(m["content"]) for m in shown) <= 2048 * 3
    assert len(shown) < 39


async def test_tool_definitions_reach_the_model_as_defined_whether_converted_now_or_before(fake_ollama):
    """The provider converts a tool list once (``_ollama_tools``); a list it has seen and a new
    list with the same definitions must send the same JSON, and a changed list its own."""
    provider = OllamaProvider(fake_ollama.url)
    tools = [spec.ollama_definition() for spec in specs_for(["read_file", "run_command"])]
    options = GenerationOptions(context_size=2048, temperature=0.0, max_tokens=32)
    try:
        for listed in (tools, tools, [dict(t) for t in tools], tools[:1]):
            await provider.chat("llama3.2", [PromptMessage("user", "hi")], options, listed)
    finally:
        await provider.close()
    sent = [body["tools"] for body in fake_ollama.chat_requests()]
    assert sent[0] == sent[1] == sent[2] and sent[3] == sent[0][:1]
    assert [t["function"]["name"] for t in sent[0]] == ["read_file", "run_command"]
    assert set(sent[0][0]["function"]["parameters"]["properties"]) == set(tools[0]["function"]["parameters"]["properties"])


async def test_an_unknown_model_is_not_retried(store, fake_ollama):
    store.append("c1", 1, "user", "hi")
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(store, fake_ollama.url).chat, request(model="ghost"))
    assert err.value.non_retryable and err.value.type == "ModelNotFound"
    assert "ollama pull ghost" in err.value.message


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retryable(store, fake_ollama, status):
    store.append("c1", 1, "user", "hi")
    fake_ollama.fail_next(1, status=status, error="overloaded")
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(store, fake_ollama.url).chat, request())
    assert not err.value.non_retryable and "overloaded" in err.value.message
    assert store.get("c1", 2) is None


async def test_unreachable_ollama_is_retryable_and_names_the_host(store, fake_ollama):
    store.append("c1", 1, "user", "hi")
    fake_ollama.down()
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(store, fake_ollama.url).chat, request())
    assert not err.value.non_retryable and fake_ollama.url in err.value.message


async def test_a_stream_cut_midway_is_retryable_and_writes_nothing(store, fake_ollama):
    store.append("c1", 1, "user", "hi")
    fake_ollama.script(Reply(content="a long answer that will be cut", hang_up_after=1))
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(activities(store, fake_ollama.url).chat, request())
    assert not err.value.non_retryable
    assert store.get("c1", 2) is None


async def test_generated_tokens_are_capped_by_the_template_else_the_setting(store, fake_ollama):
    store.append("c1", 1, "user", "hi")
    llm = activities(store, fake_ollama.url)
    capped = request().model_copy(update={"template": request().template.model_copy(update={"max_tokens": 64})})
    await ActivityEnvironment().run(llm.chat, capped)
    await ActivityEnvironment().run(llm.chat, request(reply_seq=3))
    assert [r["options"]["num_predict"] for r in fake_ollama.chat_requests()] == [64, Settings().max_tokens]
