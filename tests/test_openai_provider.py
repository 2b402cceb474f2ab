"""The OpenAI-compatible provider: ``llm.chat``, structured output, embeddings and probes against
the fake OpenAI-compatible server over real HTTP, through the real ``openai`` client.

Tool calls and error classes are tested here, on the fake; what a real ``llama-server`` does is
in ``test_real_model.py``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.llm import LlmActivities, LlmProviders
from activities.llm.openai_messages import UNPARSED_ARGUMENTS, parse_call
from activities.llm.openai_provider import OpenAIProvider
from activities.llm.probe import model_server_lines, probe_model_servers, probe_server
from activities.llm.provider import GenerationOptions, PromptMessage
from activities.memory.embeddings import Embedder, EmbeddingModelNotFound, EmbeddingUnavailable
from config.settings import Settings
from config.templates import load_template
from models.llm import ChatRequest
from models.memory import MemoryExtraction
from store.engine import make_engine
from store.transcript import TranscriptStore
from tests.fakes.openai_compatible import FakeOpenAI
from tests.fakes.script import Reply, ToolCall

KEY = "sk-local-0123456789abcdef-do-not-log"


@pytest.fixture
def store(tmp_path) -> TranscriptStore:
    return TranscriptStore(make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))


def openai_settings(url: str, **overrides) -> Settings:
    return Settings(
        _env_file=None, llm_provider="openai", openai_base_url=url, model="smollm2", database_url="sqlite://", **overrides
    )


def activities(store: TranscriptStore, url: str, **overrides) -> LlmActivities:
    return LlmActivities(store, openai_settings(url, **overrides))


def request(reply_seq: int = 2, **template) -> ChatRequest:
    return ChatRequest(
        conversation_id="c1", turn=1, reply_seq=reply_seq, upto_seq=reply_seq - 1,
        template=load_template("assistant").model_copy(update={"model": None, **template}),
        now=datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    )


async def run_chat(llm: LlmActivities, chat_request: ChatRequest) -> tuple[object, list]:
    env = ActivityEnvironment()
    heartbeats: list = []
    env.on_heartbeat = lambda *details: heartbeats.append(details)
    return await env.run(llm.chat, chat_request), heartbeats


async def test_a_streamed_turn_is_answered_stored_and_accounted(store, fake_openai):
    store.append("c1", 1, "user", "hello there")
    result, _ = await run_chat(activities(store, fake_openai.url, max_tokens=300), request())
    assert result.reply == "echo: hello there" and result.done_reason == "stop"
    sent = fake_openai.chat_requests()[0]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["model"] == "smollm2" and sent["max_tokens"] == 300 and sent["temperature"] == 0.7
    assert sent["messages"][0]["role"] == "system" and "2026-11-20 09:30:00" in sent["messages"][0]["content"]
    assert sent["messages"][1:] == [{"role": "user", "content": "hello there"}]
    stored = store.get("c1", 2)
    assert stored.content == "echo: hello there"
    usage = store.usage("c1")[0]
    assert (usage.model, usage.completion_tokens) == ("smollm2", 3) and usage.prompt_tokens > 0
    assert usage.prompt_eval_duration_ms is not None and usage.total_duration_ms >= usage.prompt_eval_duration_ms


async def test_the_template_caps_generated_tokens_and_the_cut_is_reported(store, fake_openai):
    fake_openai.script("one two three four five six seven")
    store.append("c1", 1, "user", "count")
    result, _ = await run_chat(activities(store, fake_openai.url), request(max_tokens=3))
    assert fake_openai.chat_requests()[0]["max_tokens"] == 3
    assert result.reply == "one two three" and result.done_reason == "length"


async def test_tool_calls_streamed_in_pieces_come_back_whole_and_go_back_in_order(store, fake_openai):
    fake_openai.script(Reply(tool_calls=[
        ToolCall("read_file", {"path": "docs/a long file name.txt"}), ToolCall("list_directory", {"path": "."}),
    ]))
    store.append("c1", 1, "user", "read it")
    llm = activities(store, fake_openai.url)
    result, _ = await run_chat(llm, request())
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("2-0", "read_file", {"path": "docs/a long file name.txt"}), ("2-1", "list_directory", {"path": "."}),
    ]
    assert result.done_reason == "tool_calls"
    # The results go back as tool messages answering those ids (the fake refuses anything else,
    # as vLLM does); the "no such tool" answer of the workflow carries no id and takes the next one.
    store.append("c1", 3, "tool", "hello from a.txt", tool_call_id="2-0")
    store.append("c1", 4, "tool", "error: there is no tool named 'list_directory'")
    fake_openai.script("done")
    second, _ = await run_chat(llm, request(reply_seq=5))
    assert second.reply == "done"
    messages = fake_openai.chat_requests()[1]["messages"]
    assert messages[2]["tool_calls"][0] == {
        "id": "2-0", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "docs/a long file name.txt"}'},
    }
    assert [(m["role"], m.get("tool_call_id")) for m in messages[3:]] == [("tool", "2-0"), ("tool", "2-1")]


async def test_a_tool_result_whose_call_left_the_window_is_shown_as_a_user_message(store, fake_openai):
    store.append("c1", 1, "user", "x" * 9000)
    store.append("c1", 2, "assistant", "", tool_calls=[{"id": "2-0", "name": "read_file", "arguments": {"path": "a"}}])
    store.append("c1", 3, "tool", "the file", tool_call_id="2-0")
    await run_chat(activities(store, fake_openai.url), request(reply_seq=4))
    store.append("c1", 5, "user", "y" * 2000)
    # A 2048-token context keeps only the newest messages: the tool result without its call.
    chat_request = request(reply_seq=6, context_size=2048)
    result, _ = await run_chat(activities(store, fake_openai.url), chat_request)
    assert result.reply.startswith("echo: ")
    roles = [m["role"] for m in fake_openai.chat_requests()[-1]["messages"]]
    assert "tool" not in roles


def test_malformed_tool_arguments_reach_the_schema_check_instead_of_vanishing():
    """A model that writes arguments that are not a JSON object gets told so by the workflow's
    schema check (an unknown argument, required ones missing) rather than running with ``{}``."""
    assert parse_call("read_file", '{"path": "a"').arguments == {UNPARSED_ARGUMENTS: '{"path": "a"'}
    assert parse_call("read_file", '["a"]').arguments == {UNPARSED_ARGUMENTS: '["a"]'}
    assert parse_call("system_info", "").arguments == {}


async def test_an_unknown_model_fails_at_once_with_the_servers_words(store, fake_openai):
    store.append("c1", 1, "user", "hi")
    with pytest.raises(ApplicationError) as err:
        await run_chat(activities(store, fake_openai.url), request(model="ghost"))
    assert err.value.non_retryable and err.value.type == "ModelNotFound"
    assert "The model `ghost` does not exist." in err.value.message and f"{fake_openai.url}/models" in err.value.message


async def test_a_refused_request_is_not_retried(store, fake_openai):
    store.append("c1", 1, "user", "hi")
    fake_openai.script(Reply(error="the request exceeds the available context size", status=400))
    with pytest.raises(ApplicationError) as err:
        await run_chat(activities(store, fake_openai.url), request())
    assert err.value.non_retryable and err.value.type == "ModelBadRequest"
    assert "exceeds the available context size" in err.value.message


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_server_trouble_is_retryable_and_stores_nothing(store, fake_openai, status):
    store.append("c1", 1, "user", "hi")
    fake_openai.fail_next(1, status=status, error="slot unavailable")
    with pytest.raises(ApplicationError) as err:
        await run_chat(activities(store, fake_openai.url), request())
    assert not err.value.non_retryable and err.value.type == "ModelServerError"
    assert "slot unavailable" in err.value.message and f"HTTP {status}" in err.value.message
    assert store.get("c1", 2) is None


async def test_an_unreachable_server_is_retryable_and_named(store, fake_openai):
    store.append("c1", 1, "user", "hi")
    fake_openai.down()
    with pytest.raises(ApplicationError) as err:
        await run_chat(activities(store, fake_openai.url), request())
    assert not err.value.non_retryable and err.value.type == "ModelUnreachable"
    assert fake_openai.url in err.value.message


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (Reply(content="a long answer that will be cut", hang_up_after=2), "ModelConnectionLost"),
        (Reply(content="half an answer", stream_error="llama runner crashed"), "ModelServerError"),
    ],
)
async def test_a_stream_that_breaks_is_retryable_and_writes_nothing(store, fake_openai, reply, kind):
    store.append("c1", 1, "user", "hi")
    fake_openai.script(reply)
    with pytest.raises(ApplicationError) as err:
        await run_chat(activities(store, fake_openai.url), request())
    assert not err.value.non_retryable and err.value.type == kind
    assert store.get("c1", 2) is None


async def test_a_server_slower_than_the_timeout_is_retryable(store, fake_openai):
    store.append("c1", 1, "user", "hi")
    fake_openai.delay_s = 2.0
    with pytest.raises(ApplicationError) as err:
        await run_chat(activities(store, fake_openai.url, llm_timeout_s=0.3), request())
    assert not err.value.non_retryable and "timed out" in err.value.message


async def test_the_api_key_is_sent_but_never_shown(store, fake_openai, caplog):
    caplog.set_level(logging.DEBUG)
    fake_openai.api_key = KEY
    store.append("c1", 1, "user", "hi")
    with pytest.raises(ApplicationError) as refused:
        await run_chat(activities(store, fake_openai.url), request())
    assert refused.value.non_retryable and "DAEMONFLOW_OPENAI_API_KEY" in refused.value.message
    result, _ = await run_chat(activities(store, fake_openai.url, openai_api_key=KEY), request())
    assert result.reply == "echo: hi"
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {KEY}"
    settings = openai_settings(fake_openai.url, openai_api_key=KEY)
    shown = [caplog.text, repr(settings), str(settings.model_dump()), repr(LlmProviders(settings).provider("openai"))]
    assert not [text for text in shown if KEY in text]


async def test_each_template_reaches_its_own_server_and_key(store, fake_ollama, fake_openai, monkeypatch):
    fake_openai.api_key = KEY
    settings = Settings(_env_file=None, ollama_host=fake_ollama.url, database_url="sqlite://")
    llm = LlmActivities(store, settings)
    store.append("c1", 1, "user", "hi")
    monkeypatch.setenv("VLLM_BOX_API_KEY", KEY)
    await run_chat(llm, request(provider="openai", base_url=fake_openai.url, api_key_env="VLLM_BOX_API_KEY", model="smollm2"))
    await run_chat(llm, request(reply_seq=3, model="llama3.2"))
    assert len(fake_openai.chat_requests()) == 1 and len(fake_ollama.chat_requests()) == 1
    assert fake_ollama.chat_requests()[0]["options"]["num_predict"] == settings.max_tokens

    monkeypatch.delenv("VLLM_BOX_API_KEY")
    with pytest.raises(ApplicationError) as err:
        await run_chat(LlmActivities(store, settings), request(
            reply_seq=4, provider="openai", base_url=fake_openai.url, api_key_env="VLLM_BOX_API_KEY"))
    assert err.value.non_retryable and "$VLLM_BOX_API_KEY" in err.value.message


# --------------------------------------------------------------------------- structured output

EXTRACTION = '{"memories": [{"text": "The user deploys to a Raspberry Pi 5.", "kind": "semantic", "importance": 0.8}]}'
OPTIONS = GenerationOptions(context_size=8192, temperature=0.0, max_tokens=512)
ASK = [PromptMessage("system", "extract"), PromptMessage("user", "I deploy to a Raspberry Pi 5")]


async def test_structured_output_asks_for_the_json_schema(fake_openai):
    fake_openai.script_structured(EXTRACTION)
    provider = OpenAIProvider(fake_openai.url)
    answer = await provider.structured("smollm2", ASK, MemoryExtraction.model_json_schema(), OPTIONS)
    await provider.close()
    assert MemoryExtraction.model_validate_json(answer).memories[0].text == "The user deploys to a Raspberry Pi 5."
    sent = fake_openai.structured_requests()[0]
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == MemoryExtraction.model_json_schema()
    assert sent["stream"] is False and sent["temperature"] == 0.0 and sent["max_tokens"] == 512


async def test_a_server_without_json_schema_gets_the_schema_in_the_instructions(fake_openai, caplog):
    fake_openai.json_schema = False
    fake_openai.script(f"Sure! Here it is:\n```json\n{EXTRACTION}\n```", "{\"memories\": []}")
    provider = OpenAIProvider(fake_openai.url)
    schema = MemoryExtraction.model_json_schema()
    first = await provider.structured("smollm2", ASK, schema, OPTIONS)
    assert MemoryExtraction.model_validate_json(first).memories[0].importance == 0.8
    assert "refused a JSON-schema response_format" in caplog.text
    second = await provider.structured("smollm2", ASK, schema, OPTIONS)
    await provider.close()
    assert second == '{"memories": []}'
    calls = fake_openai.requests_to("/v1/chat/completions")
    assert [bool(c.get("response_format")) for c in calls] == [True, False, False]  # asked once, then remembered
    instructed = calls[1]["messages"]
    assert [m["role"] for m in instructed] == ["system", "user"]  # the system message stays first
    assert instructed[0]["content"].startswith("extract\n\n") and "must match this JSON schema" in instructed[0]["content"]
    assert '"memories"' in instructed[0]["content"]


async def test_a_genuine_bad_request_is_not_mistaken_for_a_missing_feature(fake_openai):
    provider = OpenAIProvider(fake_openai.url)
    fake_openai.script_structured(Reply(error="prompt too long", status=400))
    fake_openai.script(Reply(error="prompt too long", status=400))
    with pytest.raises(Exception) as err:
        await provider.structured("smollm2", ASK, MemoryExtraction.model_json_schema(), OPTIONS)
    assert type(err.value).__name__ == "ModelBadRequest" and "prompt too long" in str(err.value)
    fake_openai.script_structured(EXTRACTION)
    assert await provider.structured("smollm2", ASK, MemoryExtraction.model_json_schema(), OPTIONS) == EXTRACTION
    await provider.close()


# --------------------------------------------------------------------------- embeddings and probes


async def test_embeddings_in_batches_with_clear_errors(fake_openai):
    embedder = Embedder("smollm2-embed", OpenAIProvider(fake_openai.url), batch_size=2)
    vectors = await embedder.embed(["one", "two", "three"])
    assert [len(b["input"]) for b in fake_openai.embed_requests()] == [2, 1]
    assert {len(v) for v in vectors} == {384} and await embedder.dimension() == 384
    fake_openai.fail_next(1, status=503, error="loading model")
    with pytest.raises(EmbeddingUnavailable) as busy:
        await embedder.embed_one("hello")
    assert busy.value.retryable and "loading model" in str(busy.value)
    await embedder.close()

    missing = Embedder("nomic-embed-text", OpenAIProvider(fake_openai.url))
    with pytest.raises(EmbeddingModelNotFound) as caught:
        await missing.embed_one("hello")
    assert not caught.value.retryable and "nomic-embed-text" in str(caught.value)
    assert "DAEMONFLOW_EMBED_MODEL" in str(caught.value)
    await missing.close()


async def test_embeddings_come_from_their_own_server(fake_openai):
    with FakeOpenAI(models=["bge"]) as embed_server:
        settings = openai_settings(fake_openai.url, embed_base_url=embed_server.url, embed_model="bge")
        embedder = Embedder.from_settings(settings)
        await embedder.embed_one("hello")
        await embedder.close()
        assert len(embed_server.embed_requests()) == 1 and fake_openai.embed_requests() == []
        probes = await probe_model_servers(settings)
    assert set(probes) == {"chat", "embeddings"}
    assert probes["embeddings"].models == ["bge"] and probes["chat"].server == "llama.cpp"


async def test_probes_say_what_answers_and_never_raise(fake_openai, fake_ollama):
    up = await probe_server("openai", fake_openai.url)
    assert up.reachable and up.server == "llama.cpp" and up.models == ["smollm2", "smollm2-embed"]
    assert up.latency_ms is not None and up.error is None and up.has_model("smollm2")
    ollama = await probe_server("ollama", fake_ollama.url)
    assert ollama.reachable and ollama.server == "Ollama" and ollama.version and ollama.has_model("llama3.2")
    fake_openai.api_key = KEY
    refused = await probe_server("openai", fake_openai.url)
    assert not refused.reachable and "API_KEY" in refused.error
    fake_openai.down()
    down = await probe_server("openai", fake_openai.url)
    assert not down.reachable and fake_openai.url in down.error


async def test_the_lines_dev_prints_about_the_model_servers(fake_openai, fake_ollama):
    with FakeOpenAI(models=["bge"]) as embed_server:
        settings = openai_settings(fake_openai.url, embed_base_url=embed_server.url, embed_model="bge")
        lines = await model_server_lines(settings)
    assert lines[0].startswith(f"chat: llama.cpp at {fake_openai.url} (") and "2 model(s): smollm2, smollm2-embed" in lines[0]
    assert lines[1] == "  smollm2: present"
    assert lines[2].startswith(f"embeddings: llama.cpp at {embed_server.url}") and lines[3] == "  bge: present"

    ollama = Settings(_env_file=None, ollama_host=fake_ollama.url, embed_model="nomic-embed-text")
    lines = await model_server_lines(ollama)
    assert lines[1:] == ["  llama3.2: present", "  nomic-embed-text: MISSING — run `ollama pull nomic-embed-text`"]
    fake_ollama.down()
    lines = await model_server_lines(ollama)
    assert lines[0].startswith(f"chat: NOT reachable at {fake_ollama.url}")
    assert "`ollama pull llama3.2`, `ollama pull nomic-embed-text`" in lines[1] and "make local-model" in lines[1]
